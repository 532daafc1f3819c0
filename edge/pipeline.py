"""The on-device face pipeline: Frame -> [FaceResult].

detect (edge.detect) -> landmarks (edge.landmarks, when the embedder's crop
needs points the detector does not give) -> align (edge.align) -> quality
(edge.quality) -> embed (edge.embed).  Built from a Config by
:func:`build_pipeline`, which refuses an embedder whose crop asks for landmarks
that the configured detector and landmark pass cannot give; each stage can
also be used on its own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from edge.align import align
from edge.cards import CropRecipe
from edge.config import Config
from edge.detect import DetectorSpec, FaceDetector, largest_first
from edge.embed import Embedder
from edge.errors import ModelError
from edge.landmarks import YuNetLandmarks
from edge.manifest import load_manifest, verify_file
from edge.quality import Quality, measure
from edge.types import KEYPOINT_NAMES, AlignedFace, Embedding, Face, Frame

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


class Cropper:
    """Frame, Face -> (AlignedFace, landmarks found) as a card's crop recipe asks.

    Runs the landmark pass first when the recipe names points the detector does
    not give, and refuses (ModelError, one line) a recipe that asks for points
    neither gives.  ``found`` is False when the pass missed the face: the crop is
    then a stand-in (edge.align.template_points) that must not decide anything.
    """

    def __init__(
        self,
        recipe: CropRecipe,
        size: tuple[int, int],
        *,
        landmarker: YuNetLandmarks | None = None,
        where: str = "embedder",
    ) -> None:
        self.recipe, self.size = recipe, size
        missing = landmarks_beyond_detector(recipe)
        if missing and (landmarker is None or set(missing) - set(landmarker.names)):
            raise ModelError(
                f"{where}: crop needs landmarks {', '.join(missing)}, which the detector does not give; "
                "set models.landmarker: yunet"
            )
        # Run the landmark pass only when the crop needs a point the detector lacks.
        self.landmarker = landmarker if missing else None

    def __call__(self, frame: Frame, face: Face) -> tuple[AlignedFace, bool]:
        src, src_face = _crop_source(frame, face)
        found = True
        if self.landmarker is not None:
            src_face = self.landmarker(src, src_face)
            found = src_face.landmarks is not None
        return align(src, src_face, self.recipe, self.size), found


class FacePipeline:
    def __init__(
        self,
        detector: FaceDetector,
        embedder: Embedder,
        *,
        landmarker: YuNetLandmarks | None = None,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.recipe = embedder.card.crop
        self.cropper = Cropper(
            self.recipe, embedder.input_size, landmarker=landmarker, where=str(embedder.card.path)
        )
        self.times = StageTimes()

    def detect(self, frame: Frame) -> list[Face]:
        """Faces in the frame, largest first (the one nearest the door)."""
        t = time.perf_counter()
        faces = largest_first(self.detector(frame))
        self.times.detect += time.perf_counter() - t
        return faces

    def process(self, frame: Frame, face: Face) -> FaceResult:
        t0 = time.perf_counter()
        aligned, found = self.cropper(frame, face)
        # Quality is judged on the detection-stream face (its px are what the gates mean).
        quality = measure(AlignedFace(aligned.rgb, face, aligned.crop_box), landmarks=found)
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
    scaled = Face(
        box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy),
        score=face.score,
        keypoints=face.keypoints * (sx, sy),
    )
    return Frame(
        rgb=frame.hires, source=frame.source, index=frame.index, timestamp=frame.timestamp
    ), scaled


def build_detector(config: Config) -> FaceDetector:
    entry = load_manifest()[config.models.detector]
    path = config.model_dir() / entry.filename
    verify_file(path, entry.sha256)
    spec = DetectorSpec(
        int(entry.spec["input_size"]),
        tuple(entry.spec["strides"]),
        int(entry.spec["anchors_per_layer"]),
    )
    return FaceDetector(
        path,
        spec,
        min_score=config.detect.min_score,
        iou_threshold=config.detect.iou_threshold,
        min_face_px=config.detect.min_face_px,
        runtime=config.runtime.backend,
        threads=config.runtime.threads,
    )


def build_landmarker(config: Config) -> YuNetLandmarks | None:
    """The landmark pass of ``models.landmarker`` (sha256-checked), or None when it is null."""
    if config.models.landmarker is None:
        return None
    entry = load_manifest()[config.models.landmarker]
    path = config.model_dir() / entry.filename
    verify_file(path, entry.sha256)
    spec = entry.spec
    return YuNetLandmarks(
        path,
        face_px=int(spec.get("face_px", 64)),
        region=float(spec.get("region", 2.0)),
        min_score=float(spec.get("min_score", 0.5)),
        source=entry.name,
    )


def build_pipeline(config: Config, *, embedder_path: str | Path | None = None) -> FacePipeline:
    embedder = Embedder(
        embedder_path or config.embedder_path(),
        runtime=config.runtime.backend,
        threads=config.runtime.threads,
    )
    return FacePipeline(
        build_detector(config), embedder, landmarker=landmarker_for(config, embedder.card.crop)
    )


def landmarks_beyond_detector(recipe: CropRecipe) -> list[str]:
    """The landmarks ``recipe`` needs that the detector's keypoints do not give (sorted; empty: no pass needed)."""
    return sorted(set(recipe.landmarks) - set(KEYPOINT_NAMES))


def landmarker_for(config: Config, recipe: CropRecipe) -> YuNetLandmarks | None:
    """The configured landmark pass if ``recipe`` needs points the detector lacks, else None (not loaded)."""
    return build_landmarker(config) if landmarks_beyond_detector(recipe) else None


def build_cropper(
    config: Config, recipe: CropRecipe, size: tuple[int, int], *, where: str = "crop"
) -> Cropper:
    """The device's crop for ``recipe`` (tools/convert and tools/liveness crop through this)."""
    return Cropper(recipe, size, landmarker=landmarker_for(config, recipe), where=where)
