"""A five-point landmark pass on each detected face (YuNet, run by OpenCV).

In: a Frame and a Face from the detector.  Out: the same Face with
``landmarks`` set (eyes, nose tip and both mouth corners, frame pixels), or
with ``landmarks`` None when the pass does not find that face.

BlazeFace gives eye centres, the nose tip and one mouth point; an ArcFace-style
template has both mouth corners, and YuNet's points put SFace's crops closer to
the ones it was trained on (docs/recognition.md, "How the landmark source was chosen").  YuNet runs only on a square
region around the detector's box, scaled so the face is ``face_px`` wide, so it
costs a few milliseconds whatever the camera's resolution.  It is an ONNX
model with a dynamic input size, which OpenCV's ``FaceDetectorYN`` runs as it
is; the file comes from a PyPI wheel, sha256-checked like every other model.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge.align import padded_crop
from edge.errors import ModelError
from edge.types import Face, Frame, Landmarks

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _opencv_quiet() -> Iterator[None]:
    """OpenCV's own log at ERROR for the block (its warnings would be extra stderr lines)."""
    logging_ = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_ is None:
        yield
        return
    old = logging_.getLogLevel()
    logging_.setLogLevel(logging_.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging_.setLogLevel(old)


# YuNet's five points, in its output order ("right" is the subject's right, on the image's left).
YUNET_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_right", "mouth_left")


class YuNetLandmarks:
    """Refines a detected face's landmarks with YuNet on the region around its box."""

    names = YUNET_NAMES

    def __init__(
        self,
        path: str | Path,
        *,
        face_px: int = 64,
        region: float = 2.0,
        min_score: float = 0.5,
        source: str = "yunet",
    ) -> None:
        if not 16 <= face_px <= 512 or not 1.2 <= region <= 4.0:
            raise ModelError(
                f"{path}: landmark pass: face_px 16-512 and region 1.2-4.0, got {face_px} and {region}"
            )
        side = int(round(face_px * region))
        try:
            with (
                _opencv_quiet()
            ):  # newer OpenCV warns on stderr that its new DNN engine ignores targets
                self._net = cv2.FaceDetectorYN.create(
                    str(path), "", (side, side), min_score, 0.3, 20
                )
        except cv2.error as exc:
            first = (str(exc).strip().splitlines() or ["unreadable"])[-1]
            raise ModelError(f"{path}: OpenCV cannot load this landmark model: {first}") from None
        self.face_px = face_px
        self.region = region
        self.source = source
        self.misses = 0

    def __call__(self, frame: Frame, face: Face) -> Face:
        """``face`` with its landmarks, or with ``landmarks=None`` if YuNet does not find it."""
        points = self._points(frame.rgb, face)
        if points is None:
            self.misses += 1
            return Face(face.box, face.score, face.keypoints, None)
        return Face(
            face.box, face.score, face.keypoints, Landmarks(YUNET_NAMES, points, self.source)
        )

    def _points(self, rgb: np.ndarray, face: Face) -> np.ndarray | None:
        x0, y0, x1, y1 = face.box
        width = max(x1 - x0, y1 - y0, 1.0)
        k = self.face_px / width  # frame pixels -> region pixels
        half = width * self.region / 2.0
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        side = int(round(2 * half * k))
        if k < 1.0:
            # INTER_AREA is only honoured by resize: cut the region (black outside the frame), then shrink it.
            ix0, iy0 = int(np.floor(cx - half)), int(np.floor(cy - half))
            ix1, iy1 = int(np.ceil(cx + half)), int(np.ceil(cy + half))
            cut = padded_crop(rgb, ix0, iy0, ix1, iy1, border=cv2.BORDER_CONSTANT)
            roi = cv2.resize(cut, (side, side), interpolation=cv2.INTER_AREA)
            scale = side / (ix1 - ix0)
            m = np.array([[scale, 0.0, -ix0 * scale], [0.0, scale, -iy0 * scale]])
        else:
            # frame -> region: scale by k about the region's corner; out-of-frame parts are black.
            m = np.array([[k, 0.0, -(cx - half) * k], [0.0, k, -(cy - half) * k]])
            roi = cv2.warpAffine(
                rgb, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
        bgr = np.ascontiguousarray(roi[..., ::-1])
        self._net.setInputSize((side, side))
        _, found = self._net.detect(bgr)
        if found is None or len(found) == 0:
            return None
        centre = side / 2.0
        # The face the detector saw is the one nearest the region's centre.
        best = min(
            found, key=lambda r: (r[0] + r[2] / 2 - centre) ** 2 + (r[1] + r[3] / 2 - centre) ** 2
        )
        bx, by = best[0] + best[2] / 2, best[1] + best[3] / 2
        if abs(bx - centre) > self.face_px / 2 or abs(by - centre) > self.face_px / 2:
            return None  # another face in the region, not this one
        pts = best[4:14].reshape(5, 2).astype(np.float64)
        inv = cv2.invertAffineTransform(m)
        return (pts @ inv[:, :2].T + inv[:, 2]).astype(np.float32)
