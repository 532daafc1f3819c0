"""The report's breakdowns: per enrolled person, per reason code, per ISO week, per exposure band.

In: :class:`tools.report.collect.Columns` and their :class:`~tools.report.confusion.Classes`.
Out: one row dataclass per table line, each with ``to_json``; rates are
:class:`~tools.report.stats.Rate` (None when undefined).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.types import Reason
from tools.report.collect import REASON_CODE, REASONS, Columns
from tools.report.confusion import Classes, Confusion, logged_confusion
from tools.report.stats import Rate


@dataclass(frozen=True)
class PersonRow:
    name: str
    attempts: int  # genuine attempts by this person
    tp: int
    fn: int
    wrong_person: int  # their attempts unlocked as somebody else
    false_accepts_as: int  # anyone else let in as this person
    mean_score: float | None

    @property
    def tar(self) -> Rate:
        return Rate(self.tp, self.tp + self.fn)

    @property
    def frr(self) -> Rate:
        return Rate(self.fn, self.tp + self.fn)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "attempts": self.attempts,
            "tp": self.tp,
            "fn": self.fn,
            "wrong_person": self.wrong_person,
            "false_accepts_as": self.false_accepts_as,
            "mean_score": self.mean_score,
            "tar": self.tar.to_json(),
            "frr": self.frr.to_json(),
        }


@dataclass(frozen=True)
class ReasonRow:
    reason: str
    total: int
    genuine: int
    impostor: int
    attack: int
    unlabelled: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class WeekRow:
    """One group of decisions (an ISO week, or a door) with its confusion matrix."""

    week: str  # the group's label: the ISO week, or the door id
    attempts: int
    unlabelled: int
    locked_out: int
    confusion: Confusion
    mean_genuine_score: float | None
    mean_impostor_score: float | None

    def to_json(self, key: str = "week") -> dict[str, Any]:
        c = self.confusion
        return {
            key: self.week,
            "attempts": self.attempts,
            "unlabelled": self.unlabelled,
            "locked_out": self.locked_out,
            "tp": c.tp,
            "fp": c.fp,
            "tn": c.tn,
            "fn": c.fn,
            "wrong_person": c.wrong_person,
            "tar": c.sensitivity.to_json(),
            "far": c.far.to_json(),
            "mean_genuine_score": self.mean_genuine_score,
            "mean_impostor_score": self.mean_impostor_score,
        }


def mean_finite(x: np.ndarray) -> float | None:
    """The mean of the finite values (a NaN score is an attempt with nobody to match); None if none."""
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def per_person(cols: Columns, cls: Classes) -> list[PersonRow]:
    k = len(cols.names)
    truth = np.where(cls.genuine, cols.truth, 0)

    def count(mask: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return np.bincount(codes[mask], minlength=k) if k else np.zeros(0, int)

    g, unlock, right = cls.genuine, cols.unlock, cols.person == cols.truth
    attempts, tp = count(g, truth), count(g & unlock & right, truth)
    fn, wp = count(g & ~unlock, truth), count(g & unlock & ~right, truth)
    fa_mask = unlock & (cls.negative | (g & ~right)) & (cols.person >= 0)
    fa_as = count(fa_mask, np.where(fa_mask, cols.person, 0))
    scored = g & np.isfinite(cols.score)
    sums = np.bincount(truth[scored], weights=cols.score[scored], minlength=k) if k else np.zeros(0)
    n_scored = count(scored, truth)
    code = {name: i for i, name in enumerate(cols.names)}
    rows = []
    for name in sorted(set(cls.enrolled)):
        i = code.get(name)
        if i is None:
            rows.append(PersonRow(name, 0, 0, 0, 0, 0, None))
            continue
        mean = float(sums[i] / n_scored[i]) if n_scored[i] else None
        rows.append(
            PersonRow(
                name, int(attempts[i]), int(tp[i]), int(fn[i]), int(wp[i]), int(fa_as[i]), mean
            )
        )
    return rows


def per_reason(cols: Columns, cls: Classes) -> list[ReasonRow]:
    m = len(REASONS)
    reason = cols.reason.astype(np.intp)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(reason[mask], minlength=m)

    total = np.bincount(reason, minlength=m)
    g, i, a, u = count(cls.genuine), count(cls.impostor), count(cls.attack), count(cls.unlabelled)
    return [
        ReasonRow(r, int(total[j]), int(g[j]), int(i[j]), int(a[j]), int(u[j]))
        for j, r in enumerate(REASONS)
    ]


def liveness_rates(cols: Columns, cls: Classes) -> dict[str, Rate]:
    """How often the liveness check was the reason for a denial: of photo attacks, and of live people.

    From the reasons alone: an attack denied for another reason first (a
    stranger's photo, a lockout) is not counted as caught.
    """
    pa = cols.reason == REASON_CODE[Reason.PRESENTATION_ATTACK]
    live = cls.genuine | cls.impostor
    return {
        "attacks": _share(pa, cls.attack),
        "live": _share(pa, live),
        "genuine": _share(pa, cls.genuine),
    }


def _share(hit: np.ndarray, of: np.ndarray) -> Rate:
    """The rate of ``hit`` among the attempts in ``of`` (boolean masks)."""
    return Rate(int(np.count_nonzero(hit & of)), int(np.count_nonzero(of)))


# Bands of face-metered exposure compensation, in stops: (label, low, high), low <= x < high.
EXPOSURE_BANDS = (
    ("darkened 1 stop or more (light on the face)", -math.inf, -1.0),
    ("darkened 0.25-1 stop", -1.0, -0.25),
    ("within 0.25 stop of the camera's own", -0.25, 0.25),
    ("brightened 0.25-1 stop", 0.25, 1.0),
    ("brightened 1 stop or more (backlit)", 1.0, math.inf),
)


@dataclass(frozen=True)
class ExposureRow:
    band: str
    decisions: int
    genuine_frr: Rate  # enrolled people refused, of their attempts
    negative_accepted: Rate  # strangers and photo attacks let in, of their attempts
    live_refused_by_liveness: Rate  # live people (enrolled or not) denied as presentation_attack

    def to_json(self) -> dict[str, Any]:
        return {
            "band": self.band,
            "decisions": self.decisions,
            "genuine_frr": self.genuine_frr.to_json(),
            "negative_accepted": self.negative_accepted.to_json(),
            "live_refused_by_liveness": self.live_refused_by_liveness.to_json(),
        }


def per_exposure(cols: Columns, cls: Classes) -> list[ExposureRow]:
    """Outcomes by the face-metered exposure the decision was made at: does a backlit door refuse more?

    Empty when no decision was face-metered.
    """
    x = cols.exposure
    metered = np.isfinite(x)
    if not metered.any():
        return []
    pa = cols.reason == REASON_CODE[Reason.PRESENTATION_ATTACK]
    live = cls.genuine | cls.impostor
    rows = [("not face-metered", ~metered)]
    rows += [(label, metered & (x >= lo) & (x < hi)) for label, lo, hi in EXPOSURE_BANDS]
    return [
        ExposureRow(
            label,
            int(np.count_nonzero(sel)),
            _share(~cols.unlock, sel & cls.genuine),
            _share(cols.unlock, sel & cls.negative),
            _share(pa, sel & live),
        )
        for label, sel in rows
        if sel.any()
    ]


def _groups(
    cols: Columns, cls: Classes, group: np.ndarray, labels: tuple[str, ...]
) -> list[WeekRow]:
    rows = []
    locked = cols.reason == REASON_CODE[Reason.LOCKED_OUT]
    for j in sorted(range(len(labels)), key=lambda j: labels[j]):
        sel = group == j
        rows.append(
            WeekRow(
                labels[j],
                int(np.count_nonzero(sel)),
                int(np.count_nonzero(sel & cls.unlabelled)),
                int(np.count_nonzero(sel & locked)),
                logged_confusion(cols, cls, sel),
                mean_finite(cols.score[sel & cls.genuine]),
                mean_finite(cols.score[sel & cls.negative]),
            )
        )
    return rows


def per_week(cols: Columns, cls: Classes) -> list[WeekRow]:
    return _groups(cols, cls, cols.week, cols.weeks)


def per_door(cols: Columns, cls: Classes) -> list[WeekRow]:
    """By mqtt.door_id, for the logs of several doors read together ("" for logs without one)."""
    return _groups(cols, cls, cols.door, cols.doors)
