"""Stand-ins for camera hardware and time, shared by the tests.

In: scripted pictures, failures and clock readings.  Out: objects with the
surface facegate uses of picamera2.Picamera2, cv2.VideoCapture, time.monotonic
and time.sleep, which record how they were called.  Import as ``from fakes
import ...`` (pytest puts tests/ on sys.path through its conftest.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.exposure import expose


class FakeClock:
    """A monotonic clock that only moves when told: ``clock()`` reads it, ``sleep(s)`` advances it.

    ``sleeps`` records every sleep requested, so tests assert the pacing asked
    for rather than wall time.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, f"negative sleep {seconds}"
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        """Time passing outside a sleep (the caller doing work)."""
        self.now += seconds


def pattern(width: int = 320, height: int = 240) -> np.ndarray:
    """A deterministic RGB picture with structure (gradients and a bright square)."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[..., 0] = np.broadcast_to(x, (height, width)).astype(np.uint8)
    rgb[..., 1] = np.broadcast_to(y, (height, width)).astype(np.uint8)
    rgb[..., 2] = 128
    rgb[height // 4 : height // 2, width // 4 : width // 2] = 240
    return rgb


def solid(rgb: tuple[int, int, int], width: int = 64, height: int = 48) -> np.ndarray:
    """A one-colour RGB picture: makes colour-order mistakes obvious."""
    return np.full((height, width, 3), rgb, np.uint8)


class FakePicamera2:
    """picamera2.Picamera2 as facegate uses it, producing synthetic frames.

    ``picture`` (RGB, any size; or a sequence, cycled frame by frame) is
    resized to each stream.  Like the real library: constructing it opens the
    camera; "RGB888" arrays are B, G, R in memory; YUV420 arrays are I420
    planes stacked to (h * 3 / 2, stride); ``capture_arrays(names)`` returns
    ``(arrays, metadata)``.

    ``set_controls({"ExposureValue": ev})`` is range-checked against
    ``camera_controls`` and, ``control_delay`` frames later (the real pipeline
    applies controls a few frames late), renders the pictures with their
    linear light scaled by 2**ev and clipped at white, as a longer exposure
    would.  The pictures are the scene as the camera's own metering exposes it.

    Failures: ``fail_on_open`` / ``fail_on_start`` (an exception to raise),
    ``fail_after=N`` (capture_arrays raises after N frames, a cable pulled),
    ``fail_set_controls`` (raised by set_controls).
    ``lores_stride`` pads lores rows as the ISP does for odd widths.  Every
    call is appended to ``calls`` (pass a shared list to see all instances).
    """

    sensor_resolution = (2592, 1944)

    def __init__(
        self,
        picture: np.ndarray | Sequence[np.ndarray] | None = None,
        *,
        fail_on_open: BaseException | None = None,
        fail_on_start: BaseException | None = None,
        fail_after: int | None = None,
        lores_stride: int | None = None,
        control_delay: int = 2,
        exposure_value: bool = True,
        fail_set_controls: BaseException | None = None,
        calls: list[tuple[Any, ...]] | None = None,
    ) -> None:
        self.calls: list[tuple[Any, ...]] = calls if calls is not None else []
        self.calls.append(("__init__",))
        if fail_on_open is not None:
            raise fail_on_open
        if picture is None:
            self.pictures = [pattern()]
        elif isinstance(picture, np.ndarray):
            self.pictures = [picture]
        else:
            self.pictures = list(picture)
        self.fail_on_start = fail_on_start
        self.fail_after = fail_after
        self.lores_stride = lores_stride
        self.camera_controls: dict[str, tuple[Any, Any, Any]] = {
            "FrameRate": (1.0, 120.0, 30.0),
            "ExposureTime": (75, 11766829, None),
        }
        if exposure_value:
            self.camera_controls["ExposureValue"] = (-8.0, 8.0, 0.0)
        self.control_delay = control_delay
        self.fail_set_controls = fail_set_controls
        self.exposure_value = 0.0  # in effect on the frames captured now
        self._pending: list[tuple[int, float]] = []  # (frame number it takes effect, value)
        self.config: dict[str, Any] | None = None
        self.started = False
        self.closed = False
        self.frames = 0

    def create_preview_configuration(
        self,
        main: dict | None = None,
        lores: dict | None = None,
        controls: dict | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        self.calls.append(
            ("create_preview_configuration", {"main": main, "lores": lores, "controls": controls})
        )
        main = {"size": (640, 480), "format": "XBGR8888", **(main or {})}
        if lores is not None:
            lores = {"format": "YUV420", **lores}
            if lores["size"][0] > main["size"][0] or lores["size"][1] > main["size"][1]:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
        return {
            "use_case": "preview",
            "main": main,
            "lores": lores,
            "controls": dict(controls or {}),
            **kwargs,
        }

    def configure(self, config: dict[str, Any]) -> None:
        self.calls.append(("configure", config))
        if self.closed:
            raise RuntimeError("Camera is closed")
        self.config = config

    def start(self) -> None:
        self.calls.append(("start",))
        if self.config is None:
            raise RuntimeError("Camera has not been configured")
        if self.fail_on_start is not None:
            raise self.fail_on_start
        self.started = True

    def capture_arrays(
        self, names: Sequence[str] = ("main",)
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        self.calls.append(("capture_arrays", list(names)))
        if not self.started:
            raise RuntimeError("Camera must be started before capturing")
        if self.fail_after is not None and self.frames >= self.fail_after:
            raise RuntimeError(
                "Camera frontend has timed out!\nPlease check that your camera sensor connector is attached."
            )
        while self._pending and self._pending[0][0] <= self.frames:
            self.exposure_value = self._pending.pop(0)[1]
        picture = expose(self.pictures[self.frames % len(self.pictures)], self.exposure_value)
        self.frames += 1
        assert self.config is not None
        arrays = [self._stream(picture, self.config[name]) for name in names]
        return arrays, {"SensorTimestamp": self.frames * 100_000_000, "FrameDuration": 33333}

    def _stream(self, picture: np.ndarray, stream: dict[str, Any] | None) -> np.ndarray:
        if stream is None:
            raise RuntimeError("stream not configured")
        w, h = stream["size"]
        rgb = cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA)
        fmt = stream["format"]
        if fmt == "RGB888":  # libcamera naming: B, G, R in memory
            return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if fmt == "BGR888":
            return rgb.copy()
        if fmt == "YUV420":
            return yuv420(rgb, self.lores_stride)
        raise NotImplementedError(f"FakePicamera2 does not make {fmt}")

    def set_controls(self, controls: dict[str, Any]) -> None:
        self.calls.append(("set_controls", dict(controls)))
        if self.fail_set_controls is not None:
            raise self.fail_set_controls
        for name, value in controls.items():
            if name not in self.camera_controls:
                raise RuntimeError(f"Control {name} is not advertised by libcamera")
            lo, hi, _ = self.camera_controls[name]
            if not lo <= value <= hi:
                raise RuntimeError(f"Control {name} value {value} out of range")
        if "ExposureValue" in controls:
            self._pending.append(
                (self.frames + self.control_delay, float(controls["ExposureValue"]))
            )

    def stop(self) -> None:
        self.calls.append(("stop",))
        self.started = False

    def close(self) -> None:
        self.calls.append(("close",))
        self.started = False
        self.closed = True


def backlit_door(face: Path, stops: float = -1.5) -> np.ndarray:
    """A 640x480 door view: the face image exposed ``stops`` off, in front of a white street.

    What a camera metering the whole picture gives a visitor against the light.
    """
    canvas = np.full((480, 640, 3), 255, np.uint8)
    photo = cv2.cvtColor(cv2.imread(str(face)), cv2.COLOR_BGR2RGB)
    h, w = photo.shape[:2]
    y, x = (480 - h) // 2, (640 - w) // 2
    canvas[y : y + h, x : x + w] = expose(photo, stops)
    return canvas


def yuv420(rgb: np.ndarray, stride: int | None = None) -> np.ndarray:
    """RGB -> libcamera YUV420 (I420: Y, then U, then V), rows padded to ``stride``."""
    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    if stride is None or stride == w:
        return i420
    assert stride > w and stride % 2 == 0
    flat = i420.reshape(-1)
    y = flat[: h * w].reshape(h, w)
    u = flat[h * w : h * w * 5 // 4].reshape(h // 2, w // 2)
    v = flat[h * w * 5 // 4 :].reshape(h // 2, w // 2)
    pad = lambda plane, s: np.pad(plane, ((0, 0), (0, s - plane.shape[1])), constant_values=77)  # noqa: E731
    out = np.concatenate(
        [pad(y, stride).ravel(), pad(u, stride // 2).ravel(), pad(v, stride // 2).ravel()]
    )
    return out.reshape(h * 3 // 2, stride)


class FakeCapture:
    """cv2.VideoCapture with a script: each read() takes the next item.

    An item is a BGR array (a frame), None (``(False, None)``, as a pulled USB
    camera or dropped stream returns), or an exception (raised).  After the
    script: ``(False, None)`` forever.  Pass the instance itself as a
    ``capture_factory``: calling it records the source and returns itself.
    """

    def __init__(
        self, script: Sequence[np.ndarray | BaseException | None] = (), *, opened: bool = True
    ) -> None:
        self.script = list(script)
        self.opened = opened
        self.source: int | str | None = None
        self.opens = 0
        self.props: dict[int, float] = {}
        self.reads = 0
        self.released = False

    def __call__(self, source: int | str, *args: Any) -> FakeCapture:
        self.source = source
        self.opens += 1
        self.released = False
        return self

    def isOpened(self) -> bool:
        return self.opened and not self.released

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        return self.props.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.reads += 1
        if self.released or not self.script:
            return False, None
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        if item is None:
            return False, None
        return True, item.copy()

    def release(self) -> None:
        self.released = True


def frame_value(i: int) -> int:
    """The grey level write_frames() gives frame i: tells frames apart after JPEG."""
    return 20 + (i * 23) % 216


def write_frames(
    directory: str | Path, n: int, size: tuple[int, int] = (64, 48), *, prefix: str = "frame"
) -> list[Path]:
    """Write n small, distinct JPEGs ``{prefix}_000.jpg``... (size is width, height); return their paths.

    Frame i is uniform grey at frame_value(i), with a white square in a
    corner so it is not featureless.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    w, h = size
    paths = []
    for i in range(n):
        bgr = np.full((h, w, 3), frame_value(i), np.uint8)
        bgr[:4, :4] = 255
        path = directory / f"{prefix}_{i:03d}.jpg"
        if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"{path}: cv2.imwrite failed")
        paths.append(path)
    return paths


def grey_of(rgb: np.ndarray) -> int:
    """The grey level of a write_frames() picture, ignoring its marker corner."""
    return int(round(float(np.median(rgb))))


# A card's preprocessing for synthetic galleries (tests that need no model).
PREPROCESSING = {
    "input_size": [112, 112],
    "color": "RGB",
    "normalization": {"kind": "fixed", "mean": 0.0, "std": 1.0},
    "crop": {
        "method": "box",
        "margin": 0.1,
        "rotate": False,
        "shift": 0.0,
        "scale": 1.0,
        "aspect": 1.0,
    },
    "flip_average": False,
}
