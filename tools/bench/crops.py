"""Measure crop recipes on LFW View 1: which crop makes the embedder verify best.

Runs the device pipeline (decode, BlazeFace, align, TFLite embedder) over the
View 1 pairs for each recipe and prints accuracy (best threshold on DevTrain,
applied to DevTest), so the recipe in the model card is a measured choice.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from edge.align import align
from edge.cards import CropRecipe
from edge.detect import DetectorSpec, FaceDetector
from edge.embed import Embedder, l2_normalize
from edge.images import read_image
from edge.manifest import load_manifest
from tools.bench.lfw import centre_face
from tools.lfw import read_pairs
from tools.verification import accuracy_at, best_threshold


def parse_recipe(text: str) -> CropRecipe:
    parts = text.split(":")
    method, margin, rotate, aspect = parts[0], float(parts[1]), parts[2] == "1", float(parts[3])
    shift = float(parts[4]) if len(parts) > 4 else 0.0
    return CropRecipe(method, margin, rotate, shift, aspect=aspect)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lfw", default="../shared/data/lfw")
    ap.add_argument("--models", required=True)
    ap.add_argument("--embedder", default="facenet-keras.float32.tflite")
    ap.add_argument("--detector", default="blazeface-short")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--recipe",
        action="append",
        default=[],
        help="METHOD:MARGIN:ROTATE(0/1):ASPECT[:SHIFT], e.g. box:0.1:0:1.15 (repeatable)",
    )
    args = ap.parse_args(argv)
    lfw = Path(args.lfw)
    train = read_pairs(lfw / "pairsDevTrain.txt")
    test = read_pairs(lfw / "pairsDevTest.txt")
    entry = load_manifest()[args.detector]
    det = FaceDetector(
        Path(args.models) / entry.filename,
        DetectorSpec(
            entry.spec["input_size"], tuple(entry.spec["strides"]), entry.spec["anchors_per_layer"]
        ),
        min_score=entry.spec["min_score"],
        threads=args.threads,
    )
    emb = Embedder(Path(args.models) / args.embedder, threads=args.threads)
    paths = sorted({p for pr in train + test for p in (pr.a, pr.b)})
    frames, faces = {}, {}
    t = time.time()
    for p in paths:
        fr = read_image(p)
        fs = det(fr)
        if fs:
            frames[p], faces[p] = fr, centre_face(fs, fr)
    print(
        f"{len(paths)} images, {len(paths) - len(faces)} without a face, detect {time.time() - t:.0f}s",
        flush=True,
    )
    recipes = [parse_recipe(r) for r in args.recipe] or [
        CropRecipe("box", 0.1, False),
        CropRecipe("box", 0.1, True),
        CropRecipe("box", 0.1, False, aspect=1.15),
        CropRecipe("landmarks", 0.0, True),
        CropRecipe("landmarks", 0.1, True, aspect=1.15),
    ]
    for rec in recipes:
        t = time.time()
        e1, e2 = {}, {}
        for p, f in faces.items():
            crop = align(frames[p], f, rec, emb.input_size).rgb
            a = l2_normalize(emb.raw(crop))
            b = l2_normalize(emb.raw(crop[:, ::-1]))
            e1[p], e2[p] = a, l2_normalize(a + b)
        for name, e in (("plain", e1), ("flip", e2)):
            res = []
            for pairs in (train, test):
                s = np.array(
                    [float(e[pr.a] @ e[pr.b]) if pr.a in e and pr.b in e else -1.0 for pr in pairs]
                )
                lab = np.array([pr.same for pr in pairs])
                res.append((s, lab))
            th = best_threshold(*res[0])
            acc_train, acc_test = accuracy_at(*res[0], th), accuracy_at(*res[1], th)
            print(
                f"{rec} {name}: train {acc_train:.4f} test {acc_test:.4f} th {th:.3f} ({time.time() - t:.0f}s)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
