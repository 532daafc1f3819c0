"""The daemon on NUAA replays: false accepts, false rejects, photo attacks, speed.

Runs the real daemon (edge.service, gpiozero MockFactory relay) on replays of
../shared/data/nuaa in two folds: enroll subjects 0001-0005 (one session each)
and replay everything else — their other sessions (genuine attempts), subjects
0006-0010 (impostors: never enrolled) and printed-photo attacks of the enrolled
subjects; then the same with the halves swapped.  An attempt is 10 consecutive
frames at 10 fps; the policy makes one decision per attempt.  The lockout is
switched off here (attempts come every two seconds; it has its own tests).
By default it runs twice, liveness off then on, and reports what liveness
changes: photo attacks accepted (also for the subjects the liveness model
never saw) and the genuine false-reject rate.

    python -m tools.bench.nuaa [--json out.json] [-c config.yaml] [--liveness both|config]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

from edge.cli import setup_logging
from edge.config import load_config
from tools import nuaa, replay
from tools.liveness import TEST_SUBJECTS

DEFAULT_NUAA = Path(__file__).resolve().parents[3] / "shared" / "data" / "nuaa"
FOLDS = (["0001", "0002", "0003", "0004", "0005"], ["0006", "0007", "0008", "0009", "0010"])


def run_folds(config, nuaa_dir: Path, keep: Path | None, label: str) -> dict:
    """Both folds through the daemon with ``config``; totals, per-fold figures, photo attacks by subject."""
    total = replay.Outcome()
    out: dict = {"liveness": config.liveness.enabled, "folds": []}
    frames, seconds = 0, 0.0
    held_out_attacks = held_out_accepted = 0
    scores = {
        "impostor": -1.0,
        "genuine": 2.0,
    }  # highest stranger attempt, lowest genuine attempt (best scores)
    stage_ms: dict[str, float] = {}
    for i, enrolled in enumerate(FOLDS):
        people, attempts = nuaa.split(nuaa_dir, enrolled)
        work = (
            (keep / label / f"fold{i + 1}")
            if keep
            else Path(tempfile.mkdtemp(prefix="facegate-nuaa-"))
        )
        t = time.perf_counter()
        result = replay.run(config, people, attempts, work)
        seconds += time.perf_counter() - t
        frames += result.service.stats.frames
        o = replay.score(result)
        for k, v in asdict(o).items():
            setattr(total, k, getattr(total, k) + v)
        for attempt, decisions in result.labelled:
            if (
                decisions and attempt.label != "attack"
            ):  # the margin: best scores of strangers and of genuine attempts
                best = max(d["best_score"] for d in decisions)
                kind = "impostor" if attempt.label == "impostor" else "genuine"
                scores[kind] = (
                    max(scores[kind], best) if kind == "impostor" else min(scores[kind], best)
                )
            if attempt.label == "attack" and attempt.subject in TEST_SUBJECTS:
                held_out_attacks += 1
                held_out_accepted += any(d["decision"] == "unlock" for d in decisions)
        reasons: dict[str, int] = {}
        for r in result.records:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        out["folds"].append(
            {
                "enrolled": enrolled,
                **asdict(o),
                "false_accepts": o.false_accepts,
                "reasons": reasons,
                "log": str(result.log_path),
            }
        )
        print(
            f"  fold {i + 1}: enrolled {', '.join(enrolled)} ({sum(result.enrolled.values())} templates): "
            f"genuine {o.genuine_accepted}/{o.genuine} accepted (FRR {100 * o.frr:.1f}%), "
            f"wrong person {o.wrong_person}; impostors {o.impostor_accepted}/{o.impostor} accepted; "
            f"photo attacks {o.attack_accepted}/{o.attack} accepted; no decision {o.no_decision}"
        )
        print(f"    reasons: {reasons}")
        for k, v in result.service.stage_ms().items():
            if not math.isnan(v):  # NaN: a stage that never ran (liveness off)
                stage_ms[k] = stage_ms.get(k, 0.0) + v / len(FOLDS)
    out.update(
        total=asdict(total),
        false_accepts=total.false_accepts,
        frr=total.frr,
        frames=frames,
        fps=frames / seconds if seconds else None,
        stage_ms=stage_ms,
        held_out_attacks={
            "subjects": list(TEST_SUBJECTS),
            "attempts": held_out_attacks,
            "accepted": held_out_accepted,
        },
    )
    bound = ""
    if total.false_accepts == 0 and total.impostor:  # rule of three: zero observed is not zero
        bound = f" (stranger acceptance < 3/{total.impostor} = {300 / total.impostor:.1f}% at 95%)"
    print(
        f"  total: false accepts {total.false_accepts} in {total.impostor} impostor + "
        f"{total.genuine} genuine attempts{bound}; FRR {100 * total.frr:.1f}% per attempt; "
        f"photo attacks accepted {total.attack_accepted}/{total.attack} (of subjects the liveness "
        f"model never saw, {', '.join(TEST_SUBJECTS)}: {held_out_accepted}/{held_out_attacks})"
    )
    th = config.match.min_cosine_similarity
    out["margin"] = {
        "highest_stranger_best": scores["impostor"],
        "below_threshold": th - scores["impostor"],
        "lowest_genuine_best": scores["genuine"],
        "above_threshold": scores["genuine"] - th,
    }
    print(
        f"  margin: highest stranger attempt's best score {scores['impostor']:.3f}, "
        f"{th - scores['impostor']:.3f} below the threshold {th}; "
        f"lowest genuine attempt's {scores['genuine']:.3f} ({scores['genuine'] - th:+.3f})"
    )
    print(
        f"  speed: {frames} frames in {seconds:.1f} s = {frames / seconds:.1f} fps on replay "
        f"({config.runtime.threads} threads); mean ms: "
        + ", ".join(f"{k} {v:.1f}" for k, v in stage_ms.items())
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--nuaa", type=Path, default=DEFAULT_NUAA)
    ap.add_argument("-c", "--config")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", type=Path, help="keep the decision logs in this folder")
    ap.add_argument(
        "--liveness",
        choices=("config", "both"),
        default="both",
        help="both: run with liveness off, then on, and compare (default); config: as configured",
    )
    args = ap.parse_args(argv)
    setup_logging(30)
    config = load_config(args.config)
    # Attempts follow each other every couple of (virtual) seconds here, far faster
    # than at a door: the lockout would turn most of them into locked_out denials
    # and hide what recognition does.  It is measured by its own tests instead.
    config = replace(config, policy=replace(config.policy, lockout_attempts=1000))
    runs = [("as configured", config)]
    if args.liveness == "both":
        runs = [
            ("liveness off", replace(config, liveness=replace(config.liveness, enabled=False))),
            ("liveness on", replace(config, liveness=replace(config.liveness, enabled=True))),
        ]
    out: dict = {
        "threshold": config.match.min_cosine_similarity,
        "min_margin": config.match.min_margin,
        "runs": {},
    }
    for label, cfg in runs:
        print(
            f"{label} (embedder {cfg.models.embedder}, threshold {cfg.match.min_cosine_similarity}):"
        )
        out["runs"][label] = run_folds(cfg, args.nuaa, args.keep, label.replace(" ", "-"))
    if len(runs) == 2:
        off, on = out["runs"]["liveness off"], out["runs"]["liveness on"]
        rise = 100 * (on["frr"] - off["frr"])
        print(
            f"liveness: photo attacks accepted {off['total']['attack_accepted']} -> {on['total']['attack_accepted']} "
            f"of {on['total']['attack']}; genuine FRR {100 * off['frr']:.1f}% -> {100 * on['frr']:.1f}% "
            f"({rise:+.1f} points); false accepts {off['false_accepts']} -> {on['false_accepts']}"
        )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["peak_rss_mb"] = rss_mb
    print(f"peak RSS {rss_mb:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    last = out["runs"][runs[-1][0]]
    return 0 if last["false_accepts"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
