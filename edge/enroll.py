"""Enrollment: good face images or camera frames -> templates in the gallery.

In: image files, or frames from the camera (guided: each rejected frame says
why), and the config's quality gates.  Out: the person's embeddings added to
the gallery, saved atomically with owner-only permissions.

Enrollment is stricter than recognition: a template from a blurry or turned
face would weaken every later decision for that person.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.config import Config, PolicyConfig
from edge.embed import Embedder
from edge.errors import FacegateError, NoFaceError
from edge.exposure import FaceExposure, meter
from edge.gallery import Gallery, gallery_writer
from edge.images import read_image
from edge.pipeline import FacePipeline, FaceResult
from edge.quality import Quality, advice
from edge.types import Embedding, Face, Frame

log = logging.getLogger(__name__)

# Enrollment asks for a better face than the door does.
ENROLL_STRICTNESS = 1.25


@dataclass(frozen=True)
class Attempt:
    source: str
    accepted: bool
    reason: str  # "ok", or why the image/frame was not used


def problems(q: Quality, p: PolicyConfig, strict: float = ENROLL_STRICTNESS) -> list[str]:
    """Each failed gate (the door's, made ``strict`` times stricter) as advice a person can follow."""
    return advice(q, p, strict)


def judge(
    pipeline: FacePipeline, frame: Frame, policy: PolicyConfig, faces: list[Face] | None = None
) -> tuple[FaceResult | None, str]:
    """The frame's one face, embedded, if it passes the (stricter) enrollment gates; else why not."""
    faces = pipeline.detect(frame) if faces is None else faces
    if not faces:
        return None, "no face found"
    if len(faces) > 1:
        return None, f"{len(faces)} faces: only the person enrolling may be in view"
    result = pipeline.process(frame, faces[0])
    bad = problems(result.quality, policy)
    return (None, "; ".join(bad)) if bad else (result, "ok")


def from_images(
    pipeline: FacePipeline,
    paths: Iterable[Path],
    policy: PolicyConfig,
    report: Callable[[Attempt], None] = lambda a: None,
) -> list[tuple[Embedding, str]]:
    """Good faces from image files; every rejected file is reported with its reason."""
    good = []
    for path in paths:
        try:
            frame = read_image(path)
        except FacegateError as exc:
            report(Attempt(str(path), False, str(exc)))
            continue
        result, why = judge(pipeline, frame, policy)
        report(Attempt(str(path), result is not None, why))
        if result is not None:
            good.append((result.embedding, str(path)))
    return good


def from_camera(
    pipeline: FacePipeline,
    camera,
    policy: PolicyConfig,
    *,
    count: int,
    timeout_s: float = 60.0,
    min_interval_s: float = 0.3,
    clock: Callable[[], float] = time.monotonic,
    exposure: FaceExposure | None = None,
    report: Callable[[Attempt], None] = lambda a: None,
) -> list[tuple[Embedding, str]]:
    """Guided capture: keep the good frames (spaced in time), say why others are refused.

    With ``exposure`` the camera is metered on the face as the daemon will
    meter it, and no frame is kept while a change is taking effect: the
    templates are taken at the exposure the door will see.
    """
    good: list[tuple[Embedding, str]] = []
    start = last = clock() - min_interval_s
    last_reason = None
    camera.open()
    try:
        while len(good) < count:
            if clock() - start > timeout_s:
                raise NoFaceError(
                    f"enrollment timed out after {timeout_s:.0f} s with {len(good)} of {count} good frames"
                )
            frame = camera.read()
            faces = pipeline.detect(frame)
            if exposure is not None:
                exposure = meter(
                    exposure, camera, frame.rgb, faces[0].box if len(faces) == 1 else None, clock()
                )
                if exposure is not None and exposure.settling:
                    continue
            result, why = judge(pipeline, frame, policy, faces)
            if result is None:
                if why != last_reason:  # say each problem once, not every frame
                    report(Attempt(frame.source or f"frame {frame.index}", False, why))
                    last_reason = why
                continue
            if clock() - last < min_interval_s:
                continue
            last, last_reason = clock(), None
            good.append((result.embedding, getattr(camera, "name", "camera")))
            report(
                Attempt(frame.source or f"frame {frame.index}", True, f"ok ({len(good)}/{count})")
            )
    finally:
        camera.close()
    return good


def add_to_gallery(
    config: Config, name: str, good: list[tuple[Embedding, str]], embedder: Embedder
) -> Gallery:
    """Add templates under ``name`` and save; warn if they look like someone already enrolled.

    The gallery is bound to ``embedder``'s weights and preprocessing; an existing
    gallery made with another is refused, not mixed.
    """
    if not good:
        raise NoFaceError(f"{name}: no usable face; nothing enrolled")
    path = Path(config.gallery.path)
    with gallery_writer(path):  # load, add and save as one step: a concurrent writer waits
        return _add_and_save(config, name, good, embedder, path)


def _add_and_save(
    config: Config, name: str, good: list[tuple[Embedding, str]], embedder: Embedder, path: Path
) -> Gallery:
    size = embedder.card.embedding_size
    if path.exists():
        gallery = Gallery.load(
            path, model_sha256=embedder.sha256, preprocessing=embedder.preprocessing
        )
    else:
        gallery = Gallery.empty(embedder.sha256, size, embedder.preprocessing)
    matrix, labels = gallery.matrix() if gallery.names() else (np.zeros((0, size), np.float32), [])
    if len(labels):
        sims = np.stack([e.vector for e, _ in good]) @ matrix.T
        for other in set(labels) - {name}:
            cols = [i for i, label in enumerate(labels) if label == other]
            best = float(sims[:, cols].max())
            if best >= config.match.min_cosine_similarity:
                log.warning(
                    "%s looks like %s (cosine %.3f >= %.3f): check this is not the same person twice",
                    name,
                    other,
                    best,
                    config.match.min_cosine_similarity,
                )
    gallery.add(
        name,
        [e for e, _ in good],
        [s for _, s in good],
        max_templates=config.gallery.max_templates_per_person,
    )
    gallery.save(path)
    return gallery
