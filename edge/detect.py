"""Face detection with MediaPipe's BlazeFace (short or full range).

In: a Frame (RGB uint8).  Out: a list of Face (box, score, six keypoints) in the
frame's pixel coordinates, best first.

The model outputs raw SSD regressors (box plus 6 keypoints per anchor) and score
logits; anchor generation, decoding and MediaPipe's weighted NMS are done here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ModelError
from edge.runtime import Model
from edge.types import Face, Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorSpec:
    """A BlazeFace variant's geometry, from the model manifest."""

    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int


def make_anchors(spec: DetectorSpec) -> np.ndarray:
    """Anchor centres (N x 2, normalised x, y) as MediaPipe's SsdAnchorsCalculator makes them.

    BlazeFace uses fixed-size anchors, so only the centres matter; consecutive
    layers with the same stride share one grid with their anchors stacked.
    """
    centres = []
    i = 0
    while i < len(spec.strides):
        stride = spec.strides[i]
        j = i
        while j < len(spec.strides) and spec.strides[j] == stride:
            j += 1
        per_cell = spec.anchors_per_layer * (j - i)
        cells = int(np.ceil(spec.input_size / stride))
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(grid, per_cell, axis=0))
        i = j
    return np.concatenate(centres).astype(np.float32)


def decode(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regressors (N x 16) and logits (N) -> boxes (N x 4, x0 y0 x1 y1), keypoints (N x 6 x 2),
    scores (N); coordinates normalised to the input."""
    r = raw_boxes / float(input_size)
    cx = r[:, 0] + anchors[:, 0]
    cy = r[:, 1] + anchors[:, 1]
    w, h = r[:, 2], r[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = r[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -100.0, 100.0)))
    return boxes, kps, scores


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x0, y0, x1, y1) box with each of N boxes; 0 for empty ones."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(
    boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: each cluster becomes its score-weighted mean.

    Averaging the overlapping anchors steadies the box and keypoints from frame
    to frame, which plain NMS does not.
    """
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    remaining = np.arange(len(scores))
    out = []
    while remaining.size:
        top = remaining[0]
        overlap = iou(boxes[top], boxes[remaining])
        cluster = remaining[overlap > iou_threshold]
        if cluster.size == 0:
            cluster = remaining[:1]
        weights = scores[cluster][:, None]
        box = (boxes[cluster] * weights).sum(0) / weights.sum()
        kp = (kps[cluster] * weights[:, :, None]).sum(0) / weights.sum()
        out.append((box, kp, float(scores[top])))
        remaining = remaining[overlap <= iou_threshold]
    return out


def largest_first(faces: list[Face]) -> list[Face]:
    """Faces by box area, largest first: the largest is the one nearest the door, the one judged."""
    return sorted(faces, key=lambda f: -f.width * f.height)


class FaceDetector:
    """BlazeFace on a letterboxed copy of the frame."""

    def __init__(
        self,
        model_path: str | Path,
        spec: DetectorSpec,
        *,
        min_score: float = 0.5,
        iou_threshold: float = 0.3,
        min_face_px: float = 0.0,
        runtime: str = "auto",
        threads: int = 1,
    ) -> None:
        self.model = Model(model_path, runtime=runtime, threads=threads)
        self.spec = spec
        expected = (1, spec.input_size, spec.input_size, 3)
        if self.model.inputs[0].shape != expected:
            raise ModelError(
                f"{model_path}: detector input shape is {self.model.inputs[0].shape}, expected {expected}"
            )
        self.anchors = make_anchors(spec)
        n = len(self.anchors)
        shapes = sorted((o.shape for o in self.model.outputs), key=lambda s: s[-1])
        if shapes != [(1, n, 1), (1, n, 16)]:
            raise ModelError(
                f"{model_path}: detector outputs are {shapes}, expected {n} anchors x (16, 1)"
            )
        self._box_out = next(i for i, o in enumerate(self.model.outputs) if o.shape[-1] == 16)
        self.min_score = min_score
        self.iou_threshold = iou_threshold
        self.min_face_px = min_face_px

    def letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """Fit the frame into the square input, keeping its aspect; returns (input, scale, pad_x, pad_y)."""
        size = self.spec.input_size
        h, w = rgb.shape[:2]
        scale = size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        pad_x, pad_y = (size - nw) // 2, (size - nh) // 2
        canvas = np.zeros((size, size, 3), np.uint8)
        canvas[pad_y : pad_y + nh, pad_x : pad_x + nw] = small
        return canvas, scale, pad_x, pad_y

    def __call__(self, frame: Frame) -> list[Face]:
        size = self.spec.input_size
        canvas, scale, pad_x, pad_y = self.letterbox(frame.rgb)
        x = canvas.astype(np.float32)[None] / 127.5 - 1.0
        outs = self.model.run(x)
        raw_boxes = outs[self._box_out][0]
        raw_scores = outs[1 - self._box_out][0, :, 0]
        keep = raw_scores > np.log(self.min_score / (1.0 - self.min_score))  # logit of min_score
        if not keep.any():
            return []
        boxes, kps, scores = decode(raw_boxes[keep], raw_scores[keep], self.anchors[keep], size)
        faces = []
        for box, kp, score in weighted_nms(boxes, kps, scores, self.iou_threshold):
            # normalised letterbox coordinates -> frame pixels
            bx = (box.reshape(2, 2) * size - (pad_x, pad_y)) / scale
            kx = (kp * size - (pad_x, pad_y)) / scale
            face = Face(
                box=(float(bx[0, 0]), float(bx[0, 1]), float(bx[1, 0]), float(bx[1, 1])),
                score=score,
                keypoints=kx.astype(np.float32),
            )
            if min(face.width, face.height) >= self.min_face_px:
                faces.append(face)
        return faces
