"""NUAA frames -> face crops for the liveness classifier, as the device cuts them.

In: the NUAA folder and a crop spec (input size + crop recipe, as in a model
card).  Out: an .npz with one row per frame that has a face: uint8 crops,
labels (1 live, 0 printed photo), subject, recording key, frame number and
the frame path.

Detection and cropping run through edge/ itself in a child process (a process
that imports TensorFlow cannot also load the device runtimes):

    python -m tools.liveness.data SPEC.json OUT.npz [--nuaa DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.cli import run_command
from edge.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_NUAA = ROOT.parent / "shared" / "data" / "nuaa"


@dataclass
class Crops:
    """Face crops of NUAA frames with everything needed to split and group them."""

    crops: np.ndarray  # N x H x W x 3 uint8
    live: np.ndarray  # N bool
    subject: np.ndarray  # N str
    clip: np.ndarray  # N str: one recording (ID_glasses_pos_session + live/photo)
    frame_no: np.ndarray  # N int
    paths: np.ndarray  # N str

    def select(self, mask: np.ndarray) -> Crops:
        return Crops(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.crops)


def load(path: str | Path) -> Crops:
    with np.load(path) as d:
        return Crops(**{f: d[f] for f in Crops.__dataclass_fields__})


def extract(spec: dict, nuaa: Path, out: Path, *, detector: str = "blazeface-short") -> dict:
    """Detect and crop every NUAA frame as the device would; write ``out``."""
    from dataclasses import replace

    from edge.align import align
    from edge.cards import CropRecipe
    from edge.config import load_config
    from edge.detect import largest_first
    from edge.images import read_image
    from edge.pipeline import build_detector
    from tools.nuaa import clips, frame_number, recording

    config = load_config()
    config = replace(config, models=replace(config.models, detector=detector))
    det = build_detector(config)
    recipe = CropRecipe.from_dict(spec["crop"])
    h, w = (int(v) for v in spec["input_size"])
    size = (h, w)
    rows: dict[str, list] = {f: [] for f in Crops.__dataclass_fields__}
    no_face = 0
    all_clips = clips(nuaa)
    if not all_clips:
        raise DataError(f"{nuaa}: no NUAA frames (ClientRaw/<id>/*.jpg, ImposterRaw/<id>/*.jpg)")
    for c in all_clips:
        for p in c.frames:
            frame = read_image(p)
            faces = det(frame)
            if not faces:
                no_face += 1
                continue
            face = largest_first(faces)[0]
            rows["crops"].append(align(frame, face, recipe, size).rgb)
            rows["live"].append(c.live)
            rows["subject"].append(c.subject)
            rows["clip"].append(recording(p, c.live))
            rows["frame_no"].append(frame_number(p))
            rows["paths"].append(str(p))
    arrays = {k: np.asarray(v) for k, v in rows.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return {"faces": len(rows["crops"]), "no_face": no_face}


def extract_in_child(
    spec: dict, nuaa: Path, out: Path, *, detector: str = "blazeface-short"
) -> Crops:
    """extract() in a clean child process (safe to call from a process that imported TensorFlow)."""
    spec_file = out.with_suffix(".spec.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps(spec))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.liveness.data",
            str(spec_file),
            str(out),
            "--nuaa",
            str(nuaa),
            "--detector",
            detector,
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,  # its last stderr line becomes the DataError below
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise DataError(last.removeprefix("tools.liveness.data: error: "))
    return load(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="tools.liveness.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("spec", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--nuaa", type=Path, default=DEFAULT_NUAA)
    ap.add_argument("--detector", default="blazeface-short")
    args = ap.parse_args(argv)

    def body() -> int:
        try:
            spec = json.loads(args.spec.read_text())
            spec["crop"], spec["input_size"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{args.spec}: not a crop spec (JSON with input_size and crop): {exc}"
            ) from None
        print(json.dumps(extract(spec, args.nuaa, args.out, detector=args.detector)))
        return 0

    return run_command("tools.liveness.data", body)


if __name__ == "__main__":
    sys.exit(main())
