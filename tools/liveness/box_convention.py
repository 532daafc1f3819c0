"""Measure how the device detector's face box differs from the box an anti-spoofing model's makers drew.

MiniFASNet was trained on patches cut around the boxes of its makers' own detector (a
RetinaFace in Caffe, shipped in their repository); the device draws BlazeFace boxes, which
are smaller and sit higher.  This measures, frame by frame, the makers' box against the
device's on the same images and prints the median ratios: width, height and the centre's
shift down (in device box heights).  They go into the MiniFASNet cards' crop recipe
(``box_width``, ``box_height``, ``shift``).

In: a folder of images (searched recursively), the makers' detector files.  Out: the medians
and their spread, as text and one JSON line.

    python -m tools.liveness.box_convention DIR [DIR...] --prototxt deploy.prototxt \\
        --caffemodel Widerface-RetinaFace.caffemodel [-c CONFIG] [--limit N]

The makers' detector is not part of facegate (it stays in their repository); it is read
only by this measurement, never by the device.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import cv2
import numpy as np

from edge.cli import run_command, setup_logging
from edge.config import load_config
from edge.detect import largest_first
from edge.errors import DataError, ExitCode
from edge.images import read_image
from edge.pipeline import build_detector

# The makers' detector call: the image scaled to about 192x192 pixels of area, their
# Caffe means, the most confident box.
_AREA = 192 * 192
_MEAN = (104, 117, 123)
MIN_IOU = 0.3  # below this the two detectors found different things: not compared


def reference_box(net: cv2.dnn.Net, bgr: np.ndarray) -> tuple[float, float, float, float] | None:
    """The makers' detector's most confident box (x0, y0, x1, y1) in pixels, or None."""
    h, w = bgr.shape[:2]
    img = bgr
    if w * h >= _AREA:
        r = w / h
        img = cv2.resize(bgr, (int(192 * math.sqrt(r)), int(192 / math.sqrt(r))))
    net.setInput(cv2.dnn.blobFromImage(img, 1.0, mean=_MEAN), "data")
    out = net.forward("detection_out").reshape(-1, 7)
    if not len(out):
        return None
    best = out[int(np.argmax(out[:, 2]))]
    if best[2] < 0.6:
        return None
    return float(best[3] * w), float(best[4] * h), float(best[5] * w), float(best[6] * h)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def measure(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    detector = build_detector(config)
    net = cv2.dnn.readNetFromCaffe(str(args.prototxt), str(args.caffemodel))
    images = sorted(
        p
        for d in args.images
        for p in d.rglob("*")
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    if not images:
        raise DataError(f"{' '.join(map(str, args.images))}: no images")
    images = images[:: max(1, len(images) // args.limit)] if args.limit else images
    rows = []
    for p in images:
        frame = read_image(p)
        faces = largest_first(detector(frame))
        ref = reference_box(net, np.ascontiguousarray(frame.rgb[..., ::-1]))
        if not faces or ref is None or _iou(faces[0].box, ref) < MIN_IOU:
            continue
        x0, y0, x1, y1 = faces[0].box
        w, h = x1 - x0, y1 - y0
        rows.append(
            (
                (ref[2] - ref[0]) / w,
                (ref[3] - ref[1]) / h,
                ((ref[1] + ref[3]) / 2 - (y0 + y1) / 2) / h,
                ((ref[0] + ref[2]) / 2 - (x0 + x1) / 2) / w,
            )
        )
    if not rows:
        raise DataError("no image where both detectors found the same face")
    a = np.array(rows)
    med = np.median(a, axis=0)
    p10, p90 = np.percentile(a, [10, 90], axis=0)
    names = ("box_width", "box_height", "shift", "shift_x")
    print(f"{len(rows)} of {len(images)} images with the same face from both detectors")
    for i, n in enumerate(names):
        print(
            f"  {n:10s} median {med[i]:+.3f}  (10th-90th percentile {p10[i]:+.3f} .. {p90[i]:+.3f})"
        )
    print(
        json.dumps({n: round(float(med[i]), 3) for i, n in enumerate(names)} | {"faces": len(rows)})
    )
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="tools.liveness.box_convention",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("images", type=Path, nargs="+", help="folders of images")
    ap.add_argument("--prototxt", type=Path, required=True)
    ap.add_argument("--caffemodel", type=Path, required=True)
    ap.add_argument("-c", "--config", default=None)
    ap.add_argument("--limit", type=int, default=0, help="at most about N images, evenly spread")
    args = ap.parse_args(argv)
    setup_logging(logging.WARNING)
    return run_command("tools.liveness.box_convention", lambda: measure(args))


if __name__ == "__main__":
    sys.exit(main())
