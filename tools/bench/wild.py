"""Faces unlike LFW's framing: LFW pairs re-framed, through the device pipeline (a benchmark).

LFW's photos are centred 250x250 crops with the face filling the middle; a door
camera's face is anywhere in a 640x480 frame, smaller, tilted and often dark.
Each image is put into a 640x480 frame as such a camera might see it, seeded by
its file name so every embedder sees the same frames: scaled by 0.6-1.2 (the
face 60-130 px wide), rotated by up to 25 degrees, placed anywhere, darkened
(gain 0.35-1, gamma 1-1.6) over a flat background.  Then detect (the largest
face) -> landmarks -> align -> embed, as the daemon does.

Reported per embedder: how many images had a face found and usable
(landmarks too, where the card needs them); 10-fold accuracy over the pairs
whose two faces every compared embedder found (the same pairs for each), and
over all pairs with a missed face counted as an error; TAR at FAR 1e-3.

    python -m tools.bench.wild --embedder A.tflite --embedder B.tflite [--pairs pairs.txt] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from edge.cli import setup_logging
from edge.images import read_image
from edge.pipeline import build_pipeline
from edge.types import Frame
from tools.bench import add_lfw_pairs_arguments, bench_config
from tools.lfw import read_pairs
from tools.verification import kfold_accuracy, tar_at_far

WIDTH, HEIGHT = 640, 480


def reframe(rgb: np.ndarray, key: str) -> tuple[np.ndarray, tuple[float, float]]:
    """The image as a door camera might frame it, and where the original's centre went."""
    r = np.random.default_rng(int(hashlib.sha256(key.encode()).hexdigest()[:12], 16))
    h, w = rgb.shape[:2]
    scale, angle = r.uniform(0.6, 1.2), r.uniform(-25.0, 25.0)
    m = np.asarray(cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale), np.float64)
    cx, cy = r.uniform(0.25, 0.75) * WIDTH, r.uniform(0.3, 0.7) * HEIGHT
    m[:, 2] += (cx - w / 2, cy - h / 2)
    background = tuple(int(v) for v in r.integers(40, 200, 3))
    out = cv2.warpAffine(
        rgb,
        m,
        (WIDTH, HEIGHT),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=background,
    )
    gain, gamma = r.uniform(0.35, 1.0), r.uniform(1.0, 1.6)
    out = 255.0 * (gain * (out.astype(np.float32) / 255.0)) ** gamma
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), (cx, cy)


def embed_reframed(pipeline, paths: list[Path]) -> dict[Path, np.ndarray | None]:
    """{path: embedding, or None if no usable face}; the face nearest where the subject was put."""
    out: dict[Path, np.ndarray | None] = {}
    try:
        from tqdm import tqdm

        it = tqdm(
            paths,
            desc=pipeline.embedder.card.raw.get("name", "embedder"),
            unit="img",
            file=sys.stderr,
        )
    except ImportError:
        it = paths
    for p in it:
        rgb, (cx, cy) = reframe(read_image(p).rgb, p.name)
        frame = Frame(rgb, source=str(p))
        faces = pipeline.detect(frame)
        if not faces:
            out[p] = None
            continue
        face = min(
            faces,
            key=lambda f: (
                ((f.box[0] + f.box[2]) / 2 - cx) ** 2 + ((f.box[1] + f.box[3]) / 2 - cy) ** 2
            ),
        )
        r = pipeline.process(frame, face)
        out[p] = r.embedding.vector if r.quality.landmarks >= 1.0 else None
    return out


def figures(pairs, emb: dict, common: set) -> dict:
    both = [i for i, pr in enumerate(pairs) if pr.a in common and pr.b in common]
    s = np.array([float(emb[pairs[i].a] @ emb[pairs[i].b]) for i in both])
    y = np.array([pairs[i].same for i in both])
    f = np.array([pairs[i].fold for i in both])
    k = kfold_accuracy(s, y, f)
    # All pairs, a missed face counted as an error whatever the threshold.
    s_all = np.array(
        [
            (
                float(emb[pr.a] @ emb[pr.b])
                if emb.get(pr.a) is not None and emb.get(pr.b) is not None
                else (-2.0 if pr.same else 2.0)
            )
            for pr in pairs
        ]
    )
    k_all = kfold_accuracy(
        s_all, np.array([pr.same for pr in pairs]), np.array([pr.fold for pr in pairs])
    )
    tar, th = tar_at_far(s, y, 1e-3)
    return {
        "pairs_compared": len(both),
        "accuracy_common": k.accuracy,
        "accuracy_common_std": k.std,
        "accuracy_all_pairs": k_all.accuracy,
        "tar_at_far_1e3": tar,
        "threshold_at_far_1e3": th,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_lfw_pairs_arguments(ap)
    ap.add_argument(
        "--embedder", action="append", required=True, help="an embedder .tflite (repeat to compare)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    setup_logging(30)
    config = bench_config(args.config, args.threads)
    pairs = read_pairs(args.lfw / args.pairs)
    paths = sorted({p for pr in pairs for p in (pr.a, pr.b)})
    embs = {
        e: embed_reframed(build_pipeline(config, embedder_path=e), paths) for e in args.embedder
    }
    common = set(paths)
    for emb in embs.values():
        common &= {p for p, v in emb.items() if v is not None}
    result = {
        "pairs_file": args.pairs,
        "images": len(paths),
        "images_usable_by_all": len(common),
        "embedders": {},
    }
    print(
        f"LFW {args.pairs} re-framed: {len(pairs)} pairs, {len(paths)} images; {len(common)} usable by every embedder"
    )
    for e, emb in embs.items():
        found = sum(v is not None for v in emb.values())
        fig = {"images_usable": found, **figures(pairs, emb, common)}
        result["embedders"][e] = fig
        print(
            f"  {Path(e).name}: faces usable in {found}/{len(paths)} images; "
            f"10-fold accuracy {100 * fig['accuracy_common']:.2f}% ± {100 * fig['accuracy_common_std']:.2f} "
            f"on the {fig['pairs_compared']} pairs all found, {100 * fig['accuracy_all_pairs']:.2f}% on all "
            f"(a miss is an error); TAR {100 * fig['tar_at_far_1e3']:.2f}% at FAR 1e-3"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
