"""How high can a stranger score?  Every cross-person image pair of LFW View 1 (a benchmark).

A door's threshold must sit above what strangers score, with room for people
nobody measured.  Ten door-camera subjects (NUAA) are too few to see the tail,
so this looks at a large population instead: every image of LFW View 1
(pairsDevTrain + pairsDevTest, the development view, never View 2's test
folds), through the device pipeline (detect -> landmarks -> align -> embed),
compared with every image of every *other* person — millions of stranger
pairs.  It prints the score that one stranger pair in 10^3 ... 10^6 reaches,
and the highest, and how many genuine pairs (same person, other image) fall
below each: the trade a threshold makes between the two.

    python -m tools.bench.impostors [--embedder PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge.cli import setup_logging
from edge.pipeline import build_pipeline
from tools.bench import DEFAULT_LFW, bench_config
from tools.bench.lfw import embed_all
from tools.lfw import read_pairs

RATES = (1e-3, 1e-4, 1e-5, 1e-6)


def person(path: Path) -> str:
    """LFW's person name from its file name (Colin_Powell_0038.jpg -> Colin_Powell)."""
    return path.stem.rsplit("_", 1)[0]


def tail(embeddings: dict[Path, np.ndarray]) -> dict:
    paths = sorted(embeddings)
    names = np.array([person(p) for p in paths])
    x = np.stack([embeddings[p] for p in paths]).astype(np.float32)
    sims = x @ x.T
    upper = np.triu(np.ones(sims.shape, bool), k=1)
    same = names[:, None] == names[None, :]
    impostor = np.sort(sims[upper & ~same])[::-1]
    genuine = np.sort(sims[upper & same])
    out: dict = {
        "images": len(paths),
        "people": len(set(names)),
        "impostor_pairs": int(impostor.size),
        "genuine_pairs": int(genuine.size),
        "highest_impostor": float(impostor[0]),
        "at_far": {},
    }
    for rate in RATES:
        k = int(rate * impostor.size)
        if k < 1:
            continue
        th = float(impostor[k - 1])
        out["at_far"][f"{rate:g}"] = {
            "threshold": th,
            "genuine_pairs_below": float(np.mean(genuine < th)),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("-c", "--config", help="facegate config (default: the shipped one)")
    ap.add_argument("--embedder", help="embedder .tflite (default: the config's)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    setup_logging(30)
    config = bench_config(args.config, 2)
    pairs = read_pairs(args.lfw / "pairsDevTrain.txt") + read_pairs(args.lfw / "pairsDevTest.txt")
    paths = sorted({p for pr in pairs for p in (pr.a, pr.b)})
    pipeline = build_pipeline(config, embedder_path=args.embedder)
    emb, _ = embed_all(pipeline, paths)
    found = {p: v for p, v in emb.items() if v is not None}
    result = {"embedder": str(pipeline.embedder.card.path), **tail(found)}
    print(
        f"LFW View 1: {result['images']} images of {result['people']} people "
        f"({len(paths) - len(found)} without a face): {result['impostor_pairs']:,} stranger pairs, "
        f"{result['genuine_pairs']:,} genuine pairs"
    )
    for rate, v in result["at_far"].items():
        print(
            f"  one stranger pair in {1 / float(rate):>9,.0f} scores >= {v['threshold']:.3f}; "
            f"genuine pairs below that: {100 * v['genuine_pairs_below']:.2f}%"
        )
    print(f"  highest stranger pair: {result['highest_impostor']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
