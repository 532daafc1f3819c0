"""The threshold sweep over the logged scores, and the threshold it recommends.

In: :class:`tools.report.collect.Columns` and their :class:`~tools.report.confusion.Classes`.
Out: a :class:`Sweep` (the confusion matrix at any threshold, vectorised over
every distinct score) and a :class:`Recommendation`: the threshold, whether the
evidence supports the FAR target, and the figures behind that choice.  The
sentence that explains a recommendation is written by tools.report.wording.

The sweep re-decides each attempt from its logged best_score: how, and how
far that approximates the daemon's frame vote, is tools.report.wording.SWEEP_METHOD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tools.report.collect import Columns
from tools.report.confusion import Classes, Confusion
from tools.report.stats import ALPHA, upper_bound, wilson_arrays


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

# How a recommendation was reached:
#   far-bound:    the lowest threshold whose one-sided 95% FAR upper bound is below the target;
#   no-negatives: no impostor or attack attempt is labelled, so the logged threshold is kept;
#   zero-fa:      too few negatives to show the target: the lowest threshold with zero
#                 observed false accepts, plus the safety margin;
#   unscored:     too few negatives, and none reached a threshold (all denied earlier), so the
#                 scores say nothing about where impostors fall: the logged threshold is kept.
Basis = Literal["far-bound", "no-negatives", "zero-fa", "unscored"]


@dataclass(frozen=True)
class Recommendation:
    """The threshold to use, whether the evidence supports the FAR target, and the figures behind it."""

    threshold: float | None
    meets_target: bool
    target_far: float
    confusion: Confusion | None  # at the threshold (None when there is no threshold)
    negatives: int  # impostor and attack attempts
    needed: (
        int  # impostor attempts needed to show FAR < target with zero false accepts (rule of three)
    )
    basis: Basis
    # zero-fa only:
    zero_fa: float | None = None  # the lowest threshold with zero observed false accepts
    with_margin: float | None = None  # zero_fa + the safety margin
    safety_margin: float = 0.0
    attacks: bool = True  # photo attacks counted among the false accepts it avoids
    capped: bool = False  # with_margin exceeds any possible similarity: zero_fa is used instead
    kept_at_floor: bool = False  # it would have loosened the logged threshold, so that is kept

    def to_json(self) -> dict[str, Any]:
        """The numbers; tools.report.json_report adds the statement."""
        return {
            "threshold": self.threshold,
            "meets_target": self.meets_target,
            "target_far": self.target_far,
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
        at_floor = None if floor is None else sweep.at(floor)
        return Recommendation(floor, False, target_far, at_floor, 0, needed, "no-negatives")
    best_case = upper_bound(0, n_neg)
    assert best_case is not None
    if best_case >= target_far:
        return _without_enough_negatives(
            sweep, target_far, needed, safety_margin=safety_margin, floor=floor, attacks=attacks
        )
    return _lowest_meeting_target(sweep, target_far, needed)


def _without_enough_negatives(
    sweep: Sweep,
    target_far: float,
    needed: int,
    *,
    safety_margin: float,
    floor: float | None,
    attacks: bool,
) -> Recommendation:
    """Zero observed false accepts plus a margin, never below the logged threshold ``floor``."""
    # attacks=False: photo attacks are the liveness check's job; the recognition
    # threshold is then chosen on strangers (and wrong-person matches) alone.
    negatives = np.concatenate([sweep.wrong, sweep.impostor] + ([sweep.attack] if attacks else []))
    n_neg = sweep.negatives
    if negatives.size == 0:
        at_floor = None if floor is None else sweep.at(floor)
        return Recommendation(floor, False, target_far, at_floor, n_neg, needed, "unscored")
    zero_fa = min(round(float(negatives.max()) + 1e-4, 4), 1.0)
    with_margin = round(zero_fa + safety_margin, 4)
    t = with_margin
    capped = t > 1.0  # a cosine similarity never exceeds 1: the margin cannot be had
    if capped:
        t = zero_fa
    kept_at_floor = floor is not None and t < floor
    if floor is not None and kept_at_floor:
        t = floor
    return Recommendation(
        t,
        False,
        target_far,
        sweep.at(t),
        n_neg,
        needed,
        "zero-fa",
        zero_fa=zero_fa,
        with_margin=with_margin,
        safety_margin=safety_margin,
        attacks=attacks,
        capped=capped,
        kept_at_floor=kept_at_floor,
    )


def _lowest_meeting_target(sweep: Sweep, target_far: float, needed: int) -> Recommendation:
    """Enough negatives: the lowest sweep threshold whose FAR upper bound is below the target."""
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
            return Recommendation(
                float(t), True, target_far, conf, sweep.negatives, needed, "far-bound"
            )
    raise AssertionError("the top threshold denies everyone, so it must meet a feasible target")
