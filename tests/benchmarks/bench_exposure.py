"""Benchmark face-metered exposure: what one frame's metering costs beside the detector it follows.

In: the committed NUAA sample frames (tests/data/nuaa) and the detector from
the model cache (`make models`).  Out: mean time per frame of the detector and
of edge.exposure's loop (meter the largest face, decide), measured in the same
run, and their ratio.  The loop runs on every frame of the daemon while
face_metering is on (picamera2).

    .venv/bin/python tests/benchmarks/bench_exposure.py [--repeat 50]

A script, not a pytest test.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from edge.config import load_config
from edge.exposure import FaceExposure
from edge.images import read_image
from edge.pipeline import build_detector

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "nuaa"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=50, help="passes over the sample frames")
    args = ap.parse_args()
    cfg = load_config()
    detector = build_detector(cfg)
    frames = [read_image(p) for p in sorted(SAMPLES.rglob("*.jpg"))]
    faces = [detector(f) for f in frames]
    boxes = [max(fs, key=lambda f: f.width).box if fs else None for fs in faces]
    # settle_frames 0: meter every frame, the worst case (the daemon skips a few after each change)
    loop = FaceExposure(replace(cfg.exposure, settle_frames=0))
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        for f in frames:
            detector(f)
    detect = (time.perf_counter() - t0) / (args.repeat * len(frames))
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        for k, (f, box) in enumerate(zip(frames, boxes, strict=True)):
            loop.update(f.rgb, box, float(k))
    meter = (time.perf_counter() - t0) / (args.repeat * len(frames))
    sizes = sorted(int(b[2] - b[0]) for b in boxes if b is not None)
    print(
        f"{len(frames)} frames {frames[0].width}x{frames[0].height}, faces {sizes[0]}-{sizes[-1]} px wide, "
        f"{args.repeat} passes"
    )
    print(
        f"detect {1e3 * detect:.2f} ms/frame; face metering {1e6 * meter:.0f} us/frame "
        f"({100 * meter / detect:.1f}% of detect)"
    )


if __name__ == "__main__":
    main()
