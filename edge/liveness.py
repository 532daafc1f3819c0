"""Presentation-attack detection (liveness): is the face at the door a live person?

In, per frame: the Frame, the tracked Face and its track id.  Out: a
:class:`LivenessSample` -- the passive classifier's live logit for this
frame, and whether the face moved as a rigid tilted plane since the track's
previous frame.  Per attempt, :func:`judge` turns the samples of the frames the
policy used into a :class:`LivenessVerdict`.

Two cues, because each catches what the other cannot:

* **Passive classifier** (``models/liveness-nuaa.int8.tflite``: FaceNet's
  frozen stem, texture statistics and one logistic unit, fitted by
  ``tools/liveness/train.py`` and converted by ``tools/convert``): the face
  with its surroundings (crop recipe in its card), so paper texture, print
  colour, photo edges and the fingers holding them are in view.  It sees the
  detection stream (640x480), the resolution it was trained on.  The
  attempt's score is sigmoid(mean logit) over its frames.
* **Rigid planar motion**: a printed photo tilted or swung in front of the
  camera moves as a plane -- a homography explains every tracked point while a
  similarity transform (shift, scale, in-plane turn) does not.  A live head
  that turns shows parallax (nose against cheeks), which no homography
  explains; a live head that only shifts or walks closer is a similarity, so
  it is not flagged.  A frame pair that is clearly projective-but-rigid marks
  the attempt as an attack.

Fail secure: an attempt is live only when enough frames were scored and every
cue agrees; a NaN anywhere fails its comparison.
"""

from __future__ import annotations

import importlib.resources
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.align import align
from edge.embed import normalize, open_with_card
from edge.errors import ModelError
from edge.types import Face, Frame

log = logging.getLogger(__name__)

SHIPPED_MODEL = "liveness-nuaa.int8.tflite"

# Rigid planar motion, in face widths (set on synthetic planes, tests/edge/test_liveness.py; it
# flagged no NUAA attempt, README "Liveness"):
PLANAR_MIN_MOTION = 0.02  # median feature shift below this: too little motion to tell
PLANAR_MIN_HOMOGRAPHY_INLIERS = 0.95  # a plane: nearly every point fits one homography ...
PLANAR_MAX_SIMILARITY_INLIERS = 0.80  # ... that is not just a shift/zoom/in-plane turn
PLANAR_RANSAC_PX = 0.01  # inlier distance, in face widths
PLANAR_MAX_GAP_S = 0.5  # frames further apart than this are not compared
_MIN_POINTS = 12


def shipped_model() -> Path:
    """The liveness model shipped in the ``models`` package."""
    return Path(str(importlib.resources.files("models").joinpath(SHIPPED_MODEL)))


@dataclass(frozen=True)
class LivenessSample:
    """One frame's liveness figures (NaN / None when not measured)."""

    logit: float  # the classifier's output: > 0 leans live
    planar: bool | None = None  # rigid planar motion since the previous frame; None: not measurable
    motion: float = math.nan  # median feature shift since the previous frame, face widths

    @property
    def live_probability(self) -> float:
        return sigmoid(self.logit)


@dataclass(frozen=True)
class LivenessVerdict:
    live: bool
    mean_logit: float  # over the scored frames (NaN if none)
    frames: int  # frames with a finite logit
    planar_pairs: int  # frame pairs that moved as a rigid tilted plane
    why: str = ""  # empty when live

    @property
    def live_probability(self) -> float:
        return sigmoid(self.mean_logit)

    def as_dict(self, min_live_probability: float) -> dict[str, float | int | bool | None]:
        """The decision log's ``liveness`` object."""
        p = self.live_probability
        return {
            "live": self.live,
            "live_probability": round(p, 4) if math.isfinite(p) else None,
            "min_live_probability": min_live_probability,
            "frames": self.frames,
            "planar_pairs": self.planar_pairs,
        }


def judge(
    samples: Sequence[LivenessSample | None],
    *,
    min_live_probability: float,
    min_frames: int,
    planar_motion: bool = True,
) -> LivenessVerdict:
    """The attempt's verdict from its frames' samples (missing samples score nothing).

    Live when at least ``min_frames`` frames were scored, their mean logit is
    at least logit(min_live_probability) -- the mean probability in logit
    space, so one confident frame cannot outvote the rest -- and no frame pair
    moved as a rigid tilted plane.
    """
    logits = [s.logit for s in samples if s is not None and math.isfinite(s.logit)]
    planar = sum(1 for s in samples if s is not None and s.planar) if planar_motion else 0
    mean = float(np.mean(logits)) if logits else math.nan

    def verdict(live: bool, why: str = "") -> LivenessVerdict:
        return LivenessVerdict(live, mean, len(logits), planar, why)

    if len(logits) < min_frames:
        return verdict(False, f"only {len(logits)} of {min_frames} frames scored")
    if planar:
        return verdict(False, f"{planar} frame pair(s) moved as a rigid plane")
    if not sigmoid(mean) >= min_live_probability:
        return verdict(False, f"live probability {sigmoid(mean):.3f} < {min_live_probability:g}")
    return verdict(True)


class PassiveClassifier:
    """The liveness model named by its model card: a face and its surroundings -> live logit."""

    def __init__(self, model_path: str | Path, *, runtime: str = "auto", threads: int = 1) -> None:
        self.card, self.model = open_with_card(
            model_path, "liveness", runtime=runtime, threads=threads
        )
        if tuple(self.model.outputs[0].shape) != (1, 1):
            raise ModelError(
                f"{model_path}: output shape {self.model.outputs[0].shape} is not one logit (1, 1)"
            )
        self.sha256 = self.card.sha256

    def crop(self, frame: Frame, face: Face) -> np.ndarray:
        return align(frame, face, self.card.crop, self.card.input_size).rgb

    def logit(self, crop: np.ndarray) -> float:
        return float(self.model.run(normalize(crop, self.card))[0].reshape(-1)[0])

    def __call__(self, frame: Frame, face: Face) -> float:
        """The frame's live logit."""
        return self.logit(self.crop(frame, face))


def logit(p: float) -> float:
    """The inverse of sigmoid, for 0 < p < 1."""
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    if not math.isfinite(x):
        return math.nan if math.isnan(x) else float(x > 0)
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass(frozen=True)
class PlanarPair:
    motion: float  # median shift, face widths
    homography_inliers: float
    similarity_inliers: float

    @property
    def planar(self) -> bool:
        return (
            self.motion >= PLANAR_MIN_MOTION
            and self.homography_inliers >= PLANAR_MIN_HOMOGRAPHY_INLIERS
            and self.similarity_inliers < PLANAR_MAX_SIMILARITY_INLIERS
        )


def planar_pair(
    prev: np.ndarray, cur: np.ndarray, box: tuple[float, float, float, float]
) -> PlanarPair | None:
    """Track corners of the face (``box`` in ``prev``) from ``prev`` to ``cur`` (grey images).

    None when too few points track reliably (forward-backward checked): no evidence either way.
    """
    x0, y0, x1, y1 = box
    w = max(x1 - x0, 1.0)
    mask = np.zeros(prev.shape, np.uint8)
    cv2.rectangle(
        mask, (int(x0 + 0.1 * w), int(y0 + 0.1 * w)), (int(x1 - 0.1 * w), int(y1)), 255, -1
    )
    pts = cv2.goodFeaturesToTrack(prev, 80, 0.01, max(3.0, w / 20), mask=mask)
    if pts is None or len(pts) < _MIN_POINTS:
        return None
    nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, winSize=(21, 21), maxLevel=3)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, nxt, None, winSize=(21, 21), maxLevel=3)
    ok = (st[:, 0] == 1) & (st2[:, 0] == 1) & (np.linalg.norm(back[:, 0] - pts[:, 0], axis=1) < 1.0)
    p0, p1 = pts[ok, 0], nxt[ok, 0]
    if len(p0) < _MIN_POINTS:
        return None
    motion = float(np.median(np.linalg.norm(p1 - p0, axis=1)) / w)
    tol = PLANAR_RANSAC_PX * w
    _, h_in = cv2.findHomography(p0, p1, cv2.RANSAC, tol)
    _, s_in = cv2.estimateAffinePartial2D(p0, p1, method=cv2.RANSAC, ransacReprojThreshold=tol)
    return PlanarPair(
        motion,
        float(h_in.mean()) if h_in is not None else 0.0,
        float(s_in.mean()) if s_in is not None else 0.0,
    )


class LivenessChecker:
    """Per-frame liveness samples for tracked faces; keeps each track's previous frame."""

    def __init__(
        self, classifier: PassiveClassifier, *, planar_motion: bool = True, max_tracks: int = 8
    ) -> None:
        self.classifier = classifier
        self.planar_motion = planar_motion
        self.max_tracks = max_tracks
        self._prev: dict[int, tuple[float, np.ndarray, tuple[float, float, float, float]]] = {}
        self.seconds = 0.0  # time spent, for benchmarks
        self.calls = 0

    def sample(self, track_id: int, frame: Frame, face: Face, now: float) -> LivenessSample:
        t = time.perf_counter()
        z = self.classifier(frame, face)
        planar, motion = None, math.nan
        if self.planar_motion:
            grey = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY)
            prev = self._prev.get(track_id)
            if (
                prev is not None
                and 0 < now - prev[0] <= PLANAR_MAX_GAP_S
                and prev[1].shape == grey.shape
            ):
                pair = planar_pair(prev[1], grey, prev[2])
                if pair is not None:
                    planar, motion = pair.planar, pair.motion
            self._prev[track_id] = (now, grey, face.box)
            while len(self._prev) > self.max_tracks:  # oldest first: dicts keep insertion order
                self._prev.pop(next(iter(self._prev)))
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return LivenessSample(z, planar, motion)

    def forget(self, track_id: int) -> None:
        self._prev.pop(track_id, None)
