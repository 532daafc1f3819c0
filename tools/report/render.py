"""A Report -> terminal text, Markdown, self-contained HTML, and JSON.

In: a :class:`tools.report.metrics.Report` (and, for HTML/Markdown, the PNG
plots).  Out: strings (and a JSON-able dict).  The three text formats render
one list of :class:`Section` values, so they always say the same thing;
the JSON holds every number, with None wherever a ratio is undefined.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tools.report.collect import Example
from tools.report.metrics import SWEEP_METHOD, Confusion, Report
from tools.report.stats import far_bound_text, pct, upper_bound

PLOT_TITLES = {"scores": "Genuine and impostor best_score", "roc": "ROC", "det": "DET"}


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


def _example_rows(examples: tuple[Example, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(
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
    )


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


def _rates_table(c: Confusion) -> Table:
    names = {
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
    rows = [(names[k], r.text()) for k, r in c.rates().items()]
    rows.insert(5, ("F1 = 2PR/(P+R)", num(c.f1)))
    return Table(("rate", "value (95% Wilson interval, k/n)"), tuple(rows))


def _sweep_rows(report: Report) -> tuple[tuple[str, ...], ...]:
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
        marks[round(rec.threshold, 4)] = (
            marks.get(round(rec.threshold, 4), "") + " recommended"
        ).strip()
    rows = []
    for t in sorted(marks):
        c = sw.at(t)
        ub = upper_bound(c.fp, c.fp + c.tn)
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
                pct(ub),
            )
        )
    return tuple(rows)


def sections(report: Report, max_examples: int = 20) -> list[Section]:
    c = report.confusion
    rec = report.recommendation
    out: list[Section] = []
    why = "; ".join(f"{k}: {v}" for k, v in sorted(report.unlabelled_why.items()) if v) or "-"
    settings = (
        ", ".join(
            f"threshold {t:g} / min_margin {m:g} ({n} decisions)"
            for (t, m), n in sorted(report.settings.items())
        )
        or "none (empty log)"
    )
    inputs = [
        f"decision logs: {len(report.files)} file(s), {report.records} decisions"
        + (f" ({report.skipped_bad} bad records skipped)" if report.skipped_bad else ""),
        *(f"  {f}" for f in report.files),
        f"labels: {report.label_source}",
        *(f"labels: {note}" for note in report.label_notes),
        f"labelled: {report.labelled}; UNLABELLED: {report.unlabelled} ({why})",
        f"enrolled ({report.enrolled_source}): {', '.join(report.enrolled) or 'nobody'}",
        f"logged settings: {settings}",
    ]
    out.append(Section("Inputs", tuple(inputs)))
    lines = [
        f"false accepts: {c.false_accepts} (strangers {c.impostor_accepted}, photo attacks {c.attack_accepted}, "
        f"wrong person {c.wrong_person})",
        far_bound_text(c.fp, c.fp + c.tn),
        f"genuine attempts {c.genuine_attempts}, impostor {c.impostor_attempts}, attack {c.attack_attempts}; "
        f"N = TP+FP+TN+FN = {c.n}",
        f"mean best_score: genuine {num(report.mean_genuine_score)}, impostor+attack "
        f"{num(report.mean_impostor_score)} (attack alone {num(report.mean_attack_score)})",
        "A genuine attempt unlocked as the wrong person counts as FP (not FN).",
    ]
    out.append(
        Section(
            "Confusion matrix at the logged threshold",
            tuple(lines),
            (_confusion_table(c), _rates_table(c)),
        )
    )
    fa, locked = (
        report.false_accept_examples[:max_examples],
        report.locked_out_examples[:max_examples],
    )
    if fa:
        out.append(
            Section(
                f"False accepts (first {len(fa)} of {c.false_accepts}): look at these first",
                (),
                (Table(_EXAMPLE_HEADERS, _example_rows(fa)),),
            )
        )
    lo = report.locked_out
    lo_lines = (
        f"locked_out decisions: {lo['total']} (genuine {lo['genuine']}, impostor {lo['impostor']}, "
        f"attack {lo['attack']}, unlabelled {lo['unlabelled']}); counted above as denials",
    )
    out.append(
        Section(
            "Lockouts",
            lo_lines,
            (Table(_EXAMPLE_HEADERS, _example_rows(locked)),) if locked else (),
        )
    )
    lv = report.liveness
    out.append(
        Section(
            "Liveness (denials with reason presentation_attack)",
            (
                f"photo attacks refused by liveness: {lv['attacks'].text()}",
                f"live attempts refused by liveness (genuine and strangers, BPCER): {lv['live'].text()}; "
                f"of them enrolled people: {lv['genuine'].text()}",
                "An attack denied for another reason first (a stranger's photo, a lockout) does not count as caught here.",
            ),
        )
    )
    if report.exposure:
        out.append(
            Section(
                "By face-metered exposure (exposure_stops: the camera's compensation at the decision)",
                (
                    "A door that refuses more people when it brightens their face a lot is backlit: see README "
                    '"Liveness", Exposure.',
                ),
                (
                    Table(
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
                    ),
                ),
            )
        )
    else:
        out.append(
            Section(
                "By face-metered exposure",
                (
                    "no decision in these logs was face-metered (exposure_stops null or absent: metering off, "
                    "a camera other than picamera2, or a replay)",
                ),
            )
        )
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
    out.append(
        Section(
            "Recommended threshold",
            (
                ("MEETS TARGET: " if rec.meets_target else "") + rec.statement,
                f"recommended threshold: {num(rec.threshold)} (target FAR {rec.target_far:g})",
                f"below: a 0.05 grid and the marked thresholds; all {report.sweep.thresholds.size} distinct thresholds "
                f"are in the JSON (sweep.rows)",
            ),
            (
                Table(
                    (
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
                    ),
                    _sweep_rows(report),
                ),
            ),
            ("scores", "roc", "det"),
        )
    )
    out.append(
        Section("How the sweep re-decides", tuple(x for x in (SWEEP_METHOD, agree, margin) if x))
    )
    out.append(
        Section(
            "Per enrolled person",
            (),
            (
                Table(
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
                ),
            ),
        )
    )
    out.append(
        Section(
            "Per reason code",
            (),
            (
                Table(
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
                ),
            ),
        )
    )
    out.append(
        Section(
            "Week by week (ISO week of the decision's time, UTC)",
            (),
            (
                Table(
                    (
                        "week",
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
                            w.week,
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
                        for w in report.weeks
                    ),
                ),
            ),
        )
    )
    return out


# --------------------------------------------------------------------------- text


def _text_table(t: Table) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in t.rows)) if t.rows else len(h)
        for i, h in enumerate(t.headers)
    ]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return [
        "  " + fmt.format(*t.headers).rstrip(),
        "  " + "  ".join("-" * w for w in widths),
        *("  " + fmt.format(*r).rstrip() for r in t.rows),
    ]


def to_text(report: Report, max_examples: int = 5) -> str:
    """The terminal summary: the same sections, fewer examples (HTML/Markdown list up to 20)."""
    out: list[str] = ["facegate decision report", "=" * 24]
    for s in sections(report, max_examples):
        out += ["", s.title, "-" * len(s.title), *s.lines]
        for t in s.tables:
            out += _text_table(t)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- markdown


def _md_cell(x: str) -> str:
    return x.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report, plot_files: dict[str, str] | None = None) -> str:
    """Markdown; ``plot_files`` maps plot keys to image paths relative to the .md file."""
    out = ["# facegate decision report"]
    for s in sections(report):
        out += ["", f"## {s.title}", ""]
        out += [
            f"- {_md_cell(line)}" if not line.startswith("  ") else f"  - `{line.strip()}`"
            for line in s.lines
        ]
        for t in s.tables:
            out += [
                "",
                "| " + " | ".join(map(_md_cell, t.headers)) + " |",
                "|" + "|".join("---" for _ in t.headers) + "|",
                *("| " + " | ".join(map(_md_cell, r)) + " |" for r in t.rows),
            ]
        for key in s.plots:
            if plot_files and key in plot_files:
                out += ["", f"![{PLOT_TITLES[key]}]({plot_files[key]})"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- html

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} h2{border-bottom:1px solid #ddd;margin-top:1.6em}
img{max-width:100%;margin:.5em 1em .5em 0;border:1px solid #eee}
.warn{color:#a00;font-weight:bold}
"""


def to_html(report: Report, plots: dict[str, bytes]) -> str:
    """One self-contained page: the plots are embedded as base64 PNG data URIs."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>facegate decision report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>facegate decision report</h1>",
    ]
    for s in sections(report):
        out.append(f"<h2>{e(s.title)}</h2>")
        for line in s.lines:
            cls = (
                ' class="warn"'
                if (
                    "NOT MEETING" in line
                    or (
                        line.startswith("false accepts: ")
                        and not line.startswith("false accepts: 0 ")
                    )
                )
                else ""
            )
            out.append(f"<p{cls}>{e(line)}</p>")
        for t in s.tables:
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.headers) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in t.rows]
            out.append("</table>")
        for key in s.plots:
            if key in plots:
                data = base64.b64encode(plots[key]).decode("ascii")
                out.append(f'<img alt="{e(PLOT_TITLES[key])}" src="data:image/png;base64,{data}">')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- json


def _clean(x: Any) -> Any:
    """numpy scalars to Python; NaN/inf to None, so the JSON is strict and n/a is null."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else None
    return x


def _example_json(e: Example) -> dict[str, Any]:
    return dict(e.__dict__)


def sweep_rows(report: Report) -> list[dict[str, Any]]:
    t = report.sweep.table()
    cols = {k: v.tolist() for k, v in t.items()}
    rows = []
    for i in range(len(cols["threshold"])):
        rows.append(
            {
                "threshold": cols["threshold"][i],
                "tp": cols["tp"][i],
                "fp": cols["fp"][i],
                "tn": cols["tn"][i],
                "fn": cols["fn"][i],
                "wrong_person": cols["wrong_person"][i],
                "impostor_accepted": cols["impostor_accepted"][i],
                "attack_accepted": cols["attack_accepted"][i],
                "tar": cols["tar"][i],
                "tar_wilson95": [cols["tar_low"][i], cols["tar_high"][i]],
                "far": cols["far"][i],
                "far_wilson95": [cols["far_low"][i], cols["far_high"][i]],
            }
        )
    return rows


def to_json(report: Report) -> dict[str, Any]:
    c = report.confusion
    return _clean(
        {
            "schema": 1,
            "files": list(report.files),
            "records": report.records,
            "skipped_bad_records": report.skipped_bad,
            "labelled": report.labelled,
            "unlabelled": report.unlabelled,
            "unlabelled_why": report.unlabelled_why,
            "label_notes": list(report.label_notes),
            "label_source": report.label_source,
            "enrolled": list(report.enrolled),
            "enrolled_source": report.enrolled_source,
            "logged_settings": [
                {"threshold": t, "min_margin": m, "decisions": n}
                for (t, m), n in sorted(report.settings.items())
            ],
            "confusion": c.to_json(),
            "far_statement": far_bound_text(c.fp, c.fp + c.tn),
            "mean_best_score": {
                "genuine": report.mean_genuine_score,
                "impostor_and_attack": report.mean_impostor_score,
                "attack": report.mean_attack_score,
            },
            "locked_out": {
                **report.locked_out,
                "examples": [_example_json(x) for x in report.locked_out_examples],
            },
            "liveness": {k: v.to_json() for k, v in report.liveness.items()},
            "per_exposure": [e.to_json() for e in report.exposure],
            "false_accept_examples": [_example_json(x) for x in report.false_accept_examples],
            "recommendation": report.recommendation.to_json(),
            "sweep": {
                "method": SWEEP_METHOD,
                "min_margin_override": report.min_margin_override,
                "redecide_at_logged_threshold": report.redecide,
                "rows": sweep_rows(report),
            },
            "per_person": [p.to_json() for p in report.people],
            "per_reason": [r.to_json() for r in report.reasons],
            "per_week": [w.to_json() for w in report.weeks],
        }
    )
