"""The daemon as systemd runs it: frames per second and peak memory (RSS).

Enrolls the committed sample people, then runs ``facegate run --mock-gpio
--replay DIR`` as a child process over a replay of face frames (the samples,
repeated) and reports frames per second (from the daemon's own count) and the
child's peak resident set size.  Replay is unpaced, so this is throughput.

    python -m tools.bench.daemon [-c tools/demo.yaml] [--frames 600]
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from edge.cli import setup_logging
from edge.config import load_config
from tools import nuaa, replay
from tools.demo import DEMO_CONFIG, ENROLLED, SAMPLES


@dataclass(frozen=True)
class DaemonRun:
    wall: float  # seconds, start-up included
    frames: int
    decisions: int
    unlocks: int
    stderr: str


def run_daemon(conf: Path, src: Path) -> DaemonRun:
    """``facegate run --mock-gpio --replay SRC`` as a child, counted from its own "stopped:" line;
    RuntimeError with the end of its stderr if it failed."""
    t = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "-c",
            str(conf),
            "-v",
            "run",
            "--mock-gpio",
            "--replay",
            str(src),
        ],
        check=False,  # a failed run raises with its stderr below
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    m = re.search(r"stopped: (\d+) frames, (\d+) decisions, (\d+) unlocks", proc.stderr)
    if proc.returncode != 0 or not m:
        raise RuntimeError(proc.stderr[-2000:])
    frames, decisions, unlocks = (int(g) for g in m.groups())
    return DaemonRun(wall, frames, decisions, unlocks, proc.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-c", "--config", default=str(DEMO_CONFIG))
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    setup_logging(30)
    work = Path(tempfile.mkdtemp(prefix="facegate-daemon-bench-"))
    config = replay.replay_config(load_config(args.config), work)
    people, attempts = nuaa.split(SAMPLES, ENROLLED)
    replay.enroll_all(config, people)
    frames = [f for a in attempts for f in a.frames]
    src = work / "replay"
    src.mkdir()
    for i in range(args.frames):
        (src / f"{i:06d}.jpg").symlink_to(frames[i % len(frames)])
    raw = yaml.safe_load(Path(args.config).read_text()) or {}
    raw.setdefault("runtime", {})["threads"] = args.threads
    raw["gallery"] = {"path": config.gallery.path}
    raw["log"] = {"decisions": config.log.decisions}
    raw.setdefault("policy", {})["lockout_attempts"] = 1000
    raw["camera"] = {"fps": 120.0}  # the top of the config's range: throughput, not pacing
    # "as configured": a decided face is no longer embedded; "every frame": nobody is ever
    # accepted and a denied face retries at once, so each frame runs the whole pipeline.
    worst = {
        **raw,
        "match": {**raw.get("match", {}), "min_cosine_similarity": 1.0},
        "policy": {**raw["policy"], "retry_after_s": 0.0},
    }
    for label, cfg in (("as configured", raw), ("every frame judged", worst)):
        conf = work / "bench.yaml"
        conf.write_text(yaml.safe_dump(cfg))
        try:
            run = run_daemon(conf, src)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        wall, n, decisions, unlocks = run.wall, run.frames, run.decisions, run.unlocks
        # RUSAGE_CHILDREN's peak is the largest child so far: each run is larger than the last.
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"daemon ({config.models.embedder}, {args.threads} threads, {label}): {n} frames in {wall:.1f} s wall "
            f"(including start-up) = {n / wall:.1f} fps; {decisions} decisions, {unlocks} unlocks; "
            f"peak RSS {rss_mb:.0f} MB"
        )
        stages = re.search(r"stage times: (.*)", run.stderr)
        if stages:
            print(f"  {stages.group(1)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
