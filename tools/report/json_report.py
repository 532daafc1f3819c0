"""A Report -> one JSON-able dict holding every number, None wherever a ratio is undefined.

In: a :class:`tools.report.metrics.Report`.  Out: a dict of plain Python values
(no numpy scalars, no NaN), so ``json.dumps(..., allow_nan=False)`` is strict.
The few sentences it carries come from tools.report.wording, as the sections' do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tools.report.collect import Example
from tools.report.door_liveness import GRID, MIN_ATTACKS, MIN_LIVE
from tools.report.metrics import Report
from tools.report.stats import far_bound_text
from tools.report.sweep import Recommendation
from tools.report.wording import (
    LIVENESS_METHOD,
    SWEEP_METHOD,
    enrolled_source,
    label_notes,
    liveness_point_method,
    liveness_points_statement,
    recommendation_statement,
)


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


def _recommendation_json(rec: Recommendation) -> dict[str, Any]:
    """Its numbers, with the statement after target_far (where the JSON has always had it)."""
    numbers = rec.to_json()
    head = {k: numbers.pop(k) for k in ("threshold", "meets_target", "target_far")}
    return {**head, "statement": recommendation_statement(rec), **numbers}


def _door_liveness_json(report: Report) -> dict[str, Any] | None:
    """Liveness at this door (null when the logs hold no liveness verdict)."""
    dl = report.door_liveness
    if dl is None:
        return None
    return {
        **dl.to_json(),
        "statement": list(liveness_points_statement(dl)),
        "method": LIVENESS_METHOD,
        "point_method": liveness_point_method(GRID, MIN_ATTACKS, MIN_LIVE),
    }


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
            "label_notes": list(label_notes(report)),
            "label_source": report.label_source,
            "enrolled": list(report.enrolled),
            "enrolled_source": enrolled_source(report),
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
            "liveness_at_this_door": _door_liveness_json(report),
            "per_exposure": [e.to_json() for e in report.exposure],
            "false_accept_examples": [_example_json(x) for x in report.false_accept_examples],
            "recommendation": _recommendation_json(report.recommendation),
            "sweep": {
                "method": SWEEP_METHOD,
                "min_margin_override": report.min_margin_override,
                "redecide_at_logged_threshold": report.redecide,
                "rows": sweep_rows(report),
            },
            "per_person": [p.to_json() for p in report.people],
            "per_reason": [r.to_json() for r in report.reasons],
            "per_week": [w.to_json() for w in report.weeks],
            "per_door": [d.to_json("door") for d in report.doors],
            "remote_decisions": dict(sorted(report.remote.items())),
        }
    )
