"""The parity gate: does the converted model verify faces as well as its source?

In: embeddings of the same held-out face crops by the source model and by the
converted model (in each device runtime), and optionally LFW-format pairs over
those faces.  Out: a Parity report (cosine agreement; accuracy and TAR at
FAR = 1e-3, source vs converted) and the list of bounds it breaks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tools.verification import kfold_accuracy, tar_at_far


@dataclass(frozen=True)
class Bounds:
    """Safe defaults: a converted door-lock model must agree closely with its source."""

    min_mean_cosine: float = 0.98
    min_p1_cosine: float = 0.95
    max_accuracy_drop: float = 0.002  # 0.2 points of verification accuracy
    max_tar_drop: float = 0.01  # 1 point of TAR at FAR = 1e-3


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
    return {"accuracy": k.accuracy, "accuracy_std": k.std, "tar_at_far_1e3": tar, "threshold_at_far_1e3": th}


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
            out.append(f"1st-percentile cosine to source {self.p1_cosine:.4f} < {bounds.min_p1_cosine}")
        if self.source and self.converted:
            drop = self.source["accuracy"] - self.converted["accuracy"]
            if drop > bounds.max_accuracy_drop:
                out.append(
                    f"accuracy {100 * self.converted['accuracy']:.2f}% is {100 * drop:.2f} points below the "
                    f"source's {100 * self.source['accuracy']:.2f}% (bound {100 * bounds.max_accuracy_drop:.2f})"
                )
            tdrop = self.source["tar_at_far_1e3"] - self.converted["tar_at_far_1e3"]
            if tdrop > bounds.max_tar_drop:
                out.append(f"TAR@FAR=1e-3 {100 * self.converted['tar_at_far_1e3']:.2f}% is {100 * tdrop:.2f} points below the source")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def compare(source: np.ndarray, converted: np.ndarray, runtime: str, pairs: PairSet | None = None) -> Parity:
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
