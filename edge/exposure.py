"""Face-metered exposure: expose the face at the door, not the street behind it.

In, per frame: the detection-stream picture and the box of the face being
judged (or None).  Out: a new exposure compensation in stops for the camera
(picamera2's ``ExposureValue``), or None when it should stay as it is.

A door camera usually looks out at a bright street or through glass, so the
camera's own auto-exposure, which meters the whole picture, leaves a visitor
dark against the light -- or, with a lamp on them and a dark porch behind,
washed out.  Both hurt: the embedder was trained on well-exposed faces, and
the liveness classifier leans on exposure: over-exposure washes out the paper
texture it looks for (docs/liveness.md, "Exposure").  This keeps the
camera's auto-exposure running and biases it, stop by stop, until the face's
mean light sits at ``exposure.target_face_luma``: the median face of the
liveness model's training frames.

Metering is in linear light (the sRGB values decoded with gamma 2.2), as the
sensor sees it.  A face with highlights blown to white hides how far over it
is, so it is stepped down by at least a stop.  After each change the camera
needs a few frames to apply it (``exposure.settle_frames``); without a face for
``exposure.release_s`` the compensation returns to 0 (the camera's own
metering), ready for the next visitor.  The daemon (edge.service) and guided
enrollment (edge.enroll.from_camera) both run it, so templates are taken at
the exposure the door will judge with.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.config import ExposureConfig
from edge.errors import CameraError

log = logging.getLogger(__name__)

GAMMA = 2.2  # sRGB, near enough for metering
CLIPPED = 250  # 8-bit luma at or above this is blown highlight
BLOWN_FRACTION = 0.25  # this much of the face blown: its mean understates the light
MAX_STEP_STOPS = 2.0  # one change moves the exposure at most this far
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601


@dataclass(frozen=True)
class Metering:
    """How the face is exposed: ``luma`` is the linear-light mean as an sRGB level (0-1)."""

    luma: float
    clipped: float  # fraction of the face at white


def meter_face(rgb: np.ndarray, box: tuple[float, float, float, float]) -> Metering | None:
    """The face box's light; None when the box holds no pixel of the picture."""
    h, w = rgb.shape[:2]
    x0, y0 = max(int(math.floor(box[0])), 0), max(int(math.floor(box[1])), 0)
    x1, y1 = min(int(math.ceil(box[2])), w), min(int(math.ceil(box[3])), h)
    if x1 <= x0 or y1 <= y0:
        return None
    patch = rgb[y0:y1, x0:x1, :3]
    step = max(1, min(patch.shape[:2]) // 64)  # ~64 px a side is plenty to meter
    luma8 = patch[::step, ::step].astype(np.float32) @ _LUMA_WEIGHTS
    linear = float(((luma8 / 255.0) ** GAMMA).mean())
    return Metering(luma=linear ** (1.0 / GAMMA), clipped=float((luma8 >= CLIPPED).mean()))


def correction_stops(m: Metering, target_luma: float) -> float:
    """Stops of light to add (negative: remove) to bring the face to ``target_luma``."""
    measured = max(m.luma, 1.0 / 255.0) ** GAMMA
    stops = math.log2(target_luma**GAMMA / measured)
    if m.clipped >= BLOWN_FRACTION:
        stops = min(stops, -1.0)
    return stops


def expose(rgb: np.ndarray, stops: float) -> np.ndarray:
    """uint8 pictures as a camera exposing ``stops`` longer (negative: shorter) would take them.

    Linear light is scaled by 2**stops and clipped at white.  The device never
    calls this (its camera does it); the simulations do: tests' fake camera
    and ``tools/liveness/rotate --exposure``.
    """
    if not stops:
        return rgb
    light = (rgb.astype(np.float32) / 255.0) ** GAMMA * 2.0**stops
    return np.rint(np.clip(light, 0.0, 1.0) ** (1.0 / GAMMA) * 255.0).astype(np.uint8)


class FaceExposure:
    """The closed loop: one instance per camera, fed every frame."""

    def __init__(self, cfg: ExposureConfig) -> None:
        self.cfg = cfg
        self.compensation = 0.0  # stops, what the camera was last told
        self._wait = 0  # frames still to skip while a change takes effect
        self._settling = False
        self._last_face: float | None = None
        self._at_limit = False

    @property
    def settling(self) -> bool:
        """The last frame was taken before a change could take effect: judge none until this is False."""
        return self._settling

    def update(
        self, rgb: np.ndarray, box: tuple[float, float, float, float] | None, now: float
    ) -> float | None:
        """The compensation to send now, or None to leave the camera as it is."""
        if box is None:
            self._settling = self._wait > 0
            if self.compensation and (
                self._last_face is None or now - self._last_face >= self.cfg.release_s
            ):
                log.debug(
                    "no face for %.1f s: exposure back to the camera's own metering",
                    self.cfg.release_s,
                )
                return self._set(0.0)
            return None
        self._last_face = now
        if self._wait > 0:
            self._wait -= 1
            self._settling = True
            return None
        self._settling = False
        m = meter_face(rgb, box)
        if m is None:
            return None
        error = correction_stops(m, self.cfg.target_face_luma)
        if abs(error) < self.cfg.tolerance_stops:
            return None
        step = max(-MAX_STEP_STOPS, min(MAX_STEP_STOPS, error))
        limit = self.cfg.max_stops
        wanted = max(-limit, min(limit, self.compensation + step))
        if abs(wanted - self.compensation) < 1e-6:
            if not self._at_limit:
                self._at_limit = True
                log.info(
                    "face exposure: at the %+.1f-stop limit, the face is still %+.1f stops off its target",
                    wanted,
                    error,
                )
            return None
        log.debug(
            "face luma %.2f (%.0f%% blown): exposure %+.2f -> %+.2f stops",
            m.luma,
            100 * m.clipped,
            self.compensation,
            wanted,
        )
        return self._set(wanted)

    def _set(self, stops: float) -> float:
        self.compensation = stops
        self._wait = self.cfg.settle_frames
        self._settling = True  # this frame too was taken at the old exposure
        self._at_limit = False
        return stops


def for_camera(cfg: ExposureConfig, camera: Any) -> FaceExposure | None:
    """The loop for ``camera``; None when metering is off or the camera cannot set its exposure (said once)."""
    if not cfg.face_metering:
        return None
    if not getattr(camera, "controls_exposure", False):
        log.info(
            "exposure.face_metering: %s cannot set its exposure; it keeps its own metering",
            getattr(camera, "name", "the camera"),
        )
        return None
    return FaceExposure(cfg)


def meter(
    loop: FaceExposure,
    camera: Any,
    rgb: np.ndarray,
    box: tuple[float, float, float, float] | None,
    now: float,
) -> FaceExposure | None:
    """One step of the loop, sent to the camera; None (metering off) once the camera refuses it.

    A refusal costs the exposure, never the door: the caller carries on with
    the camera's own metering.
    """
    stops = loop.update(rgb, box, now)
    if stops is not None:
        try:
            camera.set_exposure_compensation(stops)
        except CameraError as exc:
            log.warning("%s; face-metered exposure is off", exc)
            return None
    return loop
