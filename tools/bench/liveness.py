"""Per-frame cost of liveness, cue by cue, against the rule before the MiniFASNet cue, in one run.

In: a folder of frames (default: the committed NUAA samples, 640x480), a facegate config.
Out: median ms per frame of the detector, each liveness cue, and the liveness check as
configured against the earlier rule (texture classifier + planar motion), measured
interleaved on the same frames in one process, so the difference is read in one run.

    python -m tools.bench.liveness [--frames DIR] [--threads 1] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from edge.cli import setup_logging
from edge.detect import largest_first
from edge.images import read_image
from edge.liveness import SCORE_CUES, VETO_CUES, build_liveness
from edge.pipeline import build_detector
from tools.bench import bench_config
from tools.demo import SAMPLES


def measure(frames_dir: Path, config_path: str | None, threads: int, repeat: int) -> dict:
    import cv2

    cv2.setNumThreads(threads)
    config = bench_config(config_path, threads)
    config = replace(config, liveness=replace(config.liveness, enabled=True))
    detector = build_detector(config)
    now = build_liveness(config)
    before = build_liveness(config, scores=["texture"], vetoes=["planar_motion"])
    assert now is not None and before is not None
    frames = [read_image(p) for p in sorted(frames_dir.rglob("*.jpg"))]
    faces = [largest_first(detector(f)) for f in frames]
    pairs = [(f, fs[0]) for f, fs in zip(frames, faces, strict=True) if fs]
    detect_ms: list[float] = []
    now_ms: list[float] = []
    before_ms: list[float] = []
    for r in range(repeat):
        for i, (frame, face) in enumerate(pairs):
            t = time.perf_counter()
            detector(frame)
            detect_ms.append(1e3 * (time.perf_counter() - t))
            # one track per repeat, so planar motion compares consecutive frames as it does live
            for checker, out in ((now, now_ms), (before, before_ms)):
                t = time.perf_counter()
                checker.sample(r, frame, face, i / 10.0)
                out.append(1e3 * (time.perf_counter() - t))
    cues = {key: 1e3 * seconds / max(now.calls, 1) for key, seconds in now.cue_seconds.items()}
    return {
        "frames": len(pairs),
        "repeat": repeat,
        "threads": threads,
        "median_ms": {
            "detect": statistics.median(detect_ms),
            "liveness_now": statistics.median(now_ms),
            "liveness_before": statistics.median(before_ms),
        },
        "mean_ms_per_cue": cues,
        "cues_now": [*now.scores, *now.cues],
        "cues_before": ["texture", VETO_CUES["planar_motion"].key],
        "score_cues": list(SCORE_CUES),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--frames", type=Path, default=SAMPLES)
    ap.add_argument("-c", "--config")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    setup_logging(30)
    r = measure(args.frames, args.config, args.threads, args.repeat)
    m = r["median_ms"]
    print(f"{r['frames']} frames x {r['repeat']}, {r['threads']} thread(s), median ms per frame:")
    print(f"  detect {m['detect']:.1f}")
    print(
        f"  liveness as configured ({', '.join(r['cues_now'])}): {m['liveness_now']:.1f}; "
        f"before the MiniFASNet cue ({', '.join(r['cues_before'])}): {m['liveness_before']:.1f}; "
        f"difference {m['liveness_now'] - m['liveness_before']:+.1f}"
    )
    print(
        "  mean ms per cue: " + ", ".join(f"{k} {v:.1f}" for k, v in r["mean_ms_per_cue"].items())
    )
    if args.json:
        args.json.write_text(json.dumps(r, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
