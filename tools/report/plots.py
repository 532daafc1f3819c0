"""The report's figures as PNG bytes: ROC, DET and score histograms.

In: a :class:`tools.report.metrics.Report`.  Out: ``{"roc": png, "det": png,
"scores": png}``, drawn with matplotlib's Agg canvas (no display, no pyplot
global state), ready to write to files or embed in HTML as base64.
"""

from __future__ import annotations

import io
from statistics import NormalDist

import numpy as np

from tools.report import ReportError
from tools.report.metrics import Report

MAX_POINTS = 4000  # a curve with more points looks the same and bloats the PNG
_DET_TICKS = (0.0001, 0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95)


def _figure(width: float = 6.4, height: float = 4.6):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError(
            "plots need matplotlib: pip install 'facegate[report]' (or leave out --html/--markdown/--outdir)"
        ) from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _thin(n: int) -> np.ndarray:
    return (
        np.unique(np.linspace(0, n - 1, min(n, MAX_POINTS)).astype(np.intp))
        if n
        else np.zeros(0, np.intp)
    )


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)


def _operating_points(report: Report) -> list[tuple[str, float, str]]:
    points = []
    if report.logged_threshold is not None:
        points.append(("logged", report.logged_threshold, "tab:blue"))
    rec = report.recommendation
    if rec.threshold is not None:
        points.append(
            (
                "recommended" + ("" if rec.meets_target else " (target not met)"),
                rec.threshold,
                "tab:red",
            )
        )
    return points


def roc(report: Report) -> bytes:
    """TAR against FAR (log scale); FAR 0 is drawn at half of 1/N, where a log axis can show it."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.set_title("ROC (threshold sweep, best-frame re-decision)")
    ax.set_xlabel("FAR (false accepts / impostor+attack attempts)")
    ax.set_ylabel("TAR (genuine attempts accepted as the right person)")
    sw = report.sweep
    t = sw.table()
    ok = np.isfinite(t["far"]) & np.isfinite(t["tar"])
    if not ok.any():
        _empty(ax, "needs labelled genuine and impostor attempts")
        return _png(fig)
    floor = 0.5 / max(sw.negatives, 1)
    far, tar = np.maximum(t["far"][ok], floor), t["tar"][ok]
    i = _thin(far.size)
    ax.step(far[i], tar[i], where="post", color="0.2", lw=1.5)
    ax.set_xscale("log")
    ax.set_xlim(floor * 0.8, 1.05)
    ax.set_ylim(-0.02, 1.02)
    target = report.recommendation.target_far
    ax.axvline(
        max(target, floor), ls="--", color="tab:orange", lw=1, label=f"target FAR {target:g}"
    )
    for label, thr, color in _operating_points(report):
        c = sw.at(thr)
        if c.far.value is not None and c.sensitivity.value is not None:
            ax.plot(
                [max(c.far.value, floor)],
                [c.sensitivity.value],
                "o",
                color=color,
                label=f"{label} {thr:.4f}",
            )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.text(
        0.01, 0.01, f"FAR 0 drawn at {floor:.2g}", transform=ax.transAxes, fontsize=7, color="0.4"
    )
    return _png(fig)


def det(report: Report) -> bytes:
    """FRR against FAR on normal-deviate axes, where good systems are straight lines near the origin."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.set_title("DET (threshold sweep, best-frame re-decision)")
    ax.set_xlabel("FAR")
    ax.set_ylabel("FRR")
    sw = report.sweep
    t = sw.table()
    ok = np.isfinite(t["far"]) & np.isfinite(t["frr"])
    if not ok.any():
        _empty(ax, "needs labelled genuine and impostor attempts")
        return _png(fig)
    lo = 0.5 / max(sw.negatives, sw.genuine_total, 1)
    probit = np.vectorize(NormalDist().inv_cdf)

    def z(x: np.ndarray) -> np.ndarray:
        return probit(np.clip(x, lo, 1 - lo))

    far, frr = t["far"][ok], t["frr"][ok]
    i = _thin(far.size)
    ax.plot(z(far[i]), z(frr[i]), color="0.2", lw=1.5)
    ticks = [p for p in _DET_TICKS if p >= lo * 0.99]
    zt = z(np.array(ticks))
    labels = [f"{100 * p:g}%" for p in ticks]
    ax.set_xticks(zt, labels)
    ax.set_yticks(zt, labels)
    ax.set_xlim(z(np.array([lo]))[0] - 0.1, z(np.array([0.95]))[0])
    ax.set_ylim(z(np.array([lo]))[0] - 0.1, z(np.array([0.95]))[0])
    for label, thr, color in _operating_points(report):
        c = sw.at(thr)
        if c.far.value is not None and c.frr.value is not None:
            ax.plot(
                z(np.array([c.far.value])),
                z(np.array([c.frr.value])),
                "o",
                color=color,
                label=f"{label} {thr:.4f}",
            )
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax.text(
        0.01, 0.01, f"rates of 0 drawn at {lo:.2g}", transform=ax.transAxes, fontsize=7, color="0.4"
    )
    return _png(fig)


def score_histograms(report: Report) -> bytes:
    """Genuine, impostor and attack best_scores: how far apart they are is the whole story."""
    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot()
    ax.set_title("best_score by truth")
    ax.set_xlabel("best_score (cosine similarity)")
    ax.set_ylabel("attempts")
    groups = [(k, v) for k, v in report.scores.items() if v.size]
    if not groups:
        _empty(ax, "no labelled attempts with a score")
        return _png(fig)
    allv = np.concatenate([v for _, v in groups])
    lo, hi = float(allv.min()), float(allv.max())
    if hi - lo < 1e-3:
        lo, hi = lo - 0.05, hi + 0.05
    bins = np.linspace(lo, hi, 61)
    colors = {"genuine": "tab:green", "impostor": "tab:red", "attack": "tab:purple"}
    for name, v in groups:
        counts, _ = np.histogram(v, bins=bins)
        ax.stairs(counts, bins, label=f"{name} ({v.size})", color=colors.get(name, "0.3"), lw=1.5)
    for label, thr, color in _operating_points(report):
        ax.axvline(thr, ls="--", color=color, lw=1, label=f"{label} {thr:.4f}")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return _png(fig)


def all_plots(report: Report) -> dict[str, bytes]:
    return {"roc": roc(report), "det": det(report), "scores": score_histograms(report)}
