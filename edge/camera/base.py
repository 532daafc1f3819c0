"""What every camera is: the :class:`Camera` protocol, its context-manager plumbing, its errors.

A backend (one module each in this package) subclasses :class:`CameraBase`, says by its
``reconnects`` attribute whether it is live hardware (wrapped in ReconnectingCamera) or a
replay, and builds itself from a CameraConfig in ``from_config``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from edge.errors import CameraError
from edge.types import Frame

if TYPE_CHECKING:
    from edge.config import CameraConfig


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

    # Whether set_exposure_compensation() works (face-metered exposure, edge.exposure).
    controls_exposure: bool

    def set_exposure_compensation(self, stops: float) -> None:
        """Bias the camera's auto-exposure by ``stops``; CameraError where not supported."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class CameraBase:
    """Context-manager plumbing shared by the cameras: ``with cam:`` opens and closes."""

    name: str = "camera"
    controls_exposure: bool = False
    reconnects: bool = (
        False  # live hardware or a stream: build_camera wraps it in ReconnectingCamera
    )

    @classmethod
    def from_config(cls, cfg: CameraConfig, **overrides: Any) -> CameraBase:
        """This backend, unopened, from the config's camera section; overrides go to __init__."""
        raise NotImplementedError  # pragma: no cover - every backend defines it

    def set_exposure_compensation(self, stops: float) -> None:
        raise CameraError(f"{self.name}: cannot set its exposure compensation")

    def open(self) -> None:  # pragma: no cover - every camera overrides it
        raise NotImplementedError

    def read(self) -> Frame:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def redact(device: str) -> str:
    """rtsp://user:password@host/... -> rtsp://***@host/...: names end up in logs."""
    return re.sub(r"(?<=://)[^/@]*@", "***@", device)
