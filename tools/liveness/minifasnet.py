"""Convert MiniFASNet (both networks) to the .tflite + liveness cards facegate ships.

In: the two PyTorch weight files kept in ``models/sources/minifasnet/`` (Minivision's
Silent-Face-Anti-Spoofing, Apache-2.0; provenance and sha256 below and in
models/licenses/README.md).  Out: ``models/minifasnet-<name>.float32.tflite`` with its card
and conversion report, each network's patch recipe (scale about the face box, the box
convention measured by tools/liveness/box_convention.py) in its card.

The route is the PyTorch one: the network is written in tools/liveness/minifasnet_net.py
and exported to ONNX in the torch venv (``.venv-torch``, ``make minifasnet``); tools/convert
then turns the ONNX file into a SavedModel (onnx2tf, checked against onnxruntime) and a
.tflite, with the parity gate in both device runtimes on held-out faces (NUAA's layout, so
the gate also compares live/attack AUC).  Float32: each network is 0.4 M parameters and
costs a few milliseconds, so quantizing would buy little and cost parity.

    python -m tools.liveness.minifasnet [--holdout DIR] [--out-dir models] [--force]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge.cli import run_command, setup_logging
from edge.errors import ExitCode
from edge.files import sha256_file
from tools.convert import ROOT, ConvertError
from tools.convert.__main__ import nuaa_labels, print_report
from tools.convert.build import convert
from tools.convert.holdout import Evaluation
from tools.convert.quantize import calibration_images
from tools.convert.source import Source

SOURCES = ROOT / "models" / "sources" / "minifasnet"
TORCH_PYTHON = ROOT / ".venv-torch" / "bin" / "python"
NET = Path(__file__).with_name("minifasnet_net.py")

# The device detector's (BlazeFace's) box -> the makers' detector's box: median ratios over
# NUAA training subjects 0001-0007, live and photo (1,048 frames; python -m
# tools.liveness.box_convention, docs/liveness.md "MiniFASNet's box").
BOX_WIDTH = 1.05
BOX_HEIGHT = 1.06
BOX_SHIFT = -0.04


@dataclass(frozen=True)
class Network:
    """One of the two networks: its weights and the patch it was trained on."""

    name: str  # the output's name: models/<name>.float32.tflite
    weights: str  # file in models/sources/minifasnet/
    sha256: str
    scale: float  # the patch: the makers' box widened this many times about its centre


NETWORKS = (
    Network(
        "minifasnet-v2-2.7",
        "2.7_80x80_MiniFASNetV2.pth",
        "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
        2.7,
    ),
    Network(
        "minifasnet-v1se-4.0",
        "4_0_0_80x80_MiniFASNetV1SE.pth",
        "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
        4.0,
    ),
)


def spec(net: Network) -> dict[str, object]:
    """What the card says of the input: 80x80 BGR, raw 0-255, the makers' patch."""
    return {
        "task": "liveness",
        "input_size": [80, 80],
        "color": "BGR",
        "normalization": {"kind": "fixed", "mean": 0.0, "std": 1.0},
        "crop": {
            "method": "patch",
            "scale": net.scale,
            "box_width": BOX_WIDTH,
            "box_height": BOX_HEIGHT,
            "shift": BOX_SHIFT,
        },
    }


def export_onnx(net: Network, out: Path) -> None:
    """The weights -> ONNX with one live logit, in the torch venv (nothing of facegate there)."""
    weights = SOURCES / net.weights
    got = sha256_file(weights)
    if got != net.sha256:
        raise ConvertError(f"{weights}: sha256 {got[:16]}… is not {net.sha256[:16]}…")
    python = Path(os.environ.get("FACEGATE_TORCH_PYTHON", TORCH_PYTHON))
    if not python.is_file():
        raise ConvertError(
            f"{python}: no torch venv; run make minifasnet (or set FACEGATE_TORCH_PYTHON)"
        )
    done = subprocess.run(
        [str(python), "-I", str(NET), str(weights), str(out)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not out.is_file():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConvertError(f"{weights}: export to ONNX failed: {tail}")


def run(args: argparse.Namespace) -> int:
    images = calibration_images(args.holdout)
    evaluation = Evaluation(images, labels=nuaa_labels(images))
    with tempfile.TemporaryDirectory(prefix="facegate-minifasnet-") as tmp:
        for net in NETWORKS:
            onnx = Path(tmp) / f"{net.name}.onnx"
            export_onnx(net, onnx)
            src = Source(onnx, "onnx", net.name, net.sha256, spec(net))
            report = convert(
                src,
                args.out_dir / f"{net.name}.float32.tflite",
                mode="float32",
                evaluation=evaluation,
                min_holdout_faces=args.min_holdout_faces,
                force=args.force,
            )
            print_report(report)
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="tools.liveness.minifasnet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--holdout",
        type=Path,
        default=ROOT / "tests" / "data" / "nuaa",
        help="held-out faces in NUAA's layout for the parity gate (default: the committed samples)",
    )
    ap.add_argument("--min-holdout-faces", type=int, default=40)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(logging.INFO if args.verbose else logging.WARNING)
    return run_command("tools.liveness.minifasnet", lambda: run(args), debug=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
