"""Cameras: where Frames come from.

In: a CameraConfig (or one backend's arguments): a Raspberry Pi camera through
picamera2, a V4L2/USB camera or network stream through OpenCV, or a replay of
image files / a video for tests and labelled review.
Out: a :class:`Camera` whose ``read()`` blocks until the next :class:`Frame`
(RGB uint8; picamera2 also fills ``hires``) or raises one :class:`CameraError`
line naming the device or file.

Live cameras are wrapped in :class:`ReconnectingCamera`, which rides out a
pulled cable with capped exponential backoff and can be stopped from a signal
handler.  Only numpy, cv2 and the standard library are imported here;
picamera2 is imported when a picamera2 camera is opened, so this module loads
on any machine.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from edge.config import CameraConfig
from edge.errors import CameraError, ImageError
from edge.images import read_image
from edge.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

PICAMERA2_MISSING = (
    "picamera2 is not installed: on Raspberry Pi OS, apt install python3-picamera2 "
    "and create the venv with --system-site-packages"
)


class EndOfStream(CameraError):
    """A replay has no more frames (never raised by a live camera)."""


class CorruptFrame(CameraError):
    """One frame could not be decoded; the next read() continues with the following one."""


class CameraStopped(CameraError):
    """ReconnectingCamera.stop() was called: the daemon is shutting down, not a fault."""


@runtime_checkable
class Camera(Protocol):
    """What the pipeline needs from a frame source."""

    name: str

    def open(self) -> None: ...

    def read(self) -> Frame:
        """Block until the next frame; CameraError (or a subclass) on failure."""
        ...

    def close(self) -> None:
        """Release the device; safe to call twice."""
        ...

    @property
    def controls_exposure(self) -> bool:
        """Whether set_exposure_compensation() works (face-metered exposure, edge.exposure)."""
        ...

    def set_exposure_compensation(self, stops: float) -> None:
        """Bias the camera's auto-exposure by ``stops``; CameraError where not supported."""
        ...

    def __enter__(self) -> Camera: ...

    def __exit__(self, *exc: object) -> None: ...


class CameraBase:
    """Context-manager plumbing shared by the cameras: ``with cam:`` opens and closes."""

    name: str = "camera"
    controls_exposure: bool = False

    def set_exposure_compensation(self, stops: float) -> None:
        raise CameraError(f"{self.name}: cannot set its exposure compensation")

    def open(self) -> None:  # pragma: no cover - every camera overrides it
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def __enter__(self) -> CameraBase:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _one_line(exc: BaseException) -> str:
    """An exception as one log-friendly line: library errors can span many."""
    text = str(exc).strip().splitlines()
    first = text[0].strip() if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _redact(device: str) -> str:
    """rtsp://user:password@host/... -> rtsp://***@host/...: names end up in logs."""
    return re.sub(r"(?<=://)[^/@]*@", "***@", device)


# ---------------------------------------------------------------------------- replay


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


# ---------------------------------------------------------------------------- OpenCV


class OpenCVCamera(CameraBase):
    """A V4L2/USB camera (device "0", "1", ...) or a network stream URL/path via cv2.VideoCapture."""

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
        self.name = f"camera {_redact(self.device)}"
        self.width = width
        self.height = height
        self.fps = fps
        self._factory = capture_factory
        self._clock = clock
        self._cap: Any = None
        self._index = 0

    def open(self) -> None:
        if self._cap is not None:
            return
        target: int | str = int(self.device) if self.device.isdigit() else self.device
        factory = self._factory or cv2.VideoCapture
        try:
            cap = factory(target)
            opened = bool(cap.isOpened())
        except Exception as exc:  # cv2.error, or whatever a backend raises
            raise CameraError(f"{self.name}: cannot open: {_one_line(exc)}") from exc
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
            raise CameraError(f"{self.name}: read failed: {_one_line(exc)}") from exc
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


# ---------------------------------------------------------------------------- picamera2


class Picamera2Camera(CameraBase):
    """The Raspberry Pi camera through picamera2, with two streams from one capture.

    ``lores`` (detect_size, YUV420) becomes Frame.rgb for the detector; ``main``
    (size, "RGB888") becomes Frame.hires for cropping faces.  picamera2 is
    imported in open(), so the module loads where it is not installed.
    Exposure compensation is libcamera's ``ExposureValue`` (stops, applied to
    the auto-exposure's target), clamped to the range the camera reports.
    """

    controls_exposure = True

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
                f"{self.name}: cannot start the camera (connected and enabled?): {_one_line(exc)}"
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
                f"{self.name}: setting ExposureValue failed: {_one_line(exc)}"
            ) from exc

    def read(self) -> Frame:
        if self._cam is None:
            raise CameraError(f"{self.name}: not open")
        w, h = self.detect_size
        try:
            (main, lores), _metadata = self._cam.capture_arrays(["main", "lores"])
        except Exception as exc:
            raise CameraError(f"{self.name}: capture failed: {_one_line(exc)}") from exc
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
                log.debug("%s: %s() failed: %s", self.name, step, _one_line(exc))

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            self._release(cam)


# ---------------------------------------------------------------------------- reconnect


class ReconnectingCamera(CameraBase):
    """A live camera that survives outages: reopen with capped exponential backoff.

    ``factory`` builds a fresh, unopened camera for each attempt.  open() and
    read() block until a frame source works: on a CameraError they log one
    warning per outage, close the broken camera, wait (initial_backoff,
    doubling up to max_backoff; the backoff resets once a frame arrives) and
    try again.  Every failed attempt waits, so it never spins.  EndOfStream and
    CorruptFrame pass straight through.

    ``give_up_after`` (seconds into an outage) turns the wait into a
    CameraError.  stop(), safe from a signal handler or another thread, ends
    the wait with CameraStopped; without an injected ``sleep`` the backoff is
    an Event wait, so stop() interrupts it at once.
    """

    def __init__(
        self,
        factory: Callable[[], Camera],
        *,
        initial_backoff: float,
        max_backoff: float,
        give_up_after: float | None = None,
        name: str | None = None,
        controls_exposure: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not 0 < initial_backoff <= max_backoff:
            raise ValueError(
                f"need 0 < initial_backoff <= max_backoff, got {initial_backoff}, {max_backoff}"
            )
        self._factory = factory
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.give_up_after = give_up_after
        self.name = name or "camera"
        self._named = name is not None
        self.controls_exposure = controls_exposure
        self._exposure = 0.0  # stops; set again on every reopened camera
        self._clock = clock
        self._sleep = sleep
        self._stop = threading.Event()
        self._cam: Camera | None = None
        self._backoff = initial_backoff
        self._delay = 0.0  # wait owed before the next attempt (after a failure)
        self._outage_start: float | None = None
        self._attempts = 0
        self._last_error = ""
        self.outages = 0
        self.connected = False

    def stop(self) -> None:
        """Make open()/read() give up promptly with CameraStopped (e.g. on SIGTERM)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def open(self) -> None:
        if self._cam is None:
            self._run(want_frame=False)

    def read(self) -> Frame:
        frame = self._run(want_frame=True)
        assert frame is not None
        return frame

    def _run(self, *, want_frame: bool) -> Frame | None:
        while True:
            self._check_stopped()
            if self._delay > 0:
                self._pause(self._delay)
                self._delay = 0.0
                self._check_stopped()
            if self._cam is None:
                cam = None
                try:
                    cam = self._factory()
                    if not self._named:
                        self.name = cam.name
                    cam.open()
                except (EndOfStream, CorruptFrame):
                    raise
                except CameraError as exc:
                    self._cam = cam  # so _failed() closes whatever half-opened
                    self._failed(exc)
                    continue
                self._cam = cam
                if self._exposure:
                    self._apply_exposure(cam)
                if not want_frame:
                    return None
            try:
                frame = self._cam.read()
            except (EndOfStream, CorruptFrame):
                raise
            except CameraError as exc:
                self._failed(exc)
                continue
            self._recovered()
            return frame

    def set_exposure_compensation(self, stops: float) -> None:
        """Set it on the open camera and remember it for the next one after an outage."""
        if not self.controls_exposure:
            super().set_exposure_compensation(stops)  # raises: this camera cannot
        self._exposure = float(stops)
        if self._cam is not None:
            self._cam.set_exposure_compensation(self._exposure)

    def _apply_exposure(self, cam: Camera) -> None:
        try:
            cam.set_exposure_compensation(self._exposure)
        except CameraError as exc:  # frames matter more than their exposure: carry on
            log.warning("%s; exposure left to the camera", exc)

    def _check_stopped(self) -> None:
        if self._stop.is_set():
            raise CameraStopped(f"{self.name}: stopped")

    def _pause(self, seconds: float) -> None:
        if self._outage_start is not None and self.give_up_after is not None:
            remaining = self._outage_start + self.give_up_after - self._clock()
            if remaining > 0:
                seconds = min(seconds, remaining)
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._stop.wait(seconds)

    def _failed(self, exc: CameraError) -> None:
        """Close the broken camera, owe a backoff wait, and give up past the deadline."""
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.close()
            except Exception as close_exc:
                log.debug("%s: close after failure: %s", self.name, _one_line(close_exc))
        self._attempts += 1
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # Camera errors name their device already; don't say it twice.
        self._last_error = text if text.startswith(self.name) else f"{self.name}: {text}"
        if self._outage_start is None:
            self._outage_start = self._clock()
            self.outages += 1
            log.warning("%s; reconnecting (outage %d)", self._last_error, self.outages)
        else:
            log.debug("still failing: %s", self._last_error)
        self.connected = False
        self._delay = self._backoff
        self._backoff = min(self._backoff * 2, self.max_backoff)
        if (
            self.give_up_after is not None
            and self._clock() - self._outage_start >= self.give_up_after
        ):
            raise CameraError(
                f"{self.name}: no frame for {self.give_up_after:g} s, giving up; last error: {self._last_error}"
            ) from exc

    def _recovered(self) -> None:
        if self._outage_start is not None:
            log.warning(
                "%s: reconnected after %.1f s (%d failed attempts)",
                self.name,
                self._clock() - self._outage_start,
                self._attempts,
            )
        self._outage_start = None
        self._attempts = 0
        self._backoff = self.initial_backoff
        self.connected = True

    def close(self) -> None:
        cam, self._cam = self._cam, None
        self.connected = False
        if cam is not None:
            cam.close()


# ---------------------------------------------------------------------------- registry


def _picamera2(cfg: CameraConfig, **overrides: Any) -> Camera:
    kwargs: dict[str, Any] = {
        "size": (cfg.width, cfg.height),
        "detect_size": (cfg.detect_width, cfg.detect_height),
        "fps": cfg.fps,
    }
    return Picamera2Camera(**{**kwargs, **overrides})


def _opencv(cfg: CameraConfig, **overrides: Any) -> Camera:
    kwargs: dict[str, Any] = {"width": cfg.width, "height": cfg.height, "fps": cfg.fps}
    return OpenCVCamera(cfg.device, **{**kwargs, **overrides})


def _replay(cfg: CameraConfig, **overrides: Any) -> Camera:
    return ReplayCamera(cfg.device, **{"fps": cfg.fps, **overrides})


# backend name -> f(cfg, **overrides) -> an unopened Camera.
CAMERAS: dict[str, Callable[..., Camera]] = {
    "picamera2": _picamera2,
    "opencv": _opencv,
    "replay": _replay,
}

# Backends that are real hardware or streams, and so get reconnected.
LIVE_CAMERAS = frozenset({"picamera2", "opencv"})


def build_camera(cfg: CameraConfig, **overrides: Any) -> Camera:
    """The configured camera, unopened; live backends come wrapped in ReconnectingCamera.

    ``overrides`` go to the backend's constructor (e.g. ``picamera2_factory``,
    ``capture_factory``, ``loop``, ``fps``), except, for live backends,
    ``sleep`` and ``give_up_after``, which go to the ReconnectingCamera;
    ``clock`` goes to both.
    """
    make = CAMERAS.get(cfg.backend)
    if make is None:
        raise CameraError(
            f"unknown camera backend {cfg.backend!r}; choose one of: {', '.join(CAMERAS)}"
        )
    if cfg.backend not in LIVE_CAMERAS:
        return make(cfg, **overrides)
    wrapper_kwargs = {k: overrides.pop(k) for k in ("sleep", "give_up_after") if k in overrides}
    if "clock" in overrides:
        wrapper_kwargs["clock"] = overrides["clock"]
    first = make(cfg, **overrides)  # built now so a bad override fails here, not in a retry loop
    pending: list[Camera] = [first]

    def factory() -> Camera:
        return pending.pop() if pending else make(cfg, **overrides)

    return ReconnectingCamera(
        factory,
        initial_backoff=cfg.reopen_initial_s,
        max_backoff=cfg.reopen_max_s,
        name=first.name,
        controls_exposure=first.controls_exposure,
        **wrapper_kwargs,
    )
