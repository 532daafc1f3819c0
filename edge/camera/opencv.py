"""A V4L2/USB camera or a network stream through OpenCV's VideoCapture."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cv2

from edge.camera.base import CameraBase, CameraError, redact
from edge.text import first_line
from edge.types import Frame

if TYPE_CHECKING:
    from edge.config import CameraConfig

log = logging.getLogger(__name__)


class OpenCVCamera(CameraBase):
    """A V4L2/USB camera (device "0", "1", ...) or a network stream URL/path via cv2.VideoCapture."""

    reconnects = True

    def __init__(
        self,
        device: str,
        *,
        width: int,
        height: int,
        fps: float,
        capture_factory: Callable[[int | str], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = str(device)
        self.name = f"camera {redact(self.device)}"
        self.width = width
        self.height = height
        self.fps = fps
        self._factory = capture_factory
        self._clock = clock
        self._cap: Any = None
        self._index = 0

    @classmethod
    def from_config(cls, cfg: CameraConfig, **overrides: Any) -> OpenCVCamera:
        kwargs: dict[str, Any] = {"width": cfg.width, "height": cfg.height, "fps": cfg.fps}
        return cls(cfg.device, **{**kwargs, **overrides})

    def open(self) -> None:
        if self._cap is not None:
            return
        target: int | str = int(self.device) if self.device.isdigit() else self.device
        factory = self._factory or cv2.VideoCapture
        try:
            cap = factory(target)
            opened = bool(cap.isOpened())
        except Exception as exc:  # cv2.error, or whatever a backend raises
            raise CameraError(f"{self.name}: cannot open: {first_line(exc, typed=True)}") from exc
        if not opened:
            cap.release()
            raise CameraError(
                f"{self.name}: cannot open (unplugged, wrong device, or in use by another program?)"
            )
        if isinstance(target, int):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        # A queue of stale frames would let a face from seconds ago be judged now.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap
        log.info("%s: opened", self.name)

    def read(self) -> Frame:
        if self._cap is None:
            raise CameraError(f"{self.name}: not open")
        try:
            ok, image = self._cap.read()
        except Exception as exc:
            raise CameraError(f"{self.name}: read failed: {first_line(exc, typed=True)}") from exc
        if not ok or image is None:
            raise CameraError(f"{self.name}: no frame (unplugged?)")
        if image.ndim == 2:
            rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        elif image.shape[2] == 4:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
        else:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        frame = Frame(rgb=rgb, source=self.name, index=self._index, timestamp=self._clock())
        self._index += 1
        return frame

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
