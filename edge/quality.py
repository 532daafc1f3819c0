"""Face quality measures: is this crop good enough to decide on?

In: an AlignedFace.  Out: a Quality (face size in frame pixels, sharpness,
brightness, contrast, and head pose estimated from BlazeFace's keypoints).
GATES turns them into pass/fail with the thresholds of PolicyConfig: the one definition
the door (edge.policy) and enrollment (edge.enroll, stricter) both use.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edge.types import AlignedFace, Face, Reason

if TYPE_CHECKING:
    from edge.config import PolicyConfig


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


# --------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class Gate:
    """One quality gate: a measure, its limit in PolicyConfig, and the advice when a face fails it.

    ``kind`` "min": the measure must be at least the limit (times ``strict`` when
    ``scaled``); "max_abs": its magnitude at most the limit (divided by ``strict``).
    Written as ``not (x >= limit)`` so that NaN fails.
    """

    measure: str  # a Quality field
    limit: str  # a PolicyConfig field, or "" for a fixed limit of 1 (landmarks found)
    kind: str
    reason: Reason
    advice: str  # formatted with value= and limit=
    scaled: bool = True

    def bound(self, p: PolicyConfig, strict: float) -> float:
        base = float(getattr(p, self.limit)) if self.limit else 1.0
        if not self.scaled:
            return base
        return base * strict if self.kind == "min" else base / strict

    def passes(self, q: Quality, p: PolicyConfig, strict: float = 1.0) -> bool:
        v = float(getattr(q, self.measure))
        b = self.bound(p, strict)
        return v >= b if self.kind == "min" else abs(v) <= b


# Brightness first: a dark crop is also a blurry one, and "too dark" is the cause a user (or
# installer) can act on.  A stand-in crop (the landmark pass missed) never votes.
GATES: tuple[Gate, ...] = (
    Gate("brightness", "min_brightness", "min", Reason.TOO_DARK,
         "too dark (brightness {value:.0f} < {limit:.0f}): add light", scaled=False),
    Gate("face_px", "min_face_px", "min", Reason.LOW_QUALITY,
         "face too small ({value:.0f} px < {limit:.0f}): come closer"),
    Gate("sharpness", "min_sharpness", "min", Reason.LOW_QUALITY,
         "blurry (sharpness {value:.0f} < {limit:.0f}): hold still"),
    Gate("yaw", "max_yaw_deg", "max_abs", Reason.LOW_QUALITY,
         "turned sideways (yaw {value:+.0f}°): look at the camera"),
    Gate("pitch", "max_pitch_deg", "max_abs", Reason.LOW_QUALITY,
         "head tilted up/down (pitch {value:+.0f}°): look straight ahead"),
    Gate("roll", "max_roll_deg", "max_abs", Reason.LOW_QUALITY,
         "head tilted sideways (roll {value:+.0f}°): hold your head level"),
    Gate("landmarks", "", "min", Reason.LOW_QUALITY,
         "eyes, nose and mouth not all found: face the camera, nothing covering your face",
         scaled=False),
)  # fmt: skip


def failed_gates(q: Quality, p: PolicyConfig, strict: float = 1.0) -> list[Gate]:
    """The gates ``q`` fails, in GATES order; ``strict`` > 1 asks for a better face (enrollment)."""
    return [g for g in GATES if not g.passes(q, p, strict)]


def advice(q: Quality, p: PolicyConfig, strict: float = 1.0) -> list[str]:
    """Each failed gate as advice a person at the camera can follow."""
    return [
        g.advice.format(value=float(getattr(q, g.measure)), limit=g.bound(p, strict))
        for g in failed_gates(q, p, strict)
    ]
