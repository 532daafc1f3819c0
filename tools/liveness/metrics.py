"""APCER / BPCER as ISO/IEC 30107-3 defines them, per attempt.

In: per-frame live logits with each frame's recording (clip) and frame
number.  Out: per-attempt scores, error rates at a threshold, the error curve,
and the operating-point rule.

An attempt is ``n`` consecutive frames of one recording (the frames the
policy judges for one decision); its score is sigmoid(mean logit), as
edge.liveness.judge computes it.  APCER: attack attempts accepted as live.
BPCER: live attempts refused as attacks.  Accepted means score >= threshold.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from edge.liveness import sigmoid

MAX_BPCER = 0.05  # the operating-point rule's bound on live attempts refused (the target)


def attempt_groups(clip: np.ndarray, frame_no: np.ndarray, n: int) -> list[np.ndarray]:
    """Indices of each attempt: n consecutive frames of one clip, in recording order (remainders dropped)."""
    by_clip: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(clip):
        by_clip[str(c)].append(i)
    groups = []
    for key in sorted(by_clip):
        idx = sorted(by_clip[key], key=lambda i: int(frame_no[i]))
        groups += [np.array(idx[j : j + n]) for j in range(0, len(idx) - n + 1, n)]
    return groups


def attempt_scores(
    logits: np.ndarray, clip: np.ndarray, frame_no: np.ndarray, live: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score = sigmoid(mean logit), is live, first frame index) per attempt of ``n`` frames."""
    scores, truth, first = [], [], []
    for g in attempt_groups(clip, frame_no, n):
        scores.append(sigmoid(float(np.mean(logits[g]))))
        truth.append(bool(live[g[0]]))
        first.append(int(g[0]))
    return np.array(scores), np.array(truth, bool), np.array(first, int)


def rates(scores: np.ndarray, live: np.ndarray, threshold: float) -> tuple[float, float]:
    """(APCER, BPCER) at ``threshold``; NaN when there are no attempts of that kind."""
    accepted = scores >= threshold
    attack = ~live
    apcer = float(accepted[attack].mean()) if attack.any() else float("nan")
    bpcer = float((~accepted[live]).mean()) if live.any() else float("nan")
    return apcer, bpcer


def curve(scores: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, APCER, BPCER) at every distinct score, plus one above them all."""
    thresholds = np.unique(np.concatenate([scores, [np.inf]]))
    apcer = np.array([rates(scores, live, t)[0] for t in thresholds])
    bpcer = np.array([rates(scores, live, t)[1] for t in thresholds])
    return thresholds, apcer, bpcer


def choose_threshold(scores: np.ndarray, live: np.ndarray, *, max_bpcer: float) -> float:
    """The lowest APCER with BPCER <= max_bpcer; among equals, the middle of that range of scores.

    The middle, not the edge: the scores come from subjects the model did not
    see, and new subjects shift them either way.
    """
    thresholds, apcer, bpcer = curve(scores, live)
    ok = np.flatnonzero(bpcer <= max_bpcer)
    if not len(ok):
        return float(np.min(scores[live]))
    best = np.nanmin(apcer[ok])
    tied = ok[apcer[ok] == best]
    # The rates at thresholds[k] hold for every t in (thresholds[k-1], thresholds[k]].
    lo = float(thresholds[tied.min() - 1]) if tied.min() > 0 else float(thresholds[0])
    hi = float(thresholds[tied.max()])
    if not np.isfinite(hi):
        return lo
    return (lo + hi) / 2.0
