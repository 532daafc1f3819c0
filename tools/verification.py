"""Verification metrics over similarity scores of genuine and impostor pairs.

In: scores (higher = more alike) and labels (True = same person), optionally
fold numbers.  Out: accuracy under the LFW 10-fold protocol, TAR at a FAR, EER.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def accuracy_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    return float(np.mean((scores >= threshold) == labels))


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold with the highest accuracy on these pairs (midpoint between scores)."""
    s = np.sort(np.unique(scores))
    candidates = np.concatenate([[s[0] - 1e-6], (s[1:] + s[:-1]) / 2, [s[-1] + 1e-6]])
    # Vectorised: accuracy for every candidate via sorted cumulative counts.
    order = np.argsort(scores)
    ss, ll = scores[order], labels[order]
    pos_below = np.searchsorted(ss, candidates, side="left")
    cum_pos = np.concatenate([[0], np.cumsum(ll)])
    cum_neg = np.concatenate([[0], np.cumsum(~ll)])
    correct = (cum_pos[-1] - cum_pos[pos_below]) + cum_neg[pos_below]
    return float(candidates[int(np.argmax(correct))])


@dataclass(frozen=True)
class KFoldResult:
    accuracy: float
    std: float
    thresholds: list[float]
    fold_accuracies: list[float]


def kfold_accuracy(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> KFoldResult:
    """LFW protocol: for each fold, choose the threshold on the other folds, test on it."""
    scores, labels, folds = np.asarray(scores, float), np.asarray(labels, bool), np.asarray(folds)
    accs, ths = [], []
    for f in np.unique(folds):
        train, test = folds != f, folds == f
        t = best_threshold(scores[train], labels[train])
        ths.append(t)
        accs.append(accuracy_at(scores[test], labels[test], t))
    return KFoldResult(float(np.mean(accs)), float(np.std(accs)), ths, accs)


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the lowest threshold whose false-accept rate is <= far."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    imp = np.sort(scores[~labels])[::-1]
    allowed = int(np.floor(far * len(imp)))  # impostors that may score at or above
    threshold = imp[allowed] + 1e-9 if allowed < len(imp) else imp[-1]
    tar = float(np.mean(scores[labels] >= threshold))
    return tar, float(threshold)


def eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(equal error rate, threshold) where FAR and FRR cross."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    ts = np.unique(scores)
    gen, imp = np.sort(scores[labels]), np.sort(scores[~labels])
    frr = np.searchsorted(gen, ts, side="left") / len(gen)
    far = 1.0 - np.searchsorted(imp, ts, side="left") / len(imp)
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2), float(ts[i])
