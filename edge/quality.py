"""Face quality measures: is this crop good enough to decide on?

In: an AlignedFace.  Out: a Quality (face size in frame pixels, sharpness,
brightness, contrast, and head pose estimated from BlazeFace's keypoints).
The thresholds that turn these into gates live in the decision policy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from edge.types import AlignedFace, Face


@dataclass(frozen=True)
class Quality:
    face_px: float  # the shorter side of the detector's box, in frame pixels
    sharpness: float  # variance of the Laplacian of the grey crop (higher = sharper)
    brightness: float  # mean luma of the crop, 0-255
    contrast: float  # standard deviation of luma
    yaw: float  # degrees, + = the subject turned to their left
    pitch: float  # degrees, + = looking down (rough: from the nose between eyes and mouth)
    roll: float  # degrees, + = head tilted clockwise in the image
    landmarks: float = 1.0  # 1: the crop's landmarks were found as its recipe asks; 0: a stand-in crop (never decides)

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 3) for k, v in asdict(self).items()}


def pose(face: Face) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from the eyes, nose and mouth.

    A frontal face has its nose tip midway between the eyes horizontally and
    about 45% of the way from the eye line to the mouth; how far it strays,
    relative to the face's size, gives the turn.  Good to ~10 degrees, which
    is all a gate needs.
    """
    re, le = face.keypoint("right_eye"), face.keypoint("left_eye")
    nose, mouth = face.keypoint("nose_tip"), face.keypoint("mouth")
    dx, dy = le - re
    roll = math.degrees(math.atan2(float(dy), float(dx)))
    eye_dist = max(float(math.hypot(dx, dy)), 1e-6)
    c, s = math.cos(-math.radians(roll)), math.sin(-math.radians(roll))
    rot = np.array([[c, -s], [s, c]], np.float32)
    eyes = (re + le) / 2
    n = rot @ (nose - eyes)
    m = rot @ (mouth - eyes)
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, 2.0 * float(n[0]) / eye_dist))))
    down = max(float(m[1]), 1e-6)
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, (float(n[1]) / down - 0.45) * 2.0))))
    return yaw, pitch, roll


def measure(aligned: AlignedFace, *, landmarks: bool = True) -> Quality:
    grey = cv2.cvtColor(aligned.rgb, cv2.COLOR_RGB2GRAY)
    sharp = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    yaw, pitch, roll = pose(aligned.face)
    return Quality(
        face_px=float(min(aligned.face.width, aligned.face.height)),
        sharpness=sharp,
        brightness=float(grey.mean()),
        contrast=float(grey.std()),
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        landmarks=1.0 if landmarks else 0.0,
    )
