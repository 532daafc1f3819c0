"""Evaluate presentation-attack detection (ISO/IEC 30107-3 terms): NUAA's held-out subjects, or stills.

NUAA (the default).  In: ../shared/data/nuaa, the liveness cues and operating points from
a facegate config (default: the shipped ones).  Out: APCER (attack attempts accepted as
live) and BPCER (live attempts refused as attacks) per attempt -- ``liveness.min_frames``
consecutive frames, the frames the policy judges for one decision -- at the configured
operating points, for the daemon's rule (each score cue vetoes, and rigid planar motion)
and for each cue alone; the APCER/BPCER curve of the rule's margin (PNG + JSON); the
per-frame cost of detect and liveness.

Stills (``--images LIVE_DIR ATTACK_DIR``): every image is one attempt of one frame, scored
through the device code (tools.liveness.stills): AUC, APCER and BPCER at the configured
points, APCER at BPCER 1/2/5/10%, per cue too, images without a face, the worst by name.

Attempts are runs of consecutive frames of one recording (ID_glasses_pos_session),
live or printed.  Frames go through the device code (edge.detect,
edge.liveness) as in the daemon: the largest face, one track per attempt,
10 fps of virtual time.
Subjects that trained the model (its card's training.subjects) are refused.

    python -m tools.liveness.evaluate [-c CONFIG] [--subjects 0008 0009 0010] [--out DIR]
    python -m tools.liveness.evaluate --images LIVE_DIR ATTACK_DIR [-c CONFIG] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.cli import run_command, setup_logging
from edge.config import Config, load_config
from edge.detect import largest_first
from edge.errors import DataError, ExitCode
from edge.images import read_image
from edge.liveness import (
    SCORE_CUES,
    LivenessSample,
    build_liveness,
    enabled_vetoes,
    judge,
    operating_points,
)
from edge.pipeline import build_detector
from tools.liveness import TEST_SUBJECTS
from tools.liveness.data import DEFAULT_NUAA
from tools.liveness.metrics import MAX_BPCER, curve, rates

FPS = 10.0


def recordings(nuaa: Path, subjects: list[str]) -> dict[str, tuple[bool, list[Path]]]:
    """Recording (tools.nuaa.recording) -> (live, frames in recording order: a Clip's order)."""
    from tools.nuaa import clips, recording

    out: dict[str, tuple[bool, list[Path]]] = {}
    for c in clips(nuaa):
        if c.subject in subjects:
            for p in c.frames:
                out.setdefault(recording(p, c.live), (c.live, []))[1].append(p)
    return out


def score_attempts(
    config: Config, recs: dict[str, tuple[bool, list[Path]]], n: int
) -> dict[str, Any]:
    """Every attempt (n consecutive frames of a recording) through the device code, as its own track."""
    detector = build_detector(config)
    # Every cue is measured (its own figures); the configured rule decides in judge().
    checker = build_liveness(
        replace(config, liveness=replace(config.liveness, enabled=True)),
        scores=list(SCORE_CUES),
        vetoes=["planar_motion"],
    )
    assert checker is not None
    cfg = config.liveness
    detect_s: list[float] = []
    no_face, track, out = 0, 0, []
    for key in sorted(recs):
        live, frames = recs[key]
        for j in range(0, len(frames) - n + 1, n):
            track += 1
            samples: list[LivenessSample | None] = []
            for i, p in enumerate(frames[j : j + n]):
                frame = read_image(p)
                t = time.perf_counter()
                faces = detector(frame)
                detect_s.append(time.perf_counter() - t)
                if not faces:
                    no_face += 1
                    samples.append(None)
                    continue
                face = largest_first(faces)[0]
                samples.append(checker.sample(track, frame, face, (i + 1) / FPS))
            checker.forget(track)
            v = judge(
                samples, points=operating_points(cfg), min_frames=n, vetoes=enabled_vetoes(cfg)
            )
            every = judge(samples, points=dict.fromkeys(SCORE_CUES, 0.5), min_frames=n, vetoes=[])
            out.append(
                {
                    "recording": key,
                    "live_truth": live,
                    "accepted": v.live,
                    "why": v.why,
                    "refused_by": v.refused_by,
                    "margin": v.margin,
                    "cues": {c.key: c.live_probability for c in every.cues},
                    "planar_pairs": v.count("planar_pairs"),
                    "frames": [str(p) for p in frames[j : j + n]],
                }
            )
    return {
        "attempts": out,
        "no_face": no_face,
        "detect_ms": 1e3 * float(np.median(detect_s)) if detect_s else float("nan"),
        "liveness_ms": 1e3 * checker.seconds / max(checker.calls, 1),
    }


def summarize(att: list[dict[str, Any]], config: Config) -> dict[str, Any]:
    truth = np.array([a["live_truth"] for a in att], bool)
    margin = np.nan_to_num(np.array([a["margin"] for a in att], float), nan=-np.inf)
    planar = np.array([a["planar_pairs"] > 0 for a in att], bool)
    accepted = np.array([a["accepted"] for a in att], bool)
    points = operating_points(config.liveness)
    # The daemon's rule with every point moved together: a threshold on the margin;
    # planar-flagged attempts are refused at any.
    full = np.where(planar, -np.inf, margin) if config.liveness.planar_motion else margin
    th, apcer_c, bpcer_c = curve(full, truth)
    ok = bpcer_c <= MAX_BPCER

    def share(mask: np.ndarray, of: np.ndarray) -> float:
        return float(mask[of].mean()) if of.any() else float("nan")

    alone = {}
    for key in SCORE_CUES:
        p = np.nan_to_num(np.array([a["cues"].get(key, np.nan) for a in att], float), nan=-1.0)
        point = points.get(key, getattr(config.liveness, SCORE_CUES[key].point))
        c_apcer, c_bpcer = rates(p, truth, point)
        alone[key] = {"point": point, "on": key in points, "apcer": c_apcer, "bpcer": c_bpcer}
    return {
        "attempts": {"live": int(truth.sum()), "attack": int((~truth).sum())},
        "operating_point": {"points": points, "planar_motion": config.liveness.planar_motion},
        "apcer": share(accepted, ~truth),
        "bpcer": share(~accepted, truth),
        "attacks_accepted": int(accepted[~truth].sum()),
        "live_refused": int((~accepted[truth]).sum()),
        "cues_alone": alone,
        "planar_only": {
            "attacks_flagged": int(planar[~truth].sum()),
            "live_flagged": int(planar[truth].sum()),
        },
        "best_apcer_at_bpcer_5pct_on_this_set": float(np.min(apcer_c[ok]))
        if ok.any()
        else float("nan"),
        "curve": {
            "threshold": [float(x) for x in th],
            "apcer": [float(x) for x in apcer_c],
            "bpcer": [float(x) for x in bpcer_c],
        },
        "scores": {
            "live": sorted(float(x) for x in margin[truth]),
            "attack": sorted(float(x) for x in margin[~truth]),
        },
    }


def plot(summary: dict[str, Any], out: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = summary["curve"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    a.plot(100 * np.array(c["bpcer"]), 100 * np.array(c["apcer"]), drawstyle="steps-post")
    a.scatter(
        [100 * summary["bpcer"]],
        [100 * summary["apcer"]],
        color="red",
        zorder=3,
        label="the configured operating points",
    )
    a.axvline(5, color="grey", ls=":", lw=1)
    a.axhline(2, color="grey", ls=":", lw=1)
    a.set_xlabel("BPCER % (live attempts refused)")
    a.set_ylabel("APCER % (attack attempts accepted)")
    a.set_xlim(-1, 101)
    a.set_ylim(-1, 101)
    a.legend(loc="upper right")
    a.set_title("APCER vs BPCER per attempt")
    bins = np.linspace(-8, 8, 41)
    b.hist(
        [v for v in summary["scores"]["live"] if np.isfinite(v)], bins=bins, alpha=0.6, label="live"
    )
    b.hist(
        [v for v in summary["scores"]["attack"] if np.isfinite(v)],
        bins=bins,
        alpha=0.6,
        label="printed photo",
    )
    b.axvline(0.0, color="red", lw=1)
    b.set_xlabel("attempt margin: the lowest cue's mean logit minus its point's (>= 0 passes)")
    b.set_ylabel("attempts")
    b.legend()
    b.set_title("scores")
    fig.suptitle(title)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "liveness_curve.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def _finite(x: Any) -> Any:
    """NaN and infinities as null: strict JSON."""
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def evaluate_stills(
    config: Config, live_dir: Path, attack_dir: Path, out: Path | None, worst: int
) -> int:
    """--images: every still through the device code; the figures printed, and as JSON in ``out``."""
    from tools.liveness.stills import images_in, report_lines, score_images
    from tools.liveness.stills import summarize as summarize_stills

    t = time.perf_counter()
    scored = score_images(config, images_in(live_dir), images_in(attack_dir))
    s = summarize_stills(scored, config, worst=worst)
    for line in report_lines(s, live_dir, attack_dir):
        print(line)
    print(f"  {time.perf_counter() - t:.0f} s in all")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        doc = _finite(
            {
                **s,
                "per_image": [
                    {"image": str(r.path), "live": r.live, "logits": r.logits or None}
                    for r in scored
                ],
            }
        )
        path = out / "liveness_stills.json"
        path.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
        print(f"  json: {path}")
    return ExitCode.OK


def check_held_out(config: Config, subjects: list[str]) -> None:
    """Refuse subjects the model was trained on: the evaluation would flatter it."""
    from edge.cards import load_card

    card = load_card(config.liveness_model_path())
    training = card.raw.get("training") or {}
    for field in ("subjects", "validation_subjects"):
        if leaked := sorted(set(training.get(field, [])) & set(subjects)):
            raise DataError(
                f"{card.path}: training.{field}: {', '.join(leaked)} trained this model or chose its "
                "operating point; evaluate on held-out subjects only"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="tools.liveness.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-c", "--config", help="facegate config (default: the shipped defaults)")
    ap.add_argument("--nuaa", type=Path, default=DEFAULT_NUAA)
    ap.add_argument("--subjects", nargs="+", default=list(TEST_SUBJECTS))
    ap.add_argument(
        "--model", help="the texture cue's .tflite (default: liveness.model of the config)"
    )
    ap.add_argument(
        "--images",
        nargs=2,
        type=Path,
        metavar=("LIVE_DIR", "ATTACK_DIR"),
        help="still images instead of NUAA: a folder of live faces and one of attacks",
    )
    ap.add_argument("--worst", type=int, default=5, help="--images: how many worst images to name")
    ap.add_argument("--out", type=Path, help="write liveness_eval.json and liveness_curve.png here")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(10 if args.verbose else 30)

    def body() -> int:
        config = load_config(args.config)
        if args.model:
            config = replace(
                config, liveness=replace(config.liveness, model=str(Path(args.model).resolve()))
            )
        if args.images:
            return evaluate_stills(config, args.images[0], args.images[1], args.out, args.worst)
        check_held_out(config, args.subjects)
        n = config.liveness.min_frames
        t = time.perf_counter()
        recs = recordings(args.nuaa, args.subjects)
        if not recs:
            raise DataError(f"{args.nuaa}: no NUAA frames of subjects {', '.join(args.subjects)}")
        scored = score_attempts(config, recs, n)
        att = scored["attempts"]
        s = summarize(att, config)
        s.update(
            subjects=args.subjects,
            attempt_frames=n,
            no_face=scored["no_face"],
            cost_ms_per_frame={"detect": scored["detect_ms"], "liveness": scored["liveness_ms"]},
        )
        op = s["operating_point"]
        print(
            f"held-out subjects {', '.join(args.subjects)}: {s['attempts']['attack']} photo-attack and "
            f"{s['attempts']['live']} live attempts of {n} consecutive frames "
            f"({scored['no_face']} frames without a face)"
        )
        pts = ", ".join(f"{k} {v:g}" for k, v in op["points"].items())
        print(f"operating points {pts}; planar motion {'on' if op['planar_motion'] else 'off'}:")
        print(
            f"  APCER {100 * s['apcer']:.1f}% "
            f"({s['attacks_accepted']}/{s['attempts']['attack']} attacks accepted as live)"
        )
        print(
            f"  BPCER {100 * s['bpcer']:.1f}% ({s['live_refused']}/{s['attempts']['live']} live attempts refused)"
        )
        for key, c in s["cues_alone"].items():
            print(
                f"  {key} alone at {c['point']:g}{'' if c['on'] else ' (off in this config)'}: "
                f"APCER {100 * c['apcer']:.1f}%, BPCER {100 * c['bpcer']:.1f}%"
            )
        print(
            f"  planar motion alone flagged {s['planar_only']['attacks_flagged']} attack and "
            f"{s['planar_only']['live_flagged']} live attempts"
        )
        best = s["best_apcer_at_bpcer_5pct_on_this_set"]
        print(
            f"  curve: lowest APCER with BPCER <= 5% on this set: {100 * best:.1f}% "
            "(threshold chosen on the test set: for reference only)"
        )
        print(
            f"  cost per frame: detect {scored['detect_ms']:.1f} ms, liveness {scored['liveness_ms']:.1f} ms "
            f"(every cue, {config.runtime.threads} threads); {time.perf_counter() - t:.0f} s in all"
        )
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            doc = _finite({**s, "attempts_detail": att})
            (args.out / "liveness_eval.json").write_text(
                json.dumps(doc, indent=1, allow_nan=False) + "\n"
            )
            for p in plot(s, args.out, f"NUAA held-out subjects {', '.join(args.subjects)}"):
                print(f"  plot: {p}")
            print(f"  json: {args.out / 'liveness_eval.json'}")
        return ExitCode.OK

    return run_command("tools.liveness.evaluate", body, debug=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
