"""LFW benchmark of the whole device pipeline (a benchmark, not a unit test).

Runs the 10-fold View 2 protocol on ../shared/data/lfw through real JPEG
decode, BlazeFace, alignment and the TFLite embedder, and prints accuracy
(threshold chosen on 9 folds, tested on the 10th), TAR at FAR = 1e-3, EER,
and per-stage median latency at 1 and 2 threads under each runtime.

Images with no detected face make their pairs count as failed (wrong whatever
the label).  In LFW's centred photos the face nearest the image centre is the
subject; the daemon instead takes the largest face.

    python -m tools.bench.lfw [--pairs pairsDevTest.txt] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.cli import setup_logging
from edge.config import RuntimeConfig
from edge.images import read_image
from edge.liveness import build_liveness
from edge.pipeline import build_pipeline
from edge.runtime import RUNTIMES, available_runtimes
from tools.bench import add_lfw_pairs_arguments, bench_config
from tools.lfw import read_pairs
from tools.verification import eer, kfold_accuracy, tar_at_far


def centre_face(faces, frame):
    cx, cy = frame.width / 2, frame.height / 2
    return min(
        faces,
        key=lambda f: ((f.box[0] + f.box[2]) / 2 - cx) ** 2 + ((f.box[1] + f.box[3]) / 2 - cy) ** 2,
    )


def embed_all(pipeline, paths, progress=True, liveness=None):
    """{path: embedding or None}, and per-image stage times in ms (liveness too, given a LivenessChecker)."""
    out: dict[Any, np.ndarray | None] = {}
    times: dict[str, list[float]] = {
        k: [] for k in ("decode", "detect", "align", "embed", "liveness")
    }
    try:
        from tqdm import tqdm

        it = tqdm(paths, desc="images", unit="img", disable=not progress, file=sys.stderr)
    except ImportError:
        it = paths
    for p in it:
        t0 = time.perf_counter()
        frame = read_image(p)
        t1 = time.perf_counter()
        faces = pipeline.detector(frame)
        t2 = time.perf_counter()
        times["decode"].append((t1 - t0) * 1e3)
        times["detect"].append((t2 - t1) * 1e3)
        if not faces:
            out[p] = None
            continue
        a0, e0 = pipeline.times.align, pipeline.times.embed
        face = centre_face(faces, frame)
        if liveness is not None:
            # One track, frames 0.1 s apart: the planar-motion pair is measured every time.
            l0 = liveness.seconds
            liveness.sample(1, frame, face, 0.1 * len(times["liveness"]))
            times["liveness"].append((liveness.seconds - l0) * 1e3)
        r = pipeline.process(frame, face)
        times["align"].append((pipeline.times.align - a0) * 1e3)
        times["embed"].append((pipeline.times.embed - e0) * 1e3)
        out[p] = r.embedding.vector
    return out, times


def score_pairs(pairs, emb):
    scores, labels, folds, failed = [], [], [], 0
    for pr in pairs:
        a, b = emb.get(pr.a), emb.get(pr.b)
        if a is None or b is None:
            failed += 1
            s = -2.0 if pr.same else 2.0  # counted as an error whatever the threshold
        else:
            s = float(a @ b)
        scores.append(s)
        labels.append(pr.same)
        folds.append(pr.fold)
    return np.array(scores), np.array(labels), np.array(folds), failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_lfw_pairs_arguments(ap)
    ap.add_argument("--embedder", help="embedder .tflite (default: the config's)")
    ap.add_argument("--threads", type=int, default=2, help="threads for the accuracy pass")
    ap.add_argument(
        "--latency-images",
        type=int,
        default=100,
        help="images per runtime x threads latency run (0: skip)",
    )
    ap.add_argument("--latency-only", action="store_true", help="skip the accuracy pass")
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    args = ap.parse_args(argv)
    setup_logging(30)
    config = bench_config(args.config, args.threads)
    pairs = read_pairs(args.lfw / args.pairs)
    paths = sorted({p for pr in pairs for p in (pr.a, pr.b)})
    pipeline = build_pipeline(config, embedder_path=args.embedder)
    result: dict = {
        "embedder": str(pipeline.embedder.card.path),
        "embedder_sha256": pipeline.embedder.sha256,
    }
    if not args.latency_only:
        result.update(accuracy_pass(args, config, pipeline, pairs, paths))
    if args.latency_images:
        result["latency_median_ms"] = latency(args, config, paths)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def accuracy_pass(args, config, pipeline, pairs, paths) -> dict:
    """The 10-fold protocol through the whole pipeline; prints and returns the figures."""
    t = time.time()
    emb, _ = embed_all(pipeline, paths)
    elapsed = time.time() - t
    scores, labels, folds, failed = score_pairs(pairs, emb)
    no_face = sum(v is None for v in emb.values())
    result: dict = {
        "pairs_file": str(args.lfw / args.pairs),
        "pairs": len(pairs),
        "images": len(paths),
        "images_without_face": no_face,
        "failed_pairs": failed,
        "crop": pipeline.embedder.card.raw.get("crop"),
        "flip_average": pipeline.embedder.card.flip_average,
        "detector": config.models.detector,
        "runtime": pipeline.embedder.model.runtime,
        "seconds": round(elapsed, 1),
    }
    if len(set(folds)) > 1:
        k = kfold_accuracy(scores, labels, folds)
        result.update(accuracy=k.accuracy, accuracy_std=k.std, fold_thresholds=k.thresholds)
    tar, th = tar_at_far(scores, labels, 1e-3)
    e, eth = eer(scores, labels)
    result.update(tar_at_far_1e3=tar, threshold_at_far_1e3=th, eer=e, eer_threshold=eth)
    print(
        f"LFW {args.pairs}: {len(pairs)} pairs, {len(paths)} images, {no_face} without a face -> {failed} failed pairs"
    )
    if "accuracy" in result:
        print(
            f"  10-fold accuracy {100 * result['accuracy']:.2f}% ± {100 * result['accuracy_std']:.2f}"
        )
    print(
        f"  TAR {100 * tar:.2f}% at FAR 1e-3 (threshold {th:.3f}); EER {100 * e:.2f}% (threshold {eth:.3f})"
    )
    return result


def latency(args, config, paths) -> dict:
    """Median ms per stage for each installed runtime at 1 and 2 threads, on the same images."""
    lat = {}
    sample = paths[: args.latency_images]
    for rt in [r for r in RUNTIMES if r in available_runtimes()]:
        for threads in (1, 2):
            cfg = replace(config, runtime=RuntimeConfig(backend=rt, threads=threads))
            p = build_pipeline(cfg, embedder_path=args.embedder)
            checker = build_liveness(replace(cfg, liveness=replace(cfg.liveness, enabled=True)))
            embed_all(p, sample[:5], progress=False, liveness=checker)  # warm-up
            _, times = embed_all(p, sample, progress=False, liveness=checker)
            med = {k: round(statistics.median(v), 2) for k, v in times.items() if v}
            lat[f"{rt}/{threads}"] = med
            print(
                f"  latency {rt:15} {threads} thread(s): "
                + ", ".join(f"{k} {v:.1f} ms" for k, v in med.items())
            )
    return lat


if __name__ == "__main__":
    sys.exit(main())
