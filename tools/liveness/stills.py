"""Liveness on still images, frame by frame through the device code: a cross-domain check.

In: a folder of live face photos and a folder of attack photos (printed photos, screens,
masks), the facegate config (its cues and operating points).  Out: per image, each score
cue's live logit and the rule's per-frame verdict (every cue that is on reaches its own
operating point; motion cues cannot act on a still); per set, AUC of the rule's margin (the
lowest cue margin), APCER and BPCER at the configured operating points over the images with
a face (and, the door's view, with every image without a face counted as refused), APCER at
BPCER 1, 2, 5 and 10%, the same per cue, images without a face, and the worst images by name.

Each image is one attempt of one frame: the largest face the device's detector finds, the
cues' crops cut from the image as the daemon cuts them from its detection stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.config import Config
from edge.detect import largest_first
from edge.errors import DataError, ImageError
from edge.images import read_image
from edge.liveness import SCORE_CUES, build_liveness, operating_points, point_logit
from edge.pipeline import build_detector

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
BPCER_POINTS = (0.01, 0.02, 0.05, 0.10)


@dataclass(frozen=True)
class ImageScore:
    path: Path
    live: bool  # the truth
    logits: dict[str, float] = field(
        default_factory=dict
    )  # score cue -> live logit; empty: no face
    unreadable: bool = False

    @property
    def face(self) -> bool:
        return bool(self.logits)


def images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of images")
    found = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not found:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return found


def score_images(config: Config, live: list[Path], attack: list[Path]) -> list[ImageScore]:
    """Every image through the detector and every score cue (all of them, whatever is on)."""
    detector = build_detector(config)
    on = replace(config, liveness=replace(config.liveness, enabled=True))
    checker = build_liveness(on, scores=list(SCORE_CUES), vetoes=[])
    assert checker is not None
    out = []
    for truth, paths in ((True, live), (False, attack)):
        for i, p in enumerate(paths):
            try:
                frame = read_image(p)
            except ImageError:
                out.append(ImageScore(p, truth, unreadable=True))
                continue
            faces = detector(frame)
            if not faces:
                out.append(ImageScore(p, truth))
                continue
            sample = checker.sample(i, frame, largest_first(faces)[0], 0.0)
            out.append(ImageScore(p, truth, dict(sample.scores)))
    return out


def margins(scores: list[ImageScore], points: dict[str, float]) -> np.ndarray:
    """The rule's per-frame margin of each image with a face: the lowest (logit - point logit)."""
    out = []
    for s in scores:
        m = [s.logits[k] - point_logit(p) for k, p in points.items()]
        out.append(min(m) if m and not any(math.isnan(x) for x in m) else math.nan)
    return np.array(out, float)


def auc(score: np.ndarray, live: np.ndarray) -> float:
    """Probability that a live image outscores an attack (ties count half); NaN scores lose."""
    s = np.nan_to_num(score, nan=-np.inf)
    a, b = s[live], s[~live]
    if not len(a) or not len(b):
        return math.nan
    greater = (a[:, None] > b[None, :]).sum() + 0.5 * (a[:, None] == b[None, :]).sum()
    return float(greater / (len(a) * len(b)))


def apcer_at_bpcer(score: np.ndarray, live: np.ndarray, bpcer: float) -> tuple[float, float]:
    """(APCER, the threshold) at the highest threshold refusing at most ``bpcer`` of live images."""
    s = np.nan_to_num(score, nan=-np.inf)
    lv = np.sort(s[live])
    k = int(math.floor(bpcer * len(lv)))  # live images that may fall below
    t = lv[k] if k < len(lv) else np.inf
    return float((s[~live] >= t).mean()), float(t)


def summarize(scores: list[ImageScore], config: Config, *, worst: int = 5) -> dict[str, Any]:
    """The figures above for the rule at the configured points, and for each cue alone."""
    faced = [s for s in scores if s.face]
    live = np.array([s.live for s in faced], bool)
    points = operating_points(config.liveness)
    if not points:
        raise DataError("liveness: no score cue is on in this config")

    def block(pts: dict[str, float]) -> dict[str, Any]:
        m = margins(faced, pts)
        accepted = m >= 0.0
        return {
            "points": pts,
            "auc": auc(m, live),
            "apcer": float(accepted[~live].mean()) if (~live).any() else math.nan,
            "bpcer": float((~accepted[live]).mean()) if live.any() else math.nan,
            "attacks_accepted": int(accepted[~live].sum()),
            "live_refused": int((~accepted[live]).sum()),
            "apcer_at_bpcer": {
                f"{100 * b:g}%": apcer_at_bpcer(m, live, b)[0] for b in BPCER_POINTS
            },
        }

    rule = block(points)
    # The door's view: an image without a face opens nothing and lets nobody in.
    n_live = sum(1 for s in scores if s.live and not s.unreadable)
    n_attack = sum(1 for s in scores if not s.live and not s.unreadable)
    rule["door"] = {
        "apcer": rule["attacks_accepted"] / n_attack if n_attack else math.nan,
        "bpcer": (n_live - (int(live.sum()) - rule["live_refused"])) / n_live
        if n_live
        else math.nan,
    }
    m = margins(faced, points)
    order = np.argsort(np.nan_to_num(m, nan=-np.inf))
    live_idx = [i for i in order if faced[i].live][:worst]
    attack_idx = [i for i in order[::-1] if not faced[i].live][:worst]

    def named(i: int) -> dict[str, Any]:
        s = faced[i]
        return {"image": str(s.path), "margin": float(m[i]), "logits": s.logits}

    return {
        "images": {"live": sum(s.live for s in scores), "attack": sum(not s.live for s in scores)},
        "no_face": {
            "live": sum(s.live and not s.face and not s.unreadable for s in scores),
            "attack": sum(not s.live and not s.face and not s.unreadable for s in scores),
        },
        "unreadable": sum(s.unreadable for s in scores),
        "rule": rule,
        "cues": {k: block({k: p}) for k, p in points.items()},
        "worst_live": [named(i) for i in live_idx],
        "worst_attacks": [named(i) for i in attack_idx],
    }


def report_lines(s: dict[str, Any], live_dir: Path, attack_dir: Path) -> list[str]:
    """The summary as the command prints it."""
    r = s["rule"]
    pts = ", ".join(f"{k} {v:g}" for k, v in r["points"].items())
    lines = [
        f"{live_dir}: {s['images']['live']} live images ({s['no_face']['live']} without a face); "
        f"{attack_dir}: {s['images']['attack']} attack images ({s['no_face']['attack']} without a face)"
        + (f"; {s['unreadable']} unreadable" if s["unreadable"] else ""),
        f"the rule (each cue vetoes; operating points {pts}), one frame per image:",
        f"  AUC {r['auc']:.3f}; APCER {100 * r['apcer']:.1f}% ({r['attacks_accepted']} attacks accepted), "
        f"BPCER {100 * r['bpcer']:.1f}% ({r['live_refused']} live refused)",
        "  APCER at BPCER "
        + ", ".join(f"{k}: {100 * v:.1f}%" for k, v in r["apcer_at_bpcer"].items()),
        f"  counting images without a face as refused (the door's view): APCER "
        f"{100 * r['door']['apcer']:.1f}%, BPCER {100 * r['door']['bpcer']:.1f}%",
    ]
    for key, c in s["cues"].items():
        lines.append(
            f"  {key} alone (point {c['points'][key]:g}): AUC {c['auc']:.3f}, APCER {100 * c['apcer']:.1f}%, "
            f"BPCER {100 * c['bpcer']:.1f}%; APCER at BPCER "
            + ", ".join(f"{k} {100 * v:.1f}%" for k, v in c["apcer_at_bpcer"].items())
        )
    lines.append("  live images refused most surely: " + _names(s["worst_live"]))
    lines.append("  attack images accepted most surely: " + _names(s["worst_attacks"]))
    return lines


def _names(rows: list[dict[str, Any]]) -> str:
    return ", ".join(f"{Path(r['image']).name} ({r['margin']:+.2f})" for r in rows) or "none"
