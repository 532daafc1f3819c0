"""The rigid-planar-motion veto: a printed photo moved before the camera moves as a plane.

In: a track's previous and current grey frames and the face's box.  Out: whether the face
moved as a rigid tilted plane (True), did not (False), or could not be told (None).

A homography explains every tracked point of a tilted or swung photo while a similarity
transform (shift, scale, in-plane turn) does not.  A live head that turns shows parallax (nose
against cheeks), which no homography explains; a live head that only shifts or walks closer
is a similarity, so it is not flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edge.types import Face, Frame

# In face widths, so they hold at any distance from the camera; set on synthetic planes
# (tests/edge/test_liveness.py), so a live head turning or walking closer is never a plane.
PLANAR_MIN_MOTION = 0.02  # median feature shift below this: too little motion to tell
PLANAR_MIN_HOMOGRAPHY_INLIERS = 0.95  # a plane: nearly every point fits one homography ...
PLANAR_MAX_SIMILARITY_INLIERS = 0.80  # ... that is not just a shift/zoom/in-plane turn
PLANAR_RANSAC_PX = 0.01  # inlier distance, in face widths
PLANAR_MAX_GAP_S = 0.5  # frames further apart than this are not compared
_MIN_POINTS = 12


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
    lk: dict[str, Any] = {"winSize": (21, 21), "maxLevel": 3}
    nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, np.empty_like(pts), **lk)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, nxt, np.empty_like(nxt), **lk)
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


class PlanarMotion:
    """The veto cue: keeps each track's previous grey frame and tests the pair for a rigid plane."""

    def __init__(self, *, max_tracks: int = 8) -> None:
        self.max_tracks = max_tracks
        self._prev: dict[int, tuple[float, np.ndarray, tuple[float, float, float, float]]] = {}

    def check(self, track_id: int, frame: Frame, face: Face, now: float) -> bool | None:
        grey = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY)
        prev = self._prev.get(track_id)
        planar = None
        if (
            prev is not None
            and 0 < now - prev[0] <= PLANAR_MAX_GAP_S
            and prev[1].shape == grey.shape
        ):
            pair = planar_pair(prev[1], grey, prev[2])
            if pair is not None:
                planar = pair.planar
        self._prev[track_id] = (now, grey, face.box)
        while len(self._prev) > self.max_tracks:  # oldest first: dicts keep insertion order
            self._prev.pop(next(iter(self._prev)))
        return planar

    def forget(self, track_id: int) -> None:
        self._prev.pop(track_id, None)
