"""The values passed between pipeline stages, all frozen dataclasses.

Frame -> Face -> AlignedFace -> Embedding (-> Match -> Decision, later stages).
Arrays are numpy; coordinates are pixels of the Frame they came from, (x, y).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# BlazeFace's six keypoints, in its output order.  "Right" is the subject's right,
# which appears on the left of an unmirrored image.
KEYPOINT_NAMES = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth",
    "right_ear",
    "left_ear",
)


@dataclass(frozen=True, eq=False)
class Frame:
    """One RGB image, uint8 HxWx3, and where it came from."""

    rgb: np.ndarray
    source: str = ""
    index: int = 0
    timestamp: float = 0.0

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


@dataclass(frozen=True, eq=False)
class Face:
    """A detected face: box (x0, y0, x1, y1), detector score, six keypoints (6x2)."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray = field(repr=False)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def keypoint(self, name: str) -> np.ndarray:
        return self.keypoints[KEYPOINT_NAMES.index(name)]


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """The embedder's input crop: uint8 RGB, the model's input size, and its origin."""

    rgb: np.ndarray = field(repr=False)
    face: Face
    crop_box: tuple[float, float, float, float]


@dataclass(frozen=True, eq=False)
class Embedding:
    """An L2-normalised face embedding and the sha256 of the model that made it."""

    vector: np.ndarray = field(repr=False)
    model_sha256: str

    def cosine(self, other: Embedding) -> float:
        """Cosine similarity; both vectors are unit length."""
        return float(np.dot(self.vector, other.vector))
