"""Cameras: where Frames come from.

In: a CameraConfig (or one backend's arguments): a Raspberry Pi camera through picamera2, a
V4L2/USB camera or network stream through OpenCV, or a replay of image files / a video for
tests and labelled review.
Out: a :class:`Camera` whose ``read()`` blocks until the next :class:`Frame` (RGB uint8;
picamera2 also fills ``hires``) or raises one :class:`CameraError` line naming the device or file.

One module per backend (``replay``, ``opencv``, ``picamera2``), each a :class:`CameraBase`;
:data:`CAMERAS` names them, and is the one list the config's ``camera.backend`` accepts.  A
backend whose ``reconnects`` is true comes wrapped in :class:`ReconnectingCamera`, which rides
out a pulled cable with capped exponential backoff and can be stopped from a signal handler.
Backends are imported when built, so picamera2 (and cv2) load only where a camera is opened.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edge.camera.base import Camera, CameraBase, CameraStopped, CorruptFrame, EndOfStream
from edge.errors import CameraError

if TYPE_CHECKING:
    from edge.config import CameraConfig

__all__ = [
    "CAMERAS",
    "Camera",
    "CameraBase",
    "CameraStopped",
    "CorruptFrame",
    "EndOfStream",
    "backend_class",
    "build_camera",
]

# backend name (config camera.backend) -> "module:class" of its CameraBase subclass.
CAMERAS: dict[str, str] = {
    "picamera2": "edge.camera.picamera2:Picamera2Camera",
    "opencv": "edge.camera.opencv:OpenCVCamera",
    "replay": "edge.camera.replay:ReplayCamera",
}


def backend_class(backend: str) -> type[CameraBase]:
    """The class registered for ``backend``, imported now."""
    target = CAMERAS.get(backend)
    if target is None:
        raise CameraError(
            f"unknown camera backend {backend!r}; choose one of: {', '.join(CAMERAS)}"
        )
    module, _, name = target.partition(":")
    cls: type[CameraBase] = getattr(importlib.import_module(module), name)
    return cls


def build_camera(cfg: CameraConfig, **overrides: Any) -> Camera:
    """The configured camera, unopened; live backends come wrapped in ReconnectingCamera.

    ``overrides`` go to the backend's constructor (e.g. ``picamera2_factory``,
    ``capture_factory``, ``loop``, ``fps``), except, for live backends,
    ``sleep`` and ``give_up_after``, which go to the ReconnectingCamera;
    ``clock`` goes to both.
    """
    cls = backend_class(cfg.backend)
    if not cls.reconnects:
        return cls.from_config(cfg, **overrides)
    from edge.camera.reconnect import ReconnectingCamera

    wrapper_kwargs: dict[str, Any] = {
        k: overrides.pop(k) for k in ("sleep", "give_up_after") if k in overrides
    }
    if "clock" in overrides:
        wrapper_kwargs["clock"] = overrides["clock"]
    first = cls.from_config(
        cfg, **overrides
    )  # built now: a bad override fails here, not in a retry loop
    pending: list[Camera] = [first]

    def factory() -> Camera:
        return pending.pop() if pending else cls.from_config(cfg, **overrides)

    return ReconnectingCamera(
        factory,
        initial_backoff=cfg.reopen_initial_s,
        max_backoff=cfg.reopen_max_s,
        name=first.name,
        controls_exposure=first.controls_exposure,
        **wrapper_kwargs,
    )
