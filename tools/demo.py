"""The demo: the device pipeline on the committed sample faces.

Detects, aligns and embeds every image in tests/data/lfw with the configured
models, then verifies every pair at the configured threshold and prints the
verdicts with a confusion matrix.  (Until the daemon lands this is the main job
on an embedded default; see the README.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli import setup_logging
from edge.config import load_config
from edge.errors import FacegateError
from edge.images import read_image
from edge.pipeline import build_pipeline

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "lfw"


def person(path: Path) -> str:
    return path.stem.rsplit("_", 1)[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-c", "--config")
    ap.add_argument("images", nargs="*", type=Path, help="NAME_NNNN.jpg files (default: the committed samples)")
    args = ap.parse_args(argv)
    setup_logging(30)
    try:
        config = load_config(args.config)
        pipeline = build_pipeline(config)
        paths = args.images or sorted(SAMPLES.glob("*.jpg"))
        emb = {}
        for p in paths:
            frame = read_image(p)
            results = pipeline(frame, max_faces=1)
            if not results:
                print(f"{p.name}: no face found")
                continue
            r = results[0]
            q = r.quality
            print(f"{p.name:28} face {r.face.width:.0f}px score {r.face.score:.2f} yaw {q.yaw:+.0f}° sharpness {q.sharpness:.0f}")
            emb[p] = r.embedding
    except FacegateError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    th = config.match.min_cosine_similarity
    print(f"\nEvery pair at match.min_cosine_similarity = {th}:")
    tp = fp = tn = fn = 0
    keys = list(emb)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            s = emb[a].cosine(emb[b])
            same, accept = person(a) == person(b), s >= th
            tp += same and accept
            fn += same and not accept
            fp += accept and not same
            tn += not same and not accept
            mark = "ACCEPT" if accept else "reject"
            truth = "same" if same else "different"
            flag = "" if accept == same else "   <-- WRONG"
            print(f"  {a.stem:24} {b.stem:24} {s:+.3f} {mark}  ({truth}){flag}")
    print(f"\ngenuine pairs: {tp} accepted, {fn} rejected; impostor pairs: {fp} accepted (false accepts), {tn} rejected")
    print(f"embedder: {pipeline.embedder.card.path} ({pipeline.embedder.model.runtime}, sha256 {pipeline.embedder.sha256[:12]}…)")
    return 0 if fp == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
