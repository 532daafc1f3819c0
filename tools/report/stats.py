"""Binomial proportions with honest uncertainty.

In: counts ``k`` successes of ``n`` trials (scalars, or numpy arrays for a sweep).
Out: the ratio (None when n == 0: 0/0 is unknown, not zero), its two-sided 95%
Wilson interval, the exact one-sided 95% (Clopper-Pearson) upper bound, and
the rule-of-three bound for zero events.

Why Wilson: the normal ("Wald") interval collapses to [0, 0] at zero events,
which would report a door that let nobody in out of 20 impostors as perfectly
safe.  Why a one-sided bound for FAR: "FAR below target with 95% confidence" is
a one-sided claim; for zero events it is 1 - 0.05**(1/n) < 3/n, the rule of
three, so "need ceil(3/target) impostor attempts" holds for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% normal quantile
ALPHA = 0.05


def ratio(k: int, n: int) -> float | None:
    """k/n, or None for 0/0 (shown as "n/a", never as 0)."""
    return k / n if n else None


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Two-sided Wilson score interval for k of n; None when n == 0."""
    if n <= 0:
        return None
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends: no 1e-18 from rounding
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def wilson_arrays(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`wilson`: (low, high) arrays, NaN where n == 0."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        z2 = z * z
        denom = 1.0 + z2 / n
        centre = (p + z2 / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
        low = np.where(n > 0, np.where(k == 0, 0.0, np.maximum(0.0, centre - half)), np.nan)
        high = np.where(n > 0, np.where(k == n, 1.0, np.minimum(1.0, centre + half)), np.nan)
    return low, high


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (exact for any n)."""
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    i, log_comb = _log_comb(0, k, n)
    return _cdf(log_comb, i, n, p)


def _log_comb(first: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """i = first..k and log C(n, i), built by a running sum from lgamma at ``first``."""
    i = np.arange(first, k + 1, dtype=np.float64)
    start = math.lgamma(n + 1) - math.lgamma(first + 1) - math.lgamma(n - first + 1)
    steps = np.log(n - i[1:] + 1) - np.log(i[1:])
    return i, start + np.concatenate([[0.0], np.cumsum(steps)])


def _cdf(log_comb: np.ndarray, i: np.ndarray, n: int, p: float) -> float:
    terms = log_comb + i * math.log(p) + (n - i) * math.log1p(-p)
    top = float(terms.max())
    return min(1.0, math.exp(top) * float(np.exp(terms - top).sum()))


def upper_bound(k: int, n: int, alpha: float = ALPHA) -> float | None:
    """Exact one-sided (1 - alpha) upper bound on the rate (Clopper-Pearson); None when n == 0.

    The largest p for which seeing k or fewer events still has probability
    alpha.  Zero events: closed form 1 - alpha**(1/n).
    """
    if n <= 0:
        return None
    if k >= n:
        return 1.0
    if k == 0:
        return 1.0 - alpha ** (1.0 / n)
    # For p >= k/n the terms below k - 40*sqrt(k) weigh < e**-800 of the sum: skip
    # them, so a bound on 500,000 events costs a few thousand terms, not k.
    first = max(0, k - int(40 * math.sqrt(k)) - 50)
    i, log_comb = _log_comb(first, k, n)
    lo, hi = k / n, 1.0
    for _ in range(64):  # bisection: the CDF falls as p rises
        mid = (lo + hi) / 2
        if _cdf(log_comb, i, n, mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


def rule_of_three(n: int) -> float | None:
    """3/n: the 95% upper bound on a rate when 0 of n events were seen (1.0 when n <= 3: no bound)."""
    return min(1.0, 3.0 / n) if n > 0 else None


@dataclass(frozen=True)
class Rate:
    """k of n with its 95% Wilson interval; every property is None when n == 0."""

    k: int
    n: int

    @property
    def value(self) -> float | None:
        return ratio(self.k, self.n)

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.k, self.n)

    def to_json(self) -> dict[str, Any]:
        ci = self.interval
        return {
            "k": self.k,
            "n": self.n,
            "value": self.value,
            "wilson95": None if ci is None else [ci[0], ci[1]],
        }

    def text(self) -> str:
        """``12.50% (95% CI 5.12-26.01%, 5/40)`` or ``n/a (0/0)``."""
        ci = self.interval
        if ci is None:
            return "n/a (0/0)"
        return (
            f"{pct(self.value)} (95% CI {pct(ci[0], sign=False)}-{pct(ci[1])}, {self.k}/{self.n})"
        )


def pct(x: float | None, *, sign: bool = True) -> str:
    """A fraction as a percentage with enough digits for small rates; None -> n/a."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    v = 100.0 * x
    digits = 2 if v == 0 or v >= 0.1 else 3 if v >= 0.01 else 4
    return f"{v:.{digits}f}%" if sign else f"{v:.{digits}f}"


def far_bound_text(k: int, n: int) -> str:
    """The upper-bound sentence for a false-accept rate: zero observed is not zero."""
    if n == 0:
        return "FAR: no impostor/attack attempts, so nothing is known about false accepts"
    ub = upper_bound(k, n)
    if k == 0 and n <= 3:
        return (
            f"0 false accepts in {n} impostor/attack attempts: far too few to bound FAR (the rule of three "
            f"needs more than 3); exact one-sided 95% upper bound {pct(ub)}"
        )
    if k == 0:
        return (
            f"0 false accepts in {n} impostor/attack attempts: FAR < 3/{n} = {pct(rule_of_three(n))} at 95% "
            f"(rule of three; exact one-sided 95% upper bound {pct(ub)})"
        )
    return f"{k} false accepts in {n} impostor/attack attempts: FAR <= {pct(ub)} at 95% (exact one-sided upper bound)"
