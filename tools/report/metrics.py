"""Columns -> the numbers of the report: confusion matrix, sweep, recommendation, breakdowns.

In: :class:`tools.report.collect.Columns`, who is enrolled, the FAR target.
Out: a frozen :class:`Report` (every rate a :class:`~tools.report.stats.Rate`
whose value is None when undefined), computed with numpy over whole columns.

Classes.  Positive = a genuine attempt: the truth is an enrolled person.
TP: genuine, unlocked as that person.  FN: genuine, denied.  FP: an impostor
(a stranger, or a live person not enrolled) or an attack unlocked, or a
genuine attempt unlocked as the WRONG person (also counted as
``wrong_person``).  TN: impostor or attack denied.  So TP + FN + wrong_person
is the number of genuine attempts, and FP + TN - wrong_person the number of
impostor and attack attempts.  locked_out denials count as denials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.types import Reason
from tools.report.collect import (
    ATTACK_CODE,
    HARD_DENIALS,
    IMPOSTOR_CODE,
    REASON_CODE,
    REASONS,
    UNLABELLED,
    Columns,
    Example,
)
from tools.report.stats import ALPHA, Rate, pct, rule_of_three, upper_bound, wilson_arrays

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


@dataclass(frozen=True)
class Confusion:
    """The door's confusion matrix; see the module docstring for the classes."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    wrong_person: int = 0  # genuine attempts unlocked as somebody else (included in fp)
    impostor_attempts: int = 0
    impostor_accepted: int = 0
    attack_attempts: int = 0
    attack_accepted: int = 0

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def genuine_attempts(self) -> int:
        return self.tp + self.fn + self.wrong_person

    @property
    def false_accepts(self) -> int:
        return self.fp

    @property
    def sensitivity(self) -> Rate:  # recall, TAR
        return Rate(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> Rate:
        return Rate(self.tn, self.fp + self.tn)

    @property
    def ppv(self) -> Rate:  # precision
        return Rate(self.tp, self.tp + self.fp)

    @property
    def npv(self) -> Rate:
        return Rate(self.tn, self.tn + self.fn)

    @property
    def accuracy(self) -> Rate:
        return Rate(self.tp + self.tn, self.n)

    @property
    def far(self) -> Rate:
        return Rate(self.fp, self.fp + self.tn)

    @property
    def frr(self) -> Rate:
        return Rate(self.fn, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        """2PR/(P+R); None if P or R is undefined, 0 if both are 0 (the limit, = 2TP/(2TP+FP+FN))."""
        p, r = self.ppv.value, self.sensitivity.value
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def far_upper(self) -> float | None:
        """Exact one-sided 95% upper bound on FAR: what the data can promise."""
        return upper_bound(self.fp, self.fp + self.tn)

    def rates(self) -> dict[str, Rate]:
        return {
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
            "ppv": self.ppv,
            "npv": self.npv,
            "accuracy": self.accuracy,
            "far": self.far,
            "frr": self.frr,
            "impostor_far": Rate(self.impostor_accepted, self.impostor_attempts),
            "attack_accept_rate": Rate(self.attack_accepted, self.attack_attempts),
        }

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in (
                "tp",
                "fp",
                "tn",
                "fn",
                "wrong_person",
                "impostor_attempts",
                "impostor_accepted",
                "attack_attempts",
                "attack_accepted",
            )
        }
        out["n"] = self.n
        out["genuine_attempts"] = self.genuine_attempts
        out["false_accepts"] = self.false_accepts
        out.update({k: r.to_json() for k, r in self.rates().items()})
        out["f1"] = self.f1
        n = self.fp + self.tn
        out["far_upper95_one_sided"] = self.far_upper
        out["far_rule_of_three"] = rule_of_three(n) if self.fp == 0 else None
        return out


@dataclass(frozen=True, eq=False)
class Classes:
    """Boolean masks over the columns for each kind of truth."""

    genuine: np.ndarray
    impostor: np.ndarray  # strangers and live people not enrolled
    attack: np.ndarray
    unlabelled: np.ndarray
    enrolled: tuple[str, ...]

    @property
    def negative(self) -> np.ndarray:
        return self.impostor | self.attack


def classify(cols: Columns, enrolled: tuple[str, ...]) -> Classes:
    wanted = set(enrolled)
    is_enrolled = np.array([name in wanted for name in cols.names] + [False], dtype=bool)
    truth = cols.truth
    named = truth >= 0
    named_enrolled = named & is_enrolled[np.where(named, truth, len(cols.names))]
    return Classes(
        genuine=named_enrolled,
        impostor=(truth == IMPOSTOR_CODE) | (named & ~named_enrolled),
        attack=truth == ATTACK_CODE,
        unlabelled=truth == UNLABELLED,
        enrolled=enrolled,
    )


def logged_confusion(cols: Columns, cls: Classes, where: np.ndarray | None = None) -> Confusion:
    """The matrix of what the daemon actually did (at whatever threshold it logged)."""
    sel = np.ones(cols.n, bool) if where is None else where
    g, imp, att = cls.genuine & sel, cls.impostor & sel, cls.attack & sel
    unlock = cols.unlock
    right = cols.person == cols.truth
    tp = int(np.count_nonzero(g & unlock & right))
    wp = int(np.count_nonzero(g & unlock & ~right))
    fn = int(np.count_nonzero(g & ~unlock))
    ia = int(np.count_nonzero(imp & unlock))
    aa = int(np.count_nonzero(att & unlock))
    ni, na = int(np.count_nonzero(imp)), int(np.count_nonzero(att))
    return Confusion(
        tp=tp,
        fp=ia + aa + wp,
        tn=ni - ia + na - aa,
        fn=fn,
        wrong_person=wp,
        impostor_attempts=ni,
        impostor_accepted=ia,
        attack_attempts=na,
        attack_accepted=aa,
    )


# --------------------------------------------------------------------------- sweep


@dataclass(frozen=True, eq=False)
class Sweep:
    """Sorted scores of the attempts a threshold can decide, and the totals; rates at any threshold."""

    right: np.ndarray  # genuine, best match is the true person
    wrong: np.ndarray  # genuine, best match is somebody else
    impostor: np.ndarray
    attack: np.ndarray
    genuine_total: int
    impostor_total: int
    attack_total: int
    thresholds: np.ndarray  # every distinct score, the logged thresholds, and one above all

    @property
    def negatives(self) -> int:
        return self.impostor_total + self.attack_total

    def counts(self, t: np.ndarray) -> dict[str, np.ndarray]:
        """tp, fp, tn, fn, wrong_person... at each threshold in ``t`` (accept iff score >= t)."""
        t = np.asarray(t, dtype=np.float64)

        def accepted(s: np.ndarray) -> np.ndarray:
            return s.shape[0] - np.searchsorted(s, t, side="left")

        tp, wp = accepted(self.right), accepted(self.wrong)
        ia, aa = accepted(self.impostor), accepted(self.attack)
        return {
            "tp": tp,
            "fp": ia + aa + wp,
            "tn": self.negatives - ia - aa,
            "fn": self.genuine_total - tp - wp,
            "wrong_person": wp,
            "impostor_accepted": ia,
            "attack_accepted": aa,
        }

    def at(self, t: float) -> Confusion:
        c = {k: int(v[0]) for k, v in self.counts(np.array([t])).items()}
        return Confusion(
            tp=c["tp"],
            fp=c["fp"],
            tn=c["tn"],
            fn=c["fn"],
            wrong_person=c["wrong_person"],
            impostor_attempts=self.impostor_total,
            impostor_accepted=c["impostor_accepted"],
            attack_attempts=self.attack_total,
            attack_accepted=c["attack_accepted"],
        )

    def table(self) -> dict[str, np.ndarray]:
        """Counts and rates (NaN where undefined) with Wilson bounds at every sweep threshold."""
        c = self.counts(self.thresholds)
        tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
        with np.errstate(divide="ignore", invalid="ignore"):
            tar = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), np.nan)
            far = np.where(fp + tn > 0, fp / np.maximum(fp + tn, 1), np.nan)
        tar_lo, tar_hi = wilson_arrays(tp, tp + fn)
        far_lo, far_hi = wilson_arrays(fp, fp + tn)
        return {
            "threshold": self.thresholds,
            **c,
            "tar": tar,
            "tar_low": tar_lo,
            "tar_high": tar_hi,
            "frr": 1 - tar,
            "far": far,
            "far_low": far_lo,
            "far_high": far_hi,
        }


def build_sweep(cols: Columns, cls: Classes) -> Sweep:
    e = cols.eligible
    right_best = cols.best == cols.truth
    s = cols.score

    def pick(mask: np.ndarray) -> np.ndarray:
        return np.sort(s[mask & e])

    right, wrong = pick(cls.genuine & right_best), pick(cls.genuine & ~right_best)
    imp, att = pick(cls.impostor), pick(cls.attack)
    scores = np.concatenate([right, wrong, imp, att])
    logged = np.array(sorted({t for t, _ in cols.settings}), dtype=np.float64)
    top = np.array([round(float(scores.max()) + 1e-4, 4)]) if scores.size else np.zeros(0)
    thresholds = np.unique(np.concatenate([scores, logged, top]))
    return Sweep(
        right,
        wrong,
        imp,
        att,
        int(np.count_nonzero(cls.genuine)),
        int(np.count_nonzero(cls.impostor)),
        int(np.count_nonzero(cls.attack)),
        thresholds,
    )


# --------------------------------------------------------------------------- recommendation


@dataclass(frozen=True)
class Recommendation:
    """The threshold to use, whether the evidence supports the FAR target, and why, in words."""

    threshold: float | None
    meets_target: bool
    target_far: float
    statement: str
    confusion: Confusion | None
    negatives: int
    needed: (
        int  # impostor attempts needed to show FAR < target with zero false accepts (rule of three)
    )

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "meets_target": self.meets_target,
            "target_far": self.target_far,
            "statement": self.statement,
            "impostor_attempts": self.negatives,
            "impostor_attempts_needed": self.needed,
            "far_upper95_one_sided": None if self.confusion is None else self.confusion.far_upper,
            "at_threshold": None if self.confusion is None else self.confusion.to_json(),
        }


def recommend(
    sweep: Sweep,
    target_far: float,
    *,
    safety_margin: float = 0.01,
    floor: float | None = None,
    attacks: bool = True,
) -> Recommendation:
    """The lowest threshold (highest TAR) whose one-sided 95% FAR upper bound is below ``target_far``.

    When no threshold can show that with the impostor attempts at hand, say so
    and fall back to the lowest threshold with zero observed false accepts plus
    ``safety_margin``, never below ``floor`` (the logged threshold): too little
    evidence is no reason to loosen the door.
    """
    needed = math.ceil(3.0 / target_far)
    n_neg = sweep.negatives
    if n_neg == 0:
        return Recommendation(
            floor,
            False,
            target_far,
            f"no impostor or attack attempts are labelled: nothing supports any threshold "
            f"(to show FAR < {target_far:g} at 95% needs at least {needed} with zero false accepts); "
            f"keep the logged threshold",
            None if floor is None else sweep.at(floor),
            0,
            needed,
        )
    best_case = upper_bound(0, n_neg)
    assert best_case is not None
    if best_case >= target_far:
        # attacks=False: photo attacks are the liveness check's job; the recognition
        # threshold is then chosen on strangers (and wrong-person matches) alone.
        negatives = np.concatenate(
            [sweep.wrong, sweep.impostor] + ([sweep.attack] if attacks else [])
        )
        head = (
            f"{n_neg} impostor attempts cannot support FAR < {target_far:g} at 95%; need at least {needed} "
            f"(with zero false accepts)"
        )
        if negatives.size == 0:
            t = floor
            why = (
                "no impostor or attack attempt passed the gates and the margin, so no threshold would have "
                "let one in and the scores say nothing about where impostors fall: keep the logged threshold"
            )
        else:
            zero_fa = min(round(float(negatives.max()) + 1e-4, 4), 1.0)
            t = round(zero_fa + safety_margin, 4)
            scope = "" if attacks else " among strangers (photo attacks left to liveness)"
            why = (
                f"the lowest threshold with zero observed false accepts{scope} is {zero_fa:.4f}; "
                f"plus a safety margin of {safety_margin:g} gives {t:.4f}"
            )
            if t > 1.0:  # a cosine similarity never exceeds 1: the margin cannot be had
                t = zero_fa
                why += f", above the largest possible similarity, so {t:.4f} without the margin"
            if floor is not None and t < floor:
                why += f", kept at the logged threshold {floor:.4f} (this evidence is no reason to loosen the door)"
                t = floor
        statement = f"{head}. NOT MEETING THE TARGET: {why}."
        return Recommendation(
            t, False, target_far, statement, None if t is None else sweep.at(t), n_neg, needed
        )
    c = sweep.counts(sweep.thresholds)
    fp, n = c["fp"], c["fp"] + c["tn"]
    cache: dict[tuple[int, int], float] = {}
    for i, t in enumerate(sweep.thresholds):
        k, m = int(fp[i]), int(n[i])
        if k >= target_far * m:  # the bound exceeds the observed rate: cannot pass
            continue
        ub = cache.get((k, m))
        if ub is None:
            ub = cache[(k, m)] = upper_bound(k, m, ALPHA) or 1.0
        if ub < target_far:
            conf = sweep.at(float(t))
            statement = (
                f"threshold {t:.4f} is the lowest whose FAR one-sided 95% upper bound ({pct(ub)}, "
                f"{k} false accepts in {m}) is below the target {target_far:g}; "
                f"TAR there {conf.sensitivity.text()}"
            )
            if conf.tp == 0:
                statement += "; it meets the target only by accepting no genuine attempt"
            return Recommendation(float(t), True, target_far, statement, conf, n_neg, needed)
    raise AssertionError("the top threshold denies everyone, so it must meet a feasible target")


# --------------------------------------------------------------------------- breakdowns


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
    week: str
    attempts: int
    unlabelled: int
    locked_out: int
    confusion: Confusion
    mean_genuine_score: float | None
    mean_impostor_score: float | None

    def to_json(self) -> dict[str, Any]:
        c = self.confusion
        return {
            "week": self.week,
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


def _mean(x: np.ndarray) -> float | None:
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


def per_week(cols: Columns, cls: Classes) -> list[WeekRow]:
    rows = []
    order = sorted(range(len(cols.weeks)), key=lambda j: cols.weeks[j])
    locked = cols.reason == REASON_CODE[Reason.LOCKED_OUT]
    for j in order:
        sel = cols.week == j
        rows.append(
            WeekRow(
                cols.weeks[j],
                int(np.count_nonzero(sel)),
                int(np.count_nonzero(sel & cls.unlabelled)),
                int(np.count_nonzero(sel & locked)),
                logged_confusion(cols, cls, sel),
                _mean(cols.score[sel & cls.genuine]),
                _mean(cols.score[sel & cls.negative]),
            )
        )
    return rows


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True, eq=False)
class Report:
    files: tuple[str, ...]
    records: int
    skipped_bad: int
    label_source: str
    enrolled: tuple[str, ...]
    enrolled_source: str
    unlabelled: int
    unlabelled_why: dict[str, int]
    label_notes: tuple[str, ...]
    settings: dict[tuple[float, float], int]
    min_margin_override: float | None
    confusion: Confusion
    mean_genuine_score: float | None
    mean_impostor_score: float | None
    mean_attack_score: float | None
    locked_out: dict[str, int]
    liveness: dict[str, Rate]  # denials with reason presentation_attack, by truth
    exposure: list[ExposureRow]  # by face-metered exposure band; empty when nothing was metered
    false_accept_examples: tuple[Example, ...]
    locked_out_examples: tuple[Example, ...]
    redecide: dict[str, int]
    sweep: Sweep
    recommendation: Recommendation
    people: list[PersonRow]
    reasons: list[ReasonRow]
    weeks: list[WeekRow]
    scores: dict[str, np.ndarray]  # genuine / impostor / attack best_scores, for the histograms

    @property
    def logged_threshold(self) -> float | None:
        """The threshold most records were decided at (None for an empty log)."""
        if not self.settings:
            return None
        return max(self.settings.items(), key=lambda kv: kv[1])[0][0]

    @property
    def labelled(self) -> int:
        return self.records - self.unlabelled


def build_report(
    cols: Columns,
    *,
    label_source: str,
    enrolled: tuple[str, ...] | None = None,
    target_far: float = 1e-3,
    safety_margin: float = 0.01,
    attacks: bool = True,
) -> Report:
    """Every number of the report from the collected columns."""
    if enrolled is None:
        enrolled_names = tuple(sorted(cols.gallery))
        enrolled_source = "inferred: every name the log shows as person, best or second match"
    else:
        enrolled_names, enrolled_source = tuple(enrolled), "--enrolled"
    cls = classify(cols, enrolled_names)
    conf = logged_confusion(cols, cls)
    sweep = build_sweep(cols, cls)
    floor = max((t for t, _ in cols.settings), default=None)
    rec = recommend(sweep, target_far, safety_margin=safety_margin, floor=floor, attacks=attacks)
    locked = cols.reason == REASON_CODE[Reason.LOCKED_OUT]
    finite = np.isfinite(cols.score)
    strangers = sorted(
        {cols.names[i] for i in np.unique(cols.truth[cls.impostor & (cols.truth >= 0)])}
    )
    notes = cols.label_notes
    if (
        strangers
    ):  # a typo in a label would otherwise quietly turn a genuine attempt into an impostor
        notes += (
            f"truth names nobody enrolled, counted as impostors: {', '.join(strangers[:10])}"
            + (f" and {len(strangers) - 10} more" if len(strangers) > 10 else ""),
        )
    return Report(
        files=cols.files,
        records=cols.n,
        skipped_bad=cols.skipped_bad,
        label_source=label_source,
        enrolled=enrolled_names,
        enrolled_source=enrolled_source,
        unlabelled=int(np.count_nonzero(cls.unlabelled)),
        unlabelled_why=cols.unlabelled_why,
        label_notes=notes,
        settings=cols.settings,
        min_margin_override=cols.min_margin_override,
        confusion=conf,
        mean_genuine_score=_mean(cols.score[cls.genuine]),
        mean_impostor_score=_mean(cols.score[cls.negative]),
        mean_attack_score=_mean(cols.score[cls.attack]),
        locked_out={
            "total": int(np.count_nonzero(locked)),
            "genuine": int(np.count_nonzero(locked & cls.genuine)),
            "impostor": int(np.count_nonzero(locked & cls.impostor)),
            "attack": int(np.count_nonzero(locked & cls.attack)),
            "unlabelled": int(np.count_nonzero(locked & cls.unlabelled)),
        },
        liveness=liveness_rates(cols, cls),
        exposure=per_exposure(cols, cls),
        false_accept_examples=cols.false_accept_examples,
        locked_out_examples=cols.locked_out_examples,
        redecide={
            "agree": cols.redecide_agree,
            "logged_unlock_replay_deny": cols.redecide_unlock_only_logged,
            "logged_deny_replay_accept": cols.redecide_unlock_only_replayed,
        },
        sweep=sweep,
        recommendation=rec,
        people=per_person(cols, cls),
        reasons=per_reason(cols, cls),
        weeks=per_week(cols, cls),
        scores={
            "genuine": cols.score[cls.genuine & finite],
            "impostor": cols.score[cls.impostor & finite],
            "attack": cols.score[cls.attack & finite],
        },
    )
