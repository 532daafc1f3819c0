"""Per-frame cost against dlib's face_recognition, on the same frames, in one run (opt-in benchmark).

The peer is dlib's ``face_recognition`` (HOG detector + 5-point shape predictor +
ResNet encoder), the usual "face recognition in Python" baseline.  It runs in its
own venv (``make peer-venv`` -> .venv-dlib: dlib-bin, face_recognition and its
models, from PyPI), as a child process given the same image files; facegate runs
here.  Both use one thread and do the same work per frame: find the faces,
then crop and embed the largest.  Each side is timed per frame after a warm-up;
the figure to read is the ratio of the medians, measured in the same run.

    make peer-venv && .venv/bin/python -m tools.bench.peer [--frames DIR] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from edge.cli import setup_logging
from edge.images import read_image
from edge.pipeline import build_pipeline
from tools.bench import bench_config
from tools.demo import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
PEER_PYTHON = ROOT / ".venv-dlib" / "bin" / "python"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# Runs in the peer venv: per-frame ms of face_locations (HOG) + face_encodings of the largest face.
_PEER = r"""
import json, sys, time
import face_recognition
paths, repeat = sys.argv[2:], int(sys.argv[1])
images = [face_recognition.load_image_file(p) for p in paths]
def one(img):
    boxes = face_recognition.face_locations(img, number_of_times_to_upsample=1, model="hog")
    if not boxes:
        return 0
    big = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    face_recognition.face_encodings(img, known_face_locations=[big], num_jitters=1)
    return 1
for img in images[:3]:
    one(img)
ms, found = [], 0
for _ in range(repeat):
    for img in images:
        t = time.perf_counter(); found += one(img); ms.append((time.perf_counter() - t) * 1e3)
import dlib
print(json.dumps({"ms": ms, "found": found, "dlib": dlib.__version__}))
"""


def facegate_ms(paths: list[Path], repeat: int) -> tuple[list[float], int, str]:
    """Per-frame ms of detect + (landmarks) + crop + embed of the largest face, one thread."""
    import cv2

    cv2.setNumThreads(1)
    config = bench_config(None, 1)
    pipeline = build_pipeline(config)
    frames = [read_image(p) for p in paths]

    def one(frame) -> int:
        faces = pipeline.detect(frame)
        if not faces:
            return 0
        pipeline.process(frame, faces[0])
        return 1

    for f in frames[:3]:
        one(f)
    ms, found = [], 0
    for _ in range(repeat):
        for f in frames:
            t = time.perf_counter()
            found += one(f)
            ms.append((time.perf_counter() - t) * 1e3)
    return ms, found, pipeline.embedder.card.path.name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--frames",
        type=Path,
        default=SAMPLES,
        help="folder of images (default: the NUAA samples, 640x480)",
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peer-python", type=Path, default=PEER_PYTHON)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    setup_logging(30)
    if not args.peer_python.is_file():
        print(
            f"tools/bench/peer: no peer venv at {args.peer_python}: run `make peer-venv` first",
            file=sys.stderr,
        )
        return 2
    paths = sorted(p for p in args.frames.rglob("*.jpg"))
    os.environ.update(ONE_THREAD)
    ours, our_found, embedder = facegate_ms(paths, args.repeat)
    proc = subprocess.run(
        [str(args.peer_python), "-I", "-c", _PEER, str(args.repeat), *map(str, paths)],
        check=False,  # a failed peer is reported from its stderr below
        capture_output=True,
        text=True,
        env={**os.environ, **ONE_THREAD},
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"tools/bench/peer: the peer failed: {last}", file=sys.stderr)
        return 1
    peer = json.loads(proc.stdout.strip().splitlines()[-1])
    a, b = statistics.median(ours), statistics.median(peer["ms"])
    result = {
        "frames": len(paths),
        "repeat": args.repeat,
        "facegate": {"embedder": embedder, "median_ms": a, "faces_found": our_found},
        "dlib_face_recognition": {
            "dlib": peer["dlib"],
            "median_ms": b,
            "faces_found": peer["found"],
        },
        "ratio_facegate_to_dlib": a / b,
    }
    print(
        f"{len(paths)} frames x {args.repeat}, one thread, per frame (find faces, crop + embed the largest):"
    )
    print(
        f"  facegate ({embedder}): median {a:.1f} ms, a face in {our_found} of {len(paths) * args.repeat}"
    )
    print(
        f"  dlib {peer['dlib']} face_recognition (HOG + ResNet): median {b:.1f} ms, a face in {peer['found']}"
    )
    print(f"  ratio facegate / dlib: {a / b:.3f} (1/{b / a:.1f})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
