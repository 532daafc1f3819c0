"""A live camera that survives outages: reopen with capped exponential backoff."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edge.camera.base import (
    Camera,
    CameraBase,
    CameraError,
    CameraStopped,
    CorruptFrame,
    EndOfStream,
)
from edge.text import first_line
from edge.types import Frame

log = logging.getLogger(__name__)


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
                log.debug(
                    "%s: close after failure: %s", self.name, first_line(close_exc, typed=True)
                )
        self._attempts += 1
        text = first_line(exc)
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
