"""A Report -> the list of :class:`Section` values that terminal text, Markdown and HTML all render.

In: a :class:`tools.report.metrics.Report`.  Out: titled sections of lines and
tables (strings only), and the keys of the plots each shows.  One function per
section; :data:`SECTIONS` is their order in the report.  A new section is one
function here and one entry in SECTIONS (and, if it needs new numbers, a field
of the Report in tools.report.metrics and, for the JSON, tools.report.json_report).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tools.report.breakdowns import WeekRow
from tools.report.collect import Example
from tools.report.confusion import Confusion
from tools.report.door_liveness import GRID, MIN_ATTACKS, MIN_LIVE, cue_title
from tools.report.metrics import Report
from tools.report.stats import far_bound_text, pct, upper_bound
from tools.report.wording import (
    LIVENESS_METHOD,
    SWEEP_METHOD,
    enrolled_source,
    label_notes,
    liveness_point_method,
    liveness_points_statement,
    point_text,
    recommendation_statement,
)


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    plots: tuple[str, ...] = field(default=())  # keys of the plots shown here (HTML/Markdown only)


def num(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


# --------------------------------------------------------------------------- shared tables

_EXAMPLE_HEADERS = (
    "time",
    "event_id",
    "reason",
    "person",
    "best_score",
    "truth",
    "snapshot",
    "log",
)


def _examples_table(examples: tuple[Example, ...]) -> Table:
    return Table(
        _EXAMPLE_HEADERS,
        tuple(
            (
                e.time,
                e.event_id,
                e.reason,
                e.person or "-",
                num(e.best_score),
                e.truth or "unlabelled",
                e.snapshot or "-",
                e.file,
            )
            for e in examples
        ),
    )


def _confusion_table(c: Confusion) -> Table:
    return Table(
        ("", "unlocked (right person)", "unlocked (wrong person)", "denied"),
        (
            ("genuine (enrolled person)", f"TP {c.tp}", f"FP {c.wrong_person}", f"FN {c.fn}"),
            (
                "impostor (stranger, not enrolled)",
                "-",
                f"FP {c.impostor_accepted}",
                f"TN {c.impostor_attempts - c.impostor_accepted}",
            ),
            (
                "attack (photo of an enrolled person)",
                "-",
                f"FP {c.attack_accepted}",
                f"TN {c.attack_attempts - c.attack_accepted}",
            ),
        ),
    )


_RATE_NAMES = {
    "sensitivity": "sensitivity (recall, TAR) = TP/(TP+FN)",
    "specificity": "specificity = TN/(FP+TN)",
    "ppv": "PPV (precision) = TP/(TP+FP)",
    "npv": "NPV = TN/(TN+FN)",
    "accuracy": "accuracy = (TP+TN)/N",
    "far": "FAR = FP/(FP+TN)",
    "frr": "FRR = FN/(TP+FN)",
    "impostor_far": "strangers let in",
    "attack_accept_rate": "photo attacks let in",
}


def _rates_table(c: Confusion) -> Table:
    rows = [(_RATE_NAMES[k], r.text()) for k, r in c.rates().items()]
    rows.insert(5, ("F1 = 2PR/(P+R)", num(c.f1)))
    return Table(("rate", "value (95% Wilson interval, k/n)"), tuple(rows))


def _sweep_marks(report: Report) -> dict[float, str]:
    """A readable slice of the sweep: a 0.05 grid over the scores plus the logged and recommended thresholds."""
    sw = report.sweep
    marks: dict[float, str] = {}
    if sw.thresholds.size:
        lo, hi = float(sw.thresholds.min()), float(sw.thresholds.max())
        for t in np.arange(math.floor(lo * 20) / 20, hi + 0.05, 0.05):
            marks.setdefault(round(float(t), 4), "")
    for t, _ in report.settings:
        marks[round(t, 4)] = "logged"
    rec = report.recommendation
    if rec.threshold is not None:
        key = round(rec.threshold, 4)
        marks[key] = (marks.get(key, "") + " recommended").strip()
    return marks


def _sweep_table(report: Report) -> Table:
    marks = _sweep_marks(report)
    rows = []
    for t in sorted(marks):
        c = report.sweep.at(t)
        rows.append(
            (
                f"{t:.4f}",
                marks[t],
                str(c.tp),
                str(c.fn),
                str(c.wrong_person),
                str(c.fp - c.wrong_person),
                str(c.tn),
                c.sensitivity.text(),
                c.far.text(),
                pct(upper_bound(c.fp, c.fp + c.tn)),
            )
        )
    headers = (
        "threshold",
        "",
        "TP",
        "FN",
        "wrong person",
        "FP stranger/attack",
        "TN",
        "TAR",
        "FAR",
        "FAR upper 95% (one-sided)",
    )
    return Table(headers, tuple(rows))


# --------------------------------------------------------------------------- the sections


def inputs(report: Report, max_examples: int) -> Section:
    why = "; ".join(f"{k}: {v}" for k, v in sorted(report.unlabelled_why.items()) if v) or "-"
    settings = (
        ", ".join(
            f"threshold {t:g} / min_margin {m:g} ({n} decisions)"
            for (t, m), n in sorted(report.settings.items())
        )
        or "none (empty log)"
    )
    skipped = f" ({report.skipped_bad} bad records skipped)" if report.skipped_bad else ""
    return Section(
        "Inputs",
        (
            f"decision logs: {len(report.files)} file(s), {report.records} decisions{skipped}",
            *(f"  {f}" for f in report.files),
            f"labels: {report.label_source}",
            *(f"labels: {note}" for note in label_notes(report)),
            f"labelled: {report.labelled}; UNLABELLED: {report.unlabelled} ({why})",
            f"enrolled ({enrolled_source(report)}): {', '.join(report.enrolled) or 'nobody'}",
            f"logged settings: {settings}",
            *(
                [
                    "remote unlock commands (not face attempts, counted apart): "
                    + ", ".join(f"{k} {v}" for k, v in sorted(report.remote.items()))
                ]
                if report.remote
                else []
            ),
        ),
    )


def confusion_matrix(report: Report, max_examples: int) -> Section:
    c = report.confusion
    lines = (
        f"false accepts: {c.false_accepts} (strangers {c.impostor_accepted}, photo attacks {c.attack_accepted}, "
        f"wrong person {c.wrong_person})",
        far_bound_text(c.fp, c.fp + c.tn),
        f"genuine attempts {c.genuine_attempts}, impostor {c.impostor_attempts}, attack {c.attack_attempts}; "
        f"N = TP+FP+TN+FN = {c.n}",
        f"mean best_score: genuine {num(report.mean_genuine_score)}, impostor+attack "
        f"{num(report.mean_impostor_score)} (attack alone {num(report.mean_attack_score)})",
        "A genuine attempt unlocked as the wrong person counts as FP (not FN).",
    )
    return Section(
        "Confusion matrix at the logged threshold", lines, (_confusion_table(c), _rates_table(c))
    )


def false_accepts(report: Report, max_examples: int) -> Section | None:
    fa = report.false_accept_examples[:max_examples]
    if not fa:
        return None
    return Section(
        f"False accepts (first {len(fa)} of {report.confusion.false_accepts}): look at these first",
        (),
        (_examples_table(fa),),
    )


def lockouts(report: Report, max_examples: int) -> Section:
    lo = report.locked_out
    locked = report.locked_out_examples[:max_examples]
    return Section(
        "Lockouts",
        (
            f"locked_out decisions: {lo['total']} (genuine {lo['genuine']}, impostor {lo['impostor']}, "
            f"attack {lo['attack']}, unlabelled {lo['unlabelled']}); counted above as denials",
        ),
        (_examples_table(locked),) if locked else (),
    )


def liveness(report: Report, max_examples: int) -> Section:
    lv = report.liveness
    return Section(
        "Liveness (denials with reason presentation_attack)",
        (
            f"photo attacks refused by liveness: {lv['attacks'].text()}",
            f"live attempts refused by liveness (genuine and strangers, BPCER): {lv['live'].text()}; "
            f"of them enrolled people: {lv['genuine'].text()}",
            "An attack denied for another reason first (a stranger's photo, a lockout) does not count as caught here.",
        ),
    )


def _some_scores(x: np.ndarray, highest: bool) -> str:
    """The median and the three scores at one end, of sorted live probabilities (-inf: no frame)."""
    if not x.size:
        return "-"
    end = x[::-1][:3] if highest else x[:3]
    shown = ", ".join("none" if not math.isfinite(v) else f"{v:.3f}" for v in end)
    median = float(np.median(x))
    med = f"{median:.3f}" if math.isfinite(median) else "none"
    return f"median {med}; {'highest' if highest else 'lowest'} {shown}"


def liveness_at_this_door(report: Report, max_examples: int) -> Section | None:
    """Each liveness score cue on the door's reviewed attempts, and its recommended point.

    Shown when the logs hold liveness verdicts and at least one attack (labelled, or from a drill).
    """
    dl = report.door_liveness
    if dl is None or dl.attacks == 0:
        return None
    labelled = dl.attacks - dl.attacks_by_drill
    rows = [
        (
            c.title + ("" if c.in_force else " (off at the newest decision)"),
            point_text(c.point),
            c.apcer.text(),
            c.bpcer.text(),
            _some_scores(c.attack_scores, highest=True),
            _some_scores(c.live_scores, highest=False),
        )
        for c in dl.cues
    ]
    rule = dl.rule
    rows.append(
        (
            "the rule (every cue in force)",
            ", ".join(f"{cue_title(k)} {point_text(v)}" for k, v in rule.points.items()) or "-",
            rule.attacks_accepted.text(),
            rule.live_refused.text(),
            "",
            "",
        )
    )
    table = Table(
        (
            "cue",
            "point now",
            "APCER: attacks accepted",
            "BPCER: live attempts refused",
            "attack scores",
            "live scores",
        ),
        tuple(rows),
    )
    left = (
        [
            f"{dl.left_out} reviewed attempt(s) without a score from every cue in force "
            "(made before a cue was switched on) are left out of the rule"
        ]
        if dl.left_out
        else []
    )
    return Section(
        "Liveness at this door (each cue on the reviewed attempts)",
        (
            f"{dl.decisions} decisions with a liveness verdict: {dl.attacks} attack attempts "
            f"({labelled} labelled attack, {dl.attacks_by_drill} from attack drills, unlabelled), "
            f"{dl.live} live attempts (labelled as a person or a stranger); {dl.unused} neither "
            "labelled nor from a drill, not used",
            *left,
            *liveness_points_statement(dl),
            LIVENESS_METHOD,
            liveness_point_method(GRID, MIN_ATTACKS, MIN_LIVE),
        ),
        (table,),
    )


def exposure(report: Report, max_examples: int) -> Section:
    if not report.exposure:
        return Section(
            "By face-metered exposure",
            (
                "no decision in these logs was face-metered (exposure_stops null or absent: metering off, "
                "a camera other than picamera2, or a replay)",
            ),
        )
    table = Table(
        (
            "exposure",
            "decisions",
            "genuine FRR",
            "strangers+attacks let in",
            "live refused by liveness",
        ),
        tuple(
            (
                e.band,
                str(e.decisions),
                e.genuine_frr.text(),
                e.negative_accepted.text(),
                e.live_refused_by_liveness.text(),
            )
            for e in report.exposure
        ),
    )
    return Section(
        "By face-metered exposure (exposure_stops: the camera's compensation at the decision)",
        (
            "A door that refuses more people when it brightens their face a lot is backlit: see "
            'facegate\'s docs/liveness.md, "Exposure".',
        ),
        (table,),
    )


def recommended_threshold(report: Report, max_examples: int) -> Section:
    rec = report.recommendation
    return Section(
        "Recommended threshold",
        (
            ("MEETS TARGET: " if rec.meets_target else "") + recommendation_statement(rec),
            f"recommended threshold: {num(rec.threshold)} (target FAR {rec.target_far:g})",
            f"below: a 0.05 grid and the marked thresholds; all {report.sweep.thresholds.size} distinct thresholds "
            f"are in the JSON (sweep.rows)",
        ),
        (_sweep_table(report),),
        ("scores", "roc", "det"),
    )


def sweep_method(report: Report, max_examples: int) -> Section:
    rd = report.redecide
    total = sum(rd.values())
    agree = (
        f"re-deciding every logged attempt by its best frame at its logged threshold reproduces "
        f"{rd['agree']} of {total} logged decisions ({pct(rd['agree'] / total) if total else 'n/a'}); "
        f"logged unlock but best-frame deny: {rd['logged_unlock_replay_deny']}; logged deny but best-frame "
        f"accept: {rd['logged_deny_replay_accept']}"
    )
    margin = (
        ""
        if report.min_margin_override is None
        else f"min_margin for the sweep: {report.min_margin_override:g} (--min-margin), not the logged one"
    )
    return Section("How the sweep re-decides", tuple(x for x in (SWEEP_METHOD, agree, margin) if x))


def per_person(report: Report, max_examples: int) -> Section:
    table = Table(
        (
            "person",
            "genuine attempts",
            "TP",
            "FN",
            "unlocked as someone else",
            "others let in as them",
            "TAR",
            "FRR",
            "mean best_score",
        ),
        tuple(
            (
                p.name,
                str(p.attempts),
                str(p.tp),
                str(p.fn),
                str(p.wrong_person),
                str(p.false_accepts_as),
                p.tar.text(),
                p.frr.text(),
                num(p.mean_score),
            )
            for p in report.people
        ),
    )
    return Section("Per enrolled person", (), (table,))


def per_reason(report: Report, max_examples: int) -> Section:
    table = Table(
        ("reason", "total", "genuine", "impostor", "attack", "unlabelled"),
        tuple(
            (
                r.reason,
                str(r.total),
                str(r.genuine),
                str(r.impostor),
                str(r.attack),
                str(r.unlabelled),
            )
            for r in report.reasons
        ),
    )
    return Section("Per reason code", (), (table,))


def _group_table(label: str, rows: list[WeekRow]) -> Table:
    return Table(
        (
            label,
            "decisions",
            "unlabelled",
            "locked_out",
            "TP",
            "FN",
            "FP",
            "TN",
            "TAR",
            "FAR",
            "mean genuine",
            "mean impostor",
        ),
        tuple(
            (
                w.week or "(none)",
                str(w.attempts),
                str(w.unlabelled),
                str(w.locked_out),
                str(w.confusion.tp),
                str(w.confusion.fn),
                str(w.confusion.fp),
                str(w.confusion.tn),
                w.confusion.sensitivity.text(),
                w.confusion.far.text(),
                num(w.mean_genuine_score),
                num(w.mean_impostor_score),
            )
            for w in rows
        ),
    )


def week_by_week(report: Report, max_examples: int) -> Section:
    return Section(
        "Week by week (ISO week of the decision's time, UTC)",
        (),
        (_group_table("week", report.weeks),),
    )


def by_door(report: Report, max_examples: int) -> Section | None:
    """Only for the logs of more than one door (mqtt.door_id)."""
    if len(report.doors) < 2:
        return None
    return Section("By door (mqtt.door_id)", (), (_group_table("door", report.doors),))


# A section function gets the report and how many examples to list; None leaves the section out.
SectionFn = Callable[[Report, int], Section | None]

# The report's sections, in order.
SECTIONS: tuple[SectionFn, ...] = (
    inputs,
    confusion_matrix,
    false_accepts,
    lockouts,
    liveness,
    liveness_at_this_door,
    exposure,
    recommended_threshold,
    sweep_method,
    per_person,
    per_reason,
    week_by_week,
    by_door,
)


def sections(report: Report, max_examples: int = 20) -> list[Section]:
    """Every section the report shows, in :data:`SECTIONS` order."""
    return [s for make in SECTIONS if (s := make(report, max_examples)) is not None]
