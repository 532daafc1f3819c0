"""Image files or a video played back as a camera: tests, demos, labelled review."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2

from edge.camera.base import CameraBase, CameraError, CorruptFrame, EndOfStream
from edge.errors import ImageError
from edge.images import read_image
from edge.types import Frame

if TYPE_CHECKING:
    from edge.config import CameraConfig

log = logging.getLogger(__name__)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class ReplayCamera(CameraBase):
    """Image files or a video played back as a camera: tests, demos, labelled review.

    ``source`` is a folder (its jpg/jpeg/png/bmp files, sorted by name, so
    zero-pad the numbers), an explicit list of image files, one image file, or
    a video file.  ``fps`` paces delivery with the injected clock/sleep (None:
    as fast as the caller reads).  ``loop`` starts over at the end instead of
    raising EndOfStream.
    """

    def __init__(
        self,
        source: str | Path | Sequence[str | Path],
        *,
        fps: float | None = None,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be positive or None, got {fps!r}")
        if isinstance(source, (str, Path)):
            self._path: Path | None = Path(source)
            self._listed: list[Path] | None = None
            self.name = str(source)
        else:
            self._path = None
            self._listed = [Path(p) for p in source]
            self.name = f"replay of {len(self._listed)} files"
        self.fps = fps
        self.loop = loop
        self._clock = clock
        self._sleep = sleep
        self._files: list[Path] | None = None  # image mode, once open
        self._video: Path | None = None  # video mode, once open
        self._cap: Any = None
        self._pos = 0  # next file (image mode) or frame number in the video
        self._index = 0  # frames handed out (including corrupt ones), across loops
        self._due: float | None = None
        self._open = False

    @classmethod
    def from_config(cls, cfg: CameraConfig, **overrides: Any) -> ReplayCamera:
        return cls(cfg.device, **{"fps": cfg.fps, **overrides})

    def open(self) -> None:
        if self._open:
            return
        if self._listed is not None:
            if not self._listed:
                raise CameraError("replay: the list of image files is empty")
            self._files = list(self._listed)
        else:
            path = self._path
            assert path is not None
            if path.is_dir():
                files = sorted(
                    (
                        p
                        for p in path.iterdir()
                        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
                    ),
                    key=lambda p: p.name,
                )
                if not files:
                    raise CameraError(
                        f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder"
                    )
                self._files = files
            elif path.is_file():
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    self._files = [path]
                else:
                    self._video = path
                    self._cap = self._open_video()
            else:
                raise CameraError(f"{path}: no such file or folder to replay")
        self._pos = 0
        self._index = 0
        self._due = None
        self._open = True
        log.info(
            "replay %s: %s", self.name, f"{len(self._files)} images" if self._files else "video"
        )

    def _open_video(self) -> Any:
        cap = cv2.VideoCapture(str(self._video))
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"{self._video}: cannot open as a video")
        return cap

    def _pace(self) -> None:
        """Hold each frame until its slot; a late reader restarts the schedule, no burst."""
        if self.fps is None:
            return
        now = self._clock()
        if self._due is not None and now < self._due:
            self._sleep(self._due - now)
            now = self._due
        self._due = now + 1.0 / self.fps

    def read(self) -> Frame:
        if not self._open:
            raise CameraError(f"replay {self.name}: not open")
        if self._files is not None:
            if self._pos >= len(self._files):
                if not self.loop:
                    raise EndOfStream(f"replay {self.name}: end of the {len(self._files)} images")
                self._pos = 0
            self._pace()
            path = self._files[self._pos]
            self._pos += 1
            index = self._index
            self._index += 1
            try:
                frame = read_image(path)
            except ImageError as exc:
                raise CorruptFrame(f"{exc}; skipped") from None
            return replace(frame, index=index, timestamp=self._clock())
        return self._read_video()

    def _read_video(self) -> Frame:
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            if self._pos == 0:
                raise CameraError(
                    f"{self._video}: no frame could be decoded (codec not supported?)"
                )
            if not self.loop:
                raise EndOfStream(f"{self._video}: end of the video after {self._pos} frames")
            # Reopening is more reliable than seeking to frame 0 across containers.
            self._cap.release()
            self._cap = self._open_video()
            self._pos = 0
            return self._read_video()
        self._pace()
        frame = Frame(
            rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
            source=f"{self._video}#frame={self._pos}",
            index=self._index,
            timestamp=self._clock(),
        )
        self._pos += 1
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._open = False
