"""Liveness fitted to a door unlike NUAA, on replays through the daemon.

A door's history, then its future, both as the daemon sees them (``facegate run`` on replay,
the real policy, decision log and drill file):

1. **history**: the live stills of ``--history LIVE`` replayed as attempts and reviewed as
   strangers (labels.csv, as the web app's Review page writes it), and the attack stills of
   ``--history ATTACK`` replayed during an attack drill (``drill.json``: every decision
   marked ``drill``, none unlocks);
2. ``tools/report`` on that history recommends an operating point per liveness cue
   (its "liveness at this door" section, read from its JSON);
3. **future**: the stills of ``--future LIVE ATTACK`` replayed at the points the door ran
   with and at the recommended ones; per attempt, live attempts refused by liveness and
   attacks that passed it.

Each still is held for ``--frames`` frames (a person standing still).  Nobody in the stills
is enrolled (two NUAA sample people are, so the gallery is not empty): this measures
liveness, not recognition.  ``--points`` sets the points the door ran with (default: the
config's), e.g. ``--points texture=0.829``: the texture cue at the point placed on NUAA's own
webcam, as a door set up elsewhere would have it.

    python -m tools.bench.door_liveness --history LIVE ATTACK --future LIVE ATTACK \\
        [-c CONFIG] [--points CUE=P ...] [--frames 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge.cli import run_command, setup_logging
from edge.config import Config, load_config
from edge.errors import DataError, ExitCode
from edge.files import save_state
from edge.liveness import SCORE_CUES, operating_points
from tools import nuaa, replay
from tools.demo import ENROLLED, SAMPLES
from tools.liveness.stills import images_in
from tools.report.__main__ import main as report_main


def with_points(config: Config, points: dict[str, float]) -> Config:
    """``config`` with these score cues' operating points."""
    fields: dict[str, Any] = {SCORE_CUES[k].point: v for k, v in points.items()}
    return replace(config, liveness=replace(config.liveness, **fields))


def attempts(live: list[Path], attack: list[Path], frames: int) -> list[nuaa.Attempt]:
    return [nuaa.Attempt("impostor", "", (p,) * frames) for p in live] + [
        nuaa.Attempt("attack", "", (p,) * frames) for p in attack
    ]


def first_records(result: replay.ReplayResult) -> list[tuple[nuaa.Attempt, dict[str, Any]]]:
    """Each attempt with its first decision (attempts that never reached the policy are left out)."""
    return [(a, recs[0]) for a, recs in result.labelled if recs]


def history(config: Config, live: list[Path], attack: list[Path], frames: int, work: Path) -> Path:
    """Replay the history; returns the labels file (the logs are beside it)."""
    people, _ = nuaa.split(SAMPLES, ENROLLED)
    reviewed = replay.run(config, people, attempts(live, [], frames), work / "reviewed")
    labels = work / "labels.csv"
    labels.write_text(
        "event_id,truth\n"
        + "".join(f"{r['event_id']},impostor\n" for _, r in first_records(reviewed))
    )
    drill = work / "drill"
    drill.mkdir()
    # the drill as the web app starts it: the daemon reads drill.json beside its gallery
    save_state(drill / "drill.json", {"until": time.time() + 25 * 60}, "the attack drill")
    replay.run(config, people, attempts([], attack, frames), drill)
    return labels


def recommend(work: Path, labels: Path) -> dict[str, Any]:
    out = work / "report.json"
    logs = [str(work / "reviewed" / "decisions.jsonl"), str(work / "drill" / "decisions.jsonl")]
    code = report_main([*logs, "--labels", str(labels), "--json", str(out), "-q"])
    if code != 0:
        raise DataError(f"tools/report on the history failed with exit code {code}")
    section = json.loads(out.read_text()).get("liveness_at_this_door")
    if not section:
        raise DataError("tools/report gave no liveness section for the history")
    return section


def future(
    config: Config, live: list[Path], attack: list[Path], frames: int, work: Path
) -> dict[str, Any]:
    people, _ = nuaa.split(SAMPLES, ENROLLED)
    result = replay.run(config, people, attempts(live, attack, frames), work)
    rows = first_records(result)
    lv = [r for a, r in rows if a.label != "attack"]
    at = [r for a, r in rows if a.label == "attack"]
    refused = sum(1 for r in lv if r["liveness"] and not r["liveness"]["live"])
    passed = sum(1 for r in at if r["liveness"] and r["liveness"]["live"])
    by: dict[str, int] = {}
    for r in lv:
        if r["liveness"] and not r["liveness"]["live"]:
            cue = r["liveness"].get("refused_by") or "?"
            by[cue] = by.get(cue, 0) + 1
    return {
        "points": operating_points(config.liveness),
        "live_attempts": len(lv),
        "live_refused_by_liveness": refused,
        "refused_by": by,
        "attack_attempts": len(at),
        "attacks_passing_liveness": passed,
        "unlocks": result.relay_on_events,
    }


def run(args: argparse.Namespace) -> int:
    base = load_config(args.config)
    start = with_points(base, dict(args.points))
    h_live, h_attack = images_in(args.history[0]), images_in(args.history[1])
    f_live, f_attack = images_in(args.future[0]), images_in(args.future[1])
    with tempfile.TemporaryDirectory(prefix="facegate-door-liveness-") as tmp:
        work = Path(tmp)
        labels = history(start, h_live, h_attack, args.frames, work / "history")
        section = recommend(work / "history", labels)
        advice = section["recommendation"]
        together = advice.get("together")
        if advice.get("why_not") or not together:
            raise DataError(f"no recommendation from the history: {advice.get('why_not')}")
        points = {k: float(v) for k, v in together["points"].items()}
        before = future(start, f_live, f_attack, args.frames, work / "before")
        after = future(with_points(start, points), f_live, f_attack, args.frames, work / "after")
    doc = {"history": advice["now"], "recommended": points, "before": before, "after": after}
    print(
        f"history ({args.history[0]}, {args.history[1]}): {len(h_live)} live stills reviewed, "
        f"{len(h_attack)} attack stills during a drill, {args.frames} frames each"
    )
    print(f"  points the door ran with: {_points(before['points'])}")
    print(f"  tools/report recommends:  {_points(points)}")
    print(f"future ({args.future[0]}, {args.future[1]}), one decision per attempt:")
    for name, r in (("as it ran", before), ("recommended", after)):
        print(
            f"  {name:12s} live refused by liveness {r['live_refused_by_liveness']}/{r['live_attempts']} "
            f"{r['refused_by']}; attacks passing liveness "
            f"{r['attacks_passing_liveness']}/{r['attack_attempts']}; unlocks {r['unlocks']}"
        )
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return ExitCode.OK


def _points(points: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in points.items())


def _point(text: str) -> tuple[str, float]:
    cue, _, value = text.partition("=")
    if cue not in SCORE_CUES:
        raise argparse.ArgumentTypeError(f"{cue!r}: not a score cue ({', '.join(SCORE_CUES)})")
    try:
        p = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected CUE=PROBABILITY") from None
    if not 0.0 < p < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: a probability between 0 and 1")
    return cue, p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="tools.bench.door_liveness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--history", nargs=2, type=Path, required=True, metavar=("LIVE", "ATTACK"))
    ap.add_argument("--future", nargs=2, type=Path, required=True, metavar=("LIVE", "ATTACK"))
    ap.add_argument("-c", "--config")
    ap.add_argument("--points", nargs="*", type=_point, default=[], metavar="CUE=P")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    setup_logging(40)
    return run_command("tools.bench.door_liveness", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
