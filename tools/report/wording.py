"""The report's numbers put into sentences, shared by the sections (text, Markdown, HTML) and the JSON.

In: a :class:`tools.report.metrics.Report` or its parts.  Out: strings.
tools.report.metrics computes; this module only says what the numbers mean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tools.report.collect import HARD_DENIALS
from tools.report.stats import pct

if TYPE_CHECKING:
    from tools.report.door_liveness import DoorLiveness, RuleAt
    from tools.report.metrics import Report
    from tools.report.sweep import Recommendation

SWEEP_METHOD = (
    "Threshold sweep: each logged attempt is re-decided from its logged best_score. An attempt is accepted at "
    "threshold t if it was not denied for "
    + ", ".join(sorted(HARD_DENIALS))
    + ", and best_score >= t, and "
    "best_score - second_score >= min_margin (the margin from the 4-decimal logged scores). This "
    "approximates the daemon's k-of-n frame vote by the attempt's best frame: the vote also needs enough "
    "matching frames and no frame putting somebody else above the threshold, so the sweep may accept "
    "attempts the daemon denied (genuine and impostor alike); the re-decision line shows how often it "
    "reproduces the logged decisions. A genuine attempt the sweep accepts is TP only if its best match is "
    "the true person, else a wrong-person false accept."
)

ENROLLED_INFERRED = "inferred: every name the log shows as person, best or second match"
MAX_STRANGERS_NAMED = 10


def enrolled_source(report: Report) -> str:
    return ENROLLED_INFERRED if report.enrolled_inferred else "--enrolled"


def label_notes(report: Report) -> tuple[str, ...]:
    """The labeller's notes, and the truth names nobody enrolled (most likely typos in the labels)."""
    s = report.strangers
    if not s:
        return report.label_notes
    more = len(s) - MAX_STRANGERS_NAMED
    return (
        *report.label_notes,
        f"truth names nobody enrolled, counted as impostors: {', '.join(s[:MAX_STRANGERS_NAMED])}"
        + (f" and {more} more" if more > 0 else ""),
    )


def recommendation_statement(rec: Recommendation) -> str:
    """Why this threshold, in one sentence (or two, when the target cannot be shown)."""
    target = f"{rec.target_far:g}"
    if rec.basis == "no-negatives":
        return (
            f"no impostor or attack attempts are labelled: nothing supports any threshold "
            f"(to show FAR < {target} at 95% needs at least {rec.needed} with zero false accepts); "
            f"keep the logged threshold"
        )
    if rec.basis == "far-bound":
        return _meets_target(rec)
    head = (
        f"{rec.negatives} impostor attempts cannot support FAR < {target} at 95%; need at least {rec.needed} "
        f"(with zero false accepts)"
    )
    return f"{head}. NOT MEETING THE TARGET: {_fallback(rec)}."


def _meets_target(rec: Recommendation) -> str:
    conf = rec.confusion
    assert conf is not None and rec.threshold is not None
    statement = (
        f"threshold {rec.threshold:.4f} is the lowest whose FAR one-sided 95% upper bound ({pct(conf.far_upper)}, "
        f"{conf.fp} false accepts in {conf.fp + conf.tn}) is below the target {rec.target_far:g}; "
        f"TAR there {conf.sensitivity.text()}"
    )
    if conf.tp == 0:
        statement += "; it meets the target only by accepting no genuine attempt"
    return statement


def _fallback(rec: Recommendation) -> str:
    """How the threshold was chosen without enough impostor attempts to show the target."""
    if rec.basis == "unscored":
        return (
            "no impostor or attack attempt passed the gates and the margin, so no threshold would have "
            "let one in and the scores say nothing about where impostors fall: keep the logged threshold"
        )
    assert rec.zero_fa is not None and rec.with_margin is not None
    scope = "" if rec.attacks else " among strangers (photo attacks left to liveness)"
    why = (
        f"the lowest threshold with zero observed false accepts{scope} is {rec.zero_fa:.4f}; "
        f"plus a safety margin of {rec.safety_margin:g} gives {rec.with_margin:.4f}"
    )
    if rec.capped:
        why += f", above the largest possible similarity, so {rec.zero_fa:.4f} without the margin"
    if rec.kept_at_floor:
        assert rec.threshold is not None
        why += f", kept at the logged threshold {rec.threshold:.4f} (this evidence is no reason to loosen the door)"
    return why


# --------------------------------------------------------------------------- liveness at this door

LIVENESS_METHOD = (
    "A cue accepts an attempt when the attempt's live probability for it (the sigmoid of its mean "
    "logit over the attempt's frames) is at or above the cue's point; a cue that scored no frame "
    "refuses. APCER: attacks accepted; BPCER: live attempts refused. The rule: every cue in force "
    "at its point (the planar-motion veto and too few frames refuse whatever the points, and are "
    "left out). Attacks: attempts labelled attack, and unlabelled ones made during an attack drill; "
    "live: attempts labelled as a person or a stranger."
)


def liveness_point_method(grid: tuple[float, ...], min_attacks: int, min_live: int) -> str:
    """How a recommended liveness point is chosen."""
    return (
        "A recommended point: for each cue, the others at their points now, the points of the grid "
        f"({', '.join(f'{g:g}' for g in grid)}) where the rule lets in no more of these attacks than "
        "now, and of those the ones where it refuses the fewest live attempts; the middle one of "
        "those (the lower of two). The point now is kept when no grid point refuses fewer live "
        f"attempts. Needs at least {min_attacks} attack and {min_live} live attempts."
    )


def point_text(p: float) -> str:
    """A liveness operating point: two decimals, more when it has them (0.20, 0.46, 0.005)."""
    two = f"{p:.2f}"
    return two if float(two) == p else f"{p:g}"


def point_change(
    title: str, now: float, new: float, at_now: RuleAt, at_new: RuleAt, *, rates: bool = True
) -> str:
    """``MiniFASNet 0.46 -> 0.20: live attempts refused 9/40 -> 2/40, attacks accepted 0/12 -> 0/12 ...``."""

    def r(x: RuleAt, what: str) -> str:
        rate = x.live_refused if what == "live" else x.attacks_accepted
        return rate.text() if rates else f"{rate.k}/{rate.n}"

    return (
        f"{title} {point_text(now)} -> {point_text(new)}: live attempts refused {r(at_now, 'live')} -> "
        f"{r(at_new, 'live')}, attacks accepted {r(at_now, 'attack')} -> {r(at_new, 'attack')} "
        "at this door's reviewed attempts"
    )


def liveness_points_statement(dl: DoorLiveness) -> tuple[str, ...]:
    """What the recommended liveness points are and do, or why there are none."""
    from tools.report.door_liveness import cue_title

    advice = dl.advice
    if advice.why_not:
        return (
            f"no recommended liveness points: {advice.why_not}. Label more attempts on the web "
            "app's Review page, or run an attack drill (printed photos and phone screens of a "
            "household member before the camera).",
        )
    lines = []
    for c in advice.cues:
        line = point_change(cue_title(c.cue), c.now, c.recommended, c.at_now, c.at_recommended)
        if c.kept:
            line += (
                " (kept: no grid point refuses fewer live attempts without letting more attacks in)"
            )
        lines.append(line)
    together = advice.together
    assert together is not None
    if advice.only:
        both = {c.cue: c.recommended for c in advice.cues}
        lines.append(
            "Together these points would let in "
            f"{dl.at(both).attacks_accepted.k} of {together.attacks_accepted.n} attacks "
            f"(now {advice.now.attacks_accepted.k}): each cue's point leans on the others' points "
            f"now, so only the {cue_title(advice.only)} change is recommended; apply it, and let "
            "the next report place the others."
        )
    elif len(advice.cues) > 1:
        lines.append(
            "All together: live attempts refused "
            f"{advice.now.live_refused.text()} -> {together.live_refused.text()}, attacks "
            f"accepted {advice.now.attacks_accepted.text()} -> {together.attacks_accepted.text()}"
        )
    return tuple(lines)
