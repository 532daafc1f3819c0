"""The device's own steps for a conversion, each run by edge/ in a clean child process (tools.convert.devrun).

A process that has imported TensorFlow cannot also load tflite-runtime's
interpreter, so face crops, runtime checks and the converted model's outputs
all come from ``python -m tools.convert.devrun`` children.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tools.convert import ROOT, ConvertError

log = logging.getLogger(__name__)


def devrun(*args: str) -> dict[str, Any]:
    """Run a tools.convert.devrun step in a clean child process; its last stdout line is JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", "tools.convert.devrun", *args],
        check=False,  # a failed step prints its error as JSON, or is reported from stderr below
        stdout=subprocess.PIPE,
        stderr=None if log.isEnabledFor(logging.INFO) else subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        err = (proc.stderr or "").strip().splitlines() or ["no output"]
        raise ConvertError(f"device step {args[0]} crashed: {err[-1]}") from None


def device_check(path: Path) -> dict[str, dict[str, Any]]:
    """Load and run the model in every device runtime (each in a clean process); refuse it if any fails."""
    from edge.runtime import RUNTIMES

    result: dict[str, dict[str, Any]] = {}
    for name in RUNTIMES:
        info = devrun("check", str(path), name)
        if not info["ok"]:
            if (
                "not usable here" in info["error"]
                and name == "tflite-runtime"
                and sys.version_info >= (3, 12)
            ):
                result[name] = {
                    "ok": False,
                    "skipped": "tflite-runtime does not exist for Python >= 3.12",
                }
                continue
            raise ConvertError(f"converted model fails in {name}: {info['error']}")
        if not info["finite"]:
            raise ConvertError(f"converted model gives non-finite output in {name}")
        result[name] = info
    return result


@dataclass(frozen=True)
class Workspace:
    """One conversion's temporary folder, and the device steps that work in it."""

    tmp: Path
    spec_file: Path  # the source spec, for the child processes to build the card's crop from
    detector: str
    model_dir: Path | None

    @classmethod
    def create(
        cls, tmp: Path, spec: dict[str, Any], *, detector: str, model_dir: Path | None
    ) -> Workspace:
        spec_file = tmp / "spec.json"
        spec_file.write_text(json.dumps(spec))
        return cls(tmp, spec_file, detector, model_dir)

    def crops(self, images: list[Path], name: str) -> dict[str, Any]:
        """Detect and crop faces as the device does: devrun's counts, plus ``crops`` and their ``paths``."""
        out = self.tmp / f"{name}.npz"
        listing = out.with_suffix(".txt")
        listing.write_text("\n".join(str(p) for p in images))
        args = ["crops", str(self.spec_file), str(out), "--list", str(listing)]
        args += ["--detector", self.detector]
        if self.model_dir:
            args += ["--model-dir", str(self.model_dir)]
        info = devrun(*args)
        data = np.load(out)
        info["crops"] = data["crops"]
        info["paths"] = [Path(p) for p in data["paths"]]
        return info

    def run_model(
        self, step: str, model: Path, runtime: str, crops: Path
    ) -> tuple[float, np.ndarray]:
        """The converted model on saved crops in one runtime: (median ms per crop, outputs).

        ``step`` is devrun's "embed" (embeddings, as the device matches them) or
        "scores" (raw outputs, a liveness logit).
        """
        out = self.tmp / "out.npy"
        res = devrun(step, str(model), runtime, str(self.spec_file), str(crops), str(out))
        return res["median_ms"], np.load(out)
