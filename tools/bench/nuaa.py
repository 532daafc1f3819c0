"""The daemon on NUAA replays: false accepts, false rejects, photo attacks, speed.

Runs the real daemon (edge.service, gpiozero MockFactory relay) on replays of
../shared/data/nuaa in two folds: enroll subjects 0001-0005 (one session each)
and replay everything else — their other sessions (genuine attempts), subjects
0006-0010 (impostors: never enrolled) and printed-photo attacks of the enrolled
subjects; then the same with the halves swapped.  An attempt is 10 consecutive
frames at 10 fps; the policy makes one decision per attempt.  The lockout is
switched off here (attempts come every two seconds; it has its own tests).

    python -m tools.bench.nuaa [--json out.json] [-c config.yaml]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

from edge.cli import setup_logging
from edge.config import load_config
from tools import nuaa, replay

DEFAULT_NUAA = Path(__file__).resolve().parents[3] / "shared" / "data" / "nuaa"
FOLDS = (["0001", "0002", "0003", "0004", "0005"], ["0006", "0007", "0008", "0009", "0010"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nuaa", type=Path, default=DEFAULT_NUAA)
    ap.add_argument("-c", "--config")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", type=Path, help="keep the decision logs in this folder")
    args = ap.parse_args(argv)
    setup_logging(30)
    config = load_config(args.config)
    # Attempts follow each other every couple of (virtual) seconds here, far faster
    # than at a door: the lockout would turn most of them into locked_out denials
    # and hide what recognition does.  It is measured by its own tests instead.
    config = replace(config, policy=replace(config.policy, lockout_attempts=1000))
    total = replay.Outcome()
    out: dict = {"threshold": config.match.min_cosine_similarity, "min_margin": config.match.min_margin, "folds": []}
    frames = 0
    seconds = 0.0
    for i, enrolled in enumerate(FOLDS):
        people, attempts = nuaa.split(args.nuaa, enrolled)
        work = (args.keep / f"fold{i + 1}") if args.keep else Path(tempfile.mkdtemp(prefix="facegate-nuaa-"))
        t = time.perf_counter()
        result = replay.run(config, people, attempts, work)
        seconds += time.perf_counter() - t
        frames += result.service.stats.frames
        o = replay.score(result)
        for k, v in asdict(o).items():
            setattr(total, k, getattr(total, k) + v)
        reasons: dict[str, int] = {}
        for r in result.records:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        out["folds"].append({"enrolled": enrolled, **asdict(o), "false_accepts": o.false_accepts,
                             "reasons": reasons, "log": str(result.log_path)})
        print(f"fold {i + 1}: enrolled {', '.join(enrolled)} ({sum(result.enrolled.values())} templates)")
        print(f"  genuine {o.genuine_accepted}/{o.genuine} accepted (FRR {100 * o.frr:.1f}%), wrong person {o.wrong_person}; "
              f"impostors {o.impostor_accepted}/{o.impostor} accepted; photo attacks {o.attack_accepted}/{o.attack} accepted; "
              f"no decision {o.no_decision}")
        print(f"  reasons: {reasons}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.update(total=asdict(total), false_accepts=total.false_accepts, frr=total.frr, frames=frames,
               fps=frames / seconds if seconds else None, peak_rss_mb=rss_mb)
    bound = ""
    if total.false_accepts == 0 and total.impostor:  # rule of three: zero observed is not zero
        bound = f" (stranger acceptance < 3/{total.impostor} = {300 / total.impostor:.1f}% at 95%)"
    print(f"total: false accepts {total.false_accepts} in {total.impostor} impostor + {total.genuine} genuine attempts"
          f"{bound}; FRR {100 * total.frr:.1f}% per attempt; "
          f"photo attacks accepted {total.attack_accepted}/{total.attack}")
    print(f"speed: {frames} frames in {seconds:.1f} s = {frames / seconds:.1f} fps on replay "
          f"(all stages, {config.runtime.threads} threads); peak RSS {rss_mb:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if total.false_accepts == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
