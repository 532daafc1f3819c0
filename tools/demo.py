"""The demo: the real door-lock daemon on recorded door-camera frames.

Enrolls two people from a committed sample of NUAA webcam frames (one session
each), then runs the daemon (edge.service: camera -> detect -> align -> embed
-> match -> policy -> relay + decision log) on replays of their other
sessions, of a stranger, and of a printed photo of an enrolled person, with
gpiozero's MockFactory standing in for the relay.  Each decision is printed as
it happens; the decision log is kept for tools/report.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from edge.cli import setup_logging
from edge.config import load_config
from edge.errors import FacegateError
from tools import nuaa, replay

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "nuaa"
DEMO_CONFIG = Path(__file__).with_name("demo.yaml")
ENROLLED = ["0005", "0009"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "-c",
        "--config",
        default=str(DEMO_CONFIG),
        help="facegate config (default: tools/demo.yaml)",
    )
    ap.add_argument("--nuaa", type=Path, default=SAMPLES, help="NUAA-layout folder to replay")
    ap.add_argument(
        "--out", type=Path, help="where to keep the gallery and decision log (default: a temp dir)"
    )
    args = ap.parse_args(argv)
    setup_logging(30)
    out = args.out or Path(tempfile.mkdtemp(prefix="facegate-demo-"))
    try:
        config = load_config(args.config)
        people, attempts = nuaa.split(args.nuaa, ENROLLED)
        print(f"config {config.source}: embedder {config.models.embedder}")
        print(
            f"Enrolling {', '.join(people)} from one session each, then replaying {len(attempts)} attempts "
            f"through the daemon (threshold {config.match.min_cosine_similarity}, "
            f"{config.policy.min_matching_frames} of {config.policy.frames} frames):"
        )

        def on_enroll(name: str, a) -> None:
            if not a.accepted:
                print(f"  {name}: skipped {Path(a.source).name}: {a.reason}")

        labels = {str(f): a for a in attempts for f in a.frames}
        threshold = config.match.min_cosine_similarity
        best_by_kind: dict[str, list[float]] = {"genuine": [], "stranger": []}

        def on_decision(d, record) -> None:
            truth = next((labels[s] for s in d.sources if s in labels), None)
            if truth is not None and truth.label != "attack":
                best_by_kind["stranger" if truth.label == "impostor" else "genuine"].append(
                    d.best_score
                )
            if truth is None:
                who = "?"
            elif truth.label == "attack":
                who = f"printed photo of subject{truth.subject}"
            elif truth.label == "impostor":
                who = f"stranger (subject{truth.subject}, not enrolled)"
            else:
                who = truth.label
            verdict = "UNLOCK" if d.unlock else "deny  "
            live = d.liveness or {}
            # the deciding cue's live probability, and the cue that refused
            lv = (
                f" live={live['live_probability']:.2f}"
                if live.get("live_probability") is not None
                else ""
            )
            if live.get("refused_by"):
                lv += f" ({live['refused_by']})"
            print(
                f"  {verdict} {d.reason:19} person={d.person or '-':12} best={d.best_score:+.3f} "
                f"({d.best_score - threshold:+.3f}) frames {d.frames_matched}/{d.frames_used}{lv}   <- {who}"
            )

        result = replay.run(
            config,
            people,
            attempts,
            out,
            on_decision=on_decision,
            on_enroll=on_enroll,
            snapshots=True,
        )
    except FacegateError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    o = replay.score(result)
    print(f"\nenrolled templates: {result.enrolled}")
    print(
        f"genuine attempts accepted: {o.genuine_accepted}/{o.genuine}; "
        f"strangers let in: {o.impostor_accepted}/{o.impostor}; wrong person let in: {o.wrong_person}; "
        f"photo attacks let in: {o.attack_accepted}/{o.attack} "
        f"(liveness {'on' if config.liveness.enabled else 'OFF'})"
    )
    genuine, stranger = best_by_kind["genuine"], best_by_kind["stranger"]
    if genuine and stranger:
        low, high = min(genuine), max(stranger)
        print(
            f"margins at threshold {threshold}: lowest genuine best {low:.3f} ({low - threshold:+.3f}), "
            f"highest stranger best {high:.3f} ({high - threshold:+.3f})"
        )
    print(f"relay energised {result.relay_on_events} time(s) on the mock pin; it is off now.")
    print(f"decision log: {result.log_path}")
    print(f"snapshots:    {out / 'snapshots'}")
    attacks_ok = o.attack_accepted == 0 or not config.liveness.enabled
    return 0 if o.false_accepts == 0 and attacks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
