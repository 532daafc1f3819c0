"""The parity gate: does the converted model behave as its source does?

In: embeddings of the same held-out face crops by the source model and by the
converted model (in each device runtime), and optionally LFW-format pairs over
those faces.  Out: a Parity report (cosine agreement; accuracy and TAR at
FAR = 1e-3, source vs converted) and the list of bounds it breaks.

For a liveness classifier, the raw logits instead, and optionally live/attack
labels: a LivenessParity report (live-probability differences, verdicts at
p = 0.5 that change, AUC source vs converted).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge.liveness import sigmoids
from tools.verification import kfold_accuracy, tar_at_far


def _rounded(report: Parity | LivenessParity) -> dict[str, Any]:
    """The report's fields for the card, floats to 5 decimals."""
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(report).items()}


@dataclass(frozen=True)
class Bounds:
    """Safe defaults: a converted door-lock model must agree closely with its source."""

    min_mean_cosine: float = 0.98
    min_p1_cosine: float = 0.95
    max_accuracy_drop: float = 0.002  # 0.2 points of verification accuracy
    max_tar_drop: float = 0.01  # 1 point of TAR at FAR = 1e-3
    # liveness: 99th percentile of |live probability, converted - source|
    max_probability_diff: float = 0.05
    # liveness: fraction of faces whose live/attack verdict at p = 0.5 changes
    max_verdict_flips: float = 0.01


@dataclass(frozen=True)
class PairSet:
    """Pairs as indices into the crops; -1 marks an image with no face (a failed pair)."""

    a: np.ndarray
    b: np.ndarray
    same: np.ndarray
    fold: np.ndarray


def pair_scores(emb: np.ndarray, pairs: PairSet) -> np.ndarray:
    ok = (pairs.a >= 0) & (pairs.b >= 0)
    s = np.where(pairs.same, -2.0, 2.0)  # a failed pair is wrong whatever the threshold
    s[ok] = np.einsum("ij,ij->i", emb[pairs.a[ok]], emb[pairs.b[ok]])
    return s


def verification(emb: np.ndarray, pairs: PairSet) -> dict[str, float]:
    s = pair_scores(emb, pairs)
    folds = pairs.fold
    if len(np.unique(folds)) < 2:  # a View 1 file: interleave ten folds per class
        folds = np.zeros(len(s), int)
        for cls in (True, False):
            idx = np.flatnonzero(pairs.same == cls)
            folds[idx] = np.arange(len(idx)) % 10
    k = kfold_accuracy(s, pairs.same, folds)
    tar, th = tar_at_far(s, pairs.same, 1e-3)
    return {
        "accuracy": k.accuracy,
        "accuracy_std": k.std,
        "tar_at_far_1e3": tar,
        "threshold_at_far_1e3": th,
    }


@dataclass(frozen=True)
class Parity:
    faces: int
    runtime: str
    mean_cosine: float
    p1_cosine: float
    min_cosine: float
    source: dict[str, float] | None = None
    converted: dict[str, float] | None = None

    def failures(self, bounds: Bounds) -> list[str]:
        out = []
        if self.mean_cosine < bounds.min_mean_cosine:
            out.append(f"mean cosine to source {self.mean_cosine:.4f} < {bounds.min_mean_cosine}")
        if self.p1_cosine < bounds.min_p1_cosine:
            out.append(
                f"1st-percentile cosine to source {self.p1_cosine:.4f} < {bounds.min_p1_cosine}"
            )
        if self.source and self.converted:
            drop = self.source["accuracy"] - self.converted["accuracy"]
            if drop > bounds.max_accuracy_drop:
                out.append(
                    f"accuracy {100 * self.converted['accuracy']:.2f}% is {100 * drop:.2f} points below the "
                    f"source's {100 * self.source['accuracy']:.2f}% (bound {100 * bounds.max_accuracy_drop:.2f})"
                )
            tdrop = self.source["tar_at_far_1e3"] - self.converted["tar_at_far_1e3"]
            if tdrop > bounds.max_tar_drop:
                out.append(
                    f"TAR@FAR=1e-3 {100 * self.converted['tar_at_far_1e3']:.2f}% is "
                    f"{100 * tdrop:.2f} points below the source"
                )
        return out

    def as_dict(self) -> dict[str, Any]:
        return _rounded(self)


def compare(
    source: np.ndarray, converted: np.ndarray, runtime: str, pairs: PairSet | None = None
) -> Parity:
    cos = np.einsum("ij,ij->i", source, converted)
    return Parity(
        faces=len(cos),
        runtime=runtime,
        mean_cosine=float(cos.mean()),
        p1_cosine=float(np.percentile(cos, 1)),
        min_cosine=float(cos.min()),
        source=verification(source, pairs) if pairs is not None else None,
        converted=verification(converted, pairs) if pairs is not None else None,
    )


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    pos, neg = scores[labels], np.sort(scores[~labels])
    if not len(pos) or not len(neg):
        return None
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(pos) * len(neg)))


@dataclass(frozen=True)
class LivenessParity:
    faces: int
    runtime: str
    mean_probability_diff: float
    p99_probability_diff: float
    max_probability_diff: float
    verdict_flips: float  # fraction of faces
    source_auc: float | None = None
    converted_auc: float | None = None

    def failures(self, bounds: Bounds) -> list[str]:
        out = []
        if self.p99_probability_diff > bounds.max_probability_diff:
            out.append(
                f"99th-percentile live-probability difference {self.p99_probability_diff:.4f} "
                f"> {bounds.max_probability_diff}"
            )
        if self.verdict_flips > bounds.max_verdict_flips:
            out.append(
                f"{100 * self.verdict_flips:.2f}% of live/attack verdicts change "
                f"(bound {100 * bounds.max_verdict_flips:.2f}%)"
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return _rounded(self)


def compare_liveness(
    source: np.ndarray, converted: np.ndarray, runtime: str, labels: np.ndarray | None = None
) -> LivenessParity:
    """Source vs converted logits (N x 1) of the same faces, compared as live probabilities."""
    ps, pc = sigmoids(source).ravel(), sigmoids(converted).ravel()
    diff = np.abs(pc - ps)
    return LivenessParity(
        faces=len(diff),
        runtime=runtime,
        mean_probability_diff=float(diff.mean()),
        p99_probability_diff=float(np.percentile(diff, 99)),
        max_probability_diff=float(diff.max()),
        verdict_flips=float(np.mean((ps >= 0.5) != (pc >= 0.5))),
        source_auc=auc(ps, labels) if labels is not None else None,
        converted_auc=auc(pc, labels) if labels is not None else None,
    )
