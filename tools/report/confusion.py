"""Who each attempt is, and the door's confusion matrix of what it did.

In: :class:`tools.report.collect.Columns` and who is enrolled.
Out: :class:`Classes` (a boolean mask per kind of truth) and :class:`Confusion`
(counts, and every rate a :class:`~tools.report.stats.Rate` whose value is None
when undefined).

Classes.  Positive = a genuine attempt: the truth is an enrolled person.
TP: genuine, unlocked as that person.  FN: genuine, denied.  FP: an impostor
(a stranger, or a live person not enrolled) or an attack unlocked, or a
genuine attempt unlocked as the WRONG person (also counted as
``wrong_person``).  TN: impostor or attack denied.  So TP + FN + wrong_person
is the number of genuine attempts, and FP + TN - wrong_person the number of
impostor and attack attempts.  locked_out denials count as denials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tools.report.collect import ATTACK_CODE, IMPOSTOR_CODE, UNLABELLED, Columns
from tools.report.stats import Rate, rule_of_three, upper_bound


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
