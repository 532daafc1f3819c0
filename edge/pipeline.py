"""The on-device face pipeline: Frame -> [FaceResult].

detect (edge.detect) -> align (edge.align) -> quality (edge.quality) -> embed
(edge.embed).  Built from a Config by :func:`build_pipeline`; each stage can
also be used on its own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge.align import align
from edge.config import Config
from edge.detect import DetectorSpec, FaceDetector, largest_first
from edge.embed import Embedder
from edge.models import load_manifest, verify_file
from edge.quality import Quality, measure
from edge.types import AlignedFace, Embedding, Face, Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class FaceResult:
    face: Face
    aligned: AlignedFace
    quality: Quality
    embedding: Embedding


@dataclass
class StageTimes:
    """Seconds spent per stage, summed over calls (for benchmarks and logs)."""

    detect: float = 0.0
    align: float = 0.0
    embed: float = 0.0
    calls: int = 0
    last: dict[str, float] = field(default_factory=dict)


class FacePipeline:
    def __init__(self, detector: FaceDetector, embedder: Embedder) -> None:
        self.detector = detector
        self.embedder = embedder
        self.recipe = embedder.card.crop
        self.times = StageTimes()

    def detect(self, frame: Frame) -> list[Face]:
        """Faces in the frame, largest first (the one nearest the door)."""
        t = time.perf_counter()
        faces = largest_first(self.detector(frame))
        self.times.detect += time.perf_counter() - t
        return faces

    def process(self, frame: Frame, face: Face) -> FaceResult:
        t0 = time.perf_counter()
        aligned = align(*_crop_source(frame, face), self.recipe, self.embedder.input_size)
        # Quality is judged on the detection-stream face (its px are what the gates mean).
        quality = measure(AlignedFace(aligned.rgb, face, aligned.crop_box))
        t1 = time.perf_counter()
        embedding = self.embedder(aligned)
        t2 = time.perf_counter()
        self.times.align += t1 - t0
        self.times.embed += t2 - t1
        self.times.calls += 1
        return FaceResult(face, aligned, quality, embedding)

    def __call__(self, frame: Frame, *, max_faces: int | None = None) -> list[FaceResult]:
        faces = self.detect(frame)
        return [self.process(frame, f) for f in faces[:max_faces]]


def _crop_source(frame: Frame, face: Face) -> tuple[Frame, Face]:
    """Crop from the high-resolution stream when the camera has one (picamera2's main)."""
    if frame.hires is None:
        return frame, face
    sy = frame.hires.shape[0] / frame.height
    sx = frame.hires.shape[1] / frame.width
    x0, y0, x1, y1 = face.box
    scaled = Face(box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy), score=face.score, keypoints=face.keypoints * (sx, sy))
    return Frame(rgb=frame.hires, source=frame.source, index=frame.index, timestamp=frame.timestamp), scaled


def build_detector(config: Config) -> FaceDetector:
    entry = load_manifest()[config.models.detector]
    path = config.model_dir() / entry.filename
    verify_file(path, entry.sha256)
    spec = DetectorSpec(int(entry.spec["input_size"]), tuple(entry.spec["strides"]), int(entry.spec["anchors_per_layer"]))
    return FaceDetector(
        path,
        spec,
        min_score=config.detect.min_score,
        iou_threshold=config.detect.iou_threshold,
        min_face_px=config.detect.min_face_px,
        runtime=config.runtime.backend,
        threads=config.runtime.threads,
    )


def build_pipeline(config: Config, *, embedder_path: str | Path | None = None) -> FacePipeline:
    embedder = Embedder(
        embedder_path or config.embedder_path(), runtime=config.runtime.backend, threads=config.runtime.threads
    )
    return FacePipeline(build_detector(config), embedder)
