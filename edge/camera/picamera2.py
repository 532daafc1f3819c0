"""The Raspberry Pi camera through picamera2 (imported when the camera is opened)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from edge.camera.base import CameraBase, CameraError
from edge.text import first_line
from edge.types import Frame

if TYPE_CHECKING:
    from edge.config import CameraConfig

log = logging.getLogger(__name__)


PICAMERA2_MISSING = (
    "picamera2 is not installed: on Raspberry Pi OS, apt install python3-picamera2 "
    "and create the venv with --system-site-packages"
)


class Picamera2Camera(CameraBase):
    """The Raspberry Pi camera through picamera2, with two streams from one capture.

    ``lores`` (detect_size, YUV420) becomes Frame.rgb for the detector; ``main``
    (size, "RGB888") becomes Frame.hires for cropping faces.  picamera2 is
    imported in open(), so the module loads where it is not installed.
    Exposure compensation is libcamera's ``ExposureValue`` (stops, applied to
    the auto-exposure's target), clamped to the range the camera reports.
    """

    controls_exposure = True
    reconnects = True

    def __init__(
        self,
        *,
        size: tuple[int, int] = (1280, 960),
        detect_size: tuple[int, int] = (640, 480),
        fps: float,
        picamera2_factory: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = "picamera2"
        self.size = (int(size[0]), int(size[1]))
        self.detect_size = (int(detect_size[0]), int(detect_size[1]))
        self.fps = fps
        self._factory = picamera2_factory
        self._clock = clock
        self._cam: Any = None
        self._index = 0

    @classmethod
    def from_config(cls, cfg: CameraConfig, **overrides: Any) -> Picamera2Camera:
        kwargs: dict[str, Any] = {
            "size": (cfg.width, cfg.height),
            "detect_size": (cfg.detect_width, cfg.detect_height),
            "fps": cfg.fps,
        }
        return cls(**{**kwargs, **overrides})

    def open(self) -> None:
        if self._cam is not None:
            return
        factory = self._factory
        if factory is None:
            try:
                from picamera2 import Picamera2
            except ImportError as exc:
                log.debug("importing picamera2 failed: %s", exc)
                raise CameraError(PICAMERA2_MISSING) from None
            factory = Picamera2
        cam = None
        try:
            cam = factory()  # Picamera2() opens the camera itself
            config = cam.create_preview_configuration(
                main={"size": self.size, "format": "RGB888"},
                lores={"size": self.detect_size, "format": "YUV420"},
                controls={"FrameRate": self.fps},
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:
            if cam is not None:
                self._release(cam)  # a half-open camera stays "busy" for the next open
            raise CameraError(
                f"{self.name}: cannot start the camera (connected and enabled?): {first_line(exc, typed=True)}"
            ) from exc
        self._cam = cam
        log.info(
            "%s: started, main %dx%d, lores %dx%d, %g fps",
            self.name,
            *self.size,
            *self.detect_size,
            self.fps,
        )

    def set_exposure_compensation(self, stops: float) -> None:
        if self._cam is None:
            raise CameraError(f"{self.name}: not open")
        limits = getattr(self._cam, "camera_controls", {}).get("ExposureValue")
        if not limits:
            raise CameraError(f"{self.name}: this camera has no ExposureValue control")
        lo, hi = float(limits[0]), float(limits[1])
        try:
            self._cam.set_controls({"ExposureValue": min(max(float(stops), lo), hi)})
        except Exception as exc:
            raise CameraError(
                f"{self.name}: setting ExposureValue failed: {first_line(exc, typed=True)}"
            ) from exc

    def read(self) -> Frame:
        if self._cam is None:
            raise CameraError(f"{self.name}: not open")
        w, h = self.detect_size
        try:
            (main, lores), _metadata = self._cam.capture_arrays(["main", "lores"])
        except Exception as exc:
            raise CameraError(
                f"{self.name}: capture failed: {first_line(exc, typed=True)}"
            ) from exc
        if lores.ndim != 2 or lores.shape[0] != h * 3 // 2 or lores.shape[1] < w or main.ndim != 3:
            raise CameraError(
                f"{self.name}: unexpected stream shapes main {main.shape}, lores {lores.shape} for lores {w}x{h} YUV420"
            )
        # libcamera's YUV420 is I420 (U plane before V).  cv2.COLOR_YUV420p2RGB is
        # YV12 and would swap red and blue.  Rows may be padded to a stride: crop.
        rgb = cv2.cvtColor(np.ascontiguousarray(lores), cv2.COLOR_YUV2RGB_I420)[:, :w]
        # picamera2's "RGB888" is B, G, R in memory (libcamera's naming).
        hires = cv2.cvtColor(np.ascontiguousarray(main[..., :3]), cv2.COLOR_BGR2RGB)
        frame = Frame(
            rgb=np.ascontiguousarray(rgb),
            source=self.name,
            index=self._index,
            timestamp=self._clock(),
            hires=hires,
        )
        self._index += 1
        return frame

    def _release(self, cam: Any) -> None:
        for step in ("stop", "close"):
            try:
                getattr(cam, step)()
            except Exception as exc:  # closing must not mask the error that led here
                log.debug("%s: %s() failed: %s", self.name, step, first_line(exc, typed=True))

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            self._release(cam)
