"""systemd's notify protocol (sd_notify) in plain Python, and a frame-driven watchdog.

In: ``$NOTIFY_SOCKET`` / ``$WATCHDOG_USEC`` / ``$WATCHDOG_PID`` (set by systemd for
``Type=notify`` services with ``WatchdogSec=``), the service config, and calls
from the daemon's frame loop.  Out: datagrams such as ``READY=1``,
``WATCHDOG=1``, ``STOPPING=1`` and ``STATUS=...`` on the notify socket.

Sending never raises: systemd going away must not crash a door lock.  The
watchdog is fed only while frames keep flowing, so a wedged camera or pipeline
gets the service killed and restarted (and a restart relocks the door).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

from edge.closeable import Closeable
from edge.config import ServiceConfig

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Notifier(Closeable):
    """Send sd_notify messages; a no-op (``enabled`` False) when there is no socket.

    ``socket_path`` is a filesystem path, or ``@name`` for the Linux abstract
    namespace (as systemd writes it); None means ``$NOTIFY_SOCKET``.
    """

    def __init__(
        self, socket_path: str | None = None, *, env: Mapping[str, str] = os.environ
    ) -> None:
        path = socket_path if socket_path is not None else env.get("NOTIFY_SOCKET")
        self.socket_path = path or None
        self._address: str | None = None
        self._sock: socket.socket | None = None
        self._failing = False
        if not path:
            return
        if path.startswith("@"):
            address = "\0" + path[1:]
        elif path.startswith("/"):
            address = path
        else:
            # e.g. systemd >= 254's "vsock:" addresses, which a Pi daemon never gets.
            log.warning(
                "NOTIFY_SOCKET %r is not a unix socket address; systemd notifications disabled",
                path,
            )
            return
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # Never block the frame loop on a full or stuck systemd queue.
            sock.setblocking(False)
        except OSError as exc:
            log.warning("cannot create the notify socket: %s; systemd notifications disabled", exc)
            return
        self._address = address
        self._sock = sock

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, message: str) -> bool:
        """Send one datagram; True if it went out.  Failures are logged, never raised.

        The first failure of a run is a warning; repeats are debug until a send
        succeeds again, so a vanished systemd does not flood the log.
        """
        if self._sock is None or self._address is None:
            return False
        try:
            self._sock.sendto(message.encode("utf-8"), self._address)
        except OSError as exc:
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "sd_notify %r to %s failed: %s", message, self.socket_path, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("sd_notify to %s works again", self.socket_path)
            self._failing = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd start-up is done (Type=notify waits for this)."""
        return self.send("READY=1" if status is None else f"READY=1\nSTATUS={_one_line(status)}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def status(self, text: str) -> bool:
        """Free-form status shown by ``systemctl status``."""
        return self.send(f"STATUS={_one_line(text)}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __repr__(self) -> str:
        return f"Notifier({self.socket_path!r}, enabled={self.enabled})"


def _one_line(text: str) -> str:
    """A newline would let status text inject other assignments (say READY=1)."""
    return " ".join(str(text).splitlines())


def watchdog_period(env: Mapping[str, str] = os.environ, pid: int | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of ``$WATCHDOG_USEC``, or None if no watchdog is ours.

    ``$WATCHDOG_PID``, when set, names the process the watchdog is meant for;
    a child that inherited the environment must not ping.
    """
    usec_text = env.get("WATCHDOG_USEC")
    if not usec_text:
        return None
    pid_text = env.get("WATCHDOG_PID")
    if pid_text:
        try:
            watchdog_pid = int(pid_text)
        except ValueError:
            log.warning("ignoring WATCHDOG_PID=%r: not a pid", pid_text)
            return None
        if watchdog_pid != (os.getpid() if pid is None else pid):
            return None
    try:
        usec = int(usec_text)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a whole number", usec_text)
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1e6


class FrameWatchdog:
    """WATCHDOG=1 only while frames keep flowing.

    The daemon calls :meth:`frame_done` after each processed frame and
    :meth:`tick` every loop.  A ping goes out at most every ``period`` seconds
    and only if the last frame is younger than ``stall_after``; when frames
    stall the pings stop and systemd restarts the service.  Construction counts
    as progress, so the camera has ``stall_after`` seconds to deliver a first frame.
    """

    def __init__(
        self,
        notifier: Notifier,
        *,
        period: float | None,
        stall_after: float,
        clock: Clock = time.monotonic,
    ) -> None:
        if period is not None and not period > 0:
            raise ValueError(f"watchdog period must be positive or None, got {period!r}")
        if not stall_after > 0:
            raise ValueError(f"stall_after must be positive, got {stall_after!r}")
        self.notifier = notifier
        self.period = period
        self.stall_after = float(stall_after)
        self._clock = clock
        self._last_frame = clock()
        self._last_ping: float | None = None
        self._was_stalled = False

    @classmethod
    def from_config(
        cls,
        cfg: ServiceConfig,
        notifier: Notifier,
        *,
        env: Mapping[str, str] = os.environ,
        clock: Clock = time.monotonic,
    ) -> FrameWatchdog:
        """Period from systemd's environment, stall limit from ``service.watchdog_stall_s``."""
        return cls(
            notifier, period=watchdog_period(env), stall_after=cfg.watchdog_stall_s, clock=clock
        )

    def frame_done(self, now: float | None = None) -> None:
        self._last_frame = self._clock() if now is None else now

    def stalled(self, now: float | None = None) -> bool:
        """True when no frame has completed for ``stall_after`` seconds."""
        now = self._clock() if now is None else now
        return now - self._last_frame >= self.stall_after

    def tick(self, now: float | None = None) -> bool:
        """Ping if one is due and frames are flowing; True if a ping was sent."""
        now = self._clock() if now is None else now
        if self.period is None:
            return False
        if self.stalled(now):
            if not self._was_stalled:
                log.warning(
                    "no frame for %.1f s: withholding the systemd watchdog so the service restarts",
                    now - self._last_frame,
                )
                self._was_stalled = True
            return False
        if self._was_stalled:
            log.info("frames flowing again: resuming watchdog pings")
            self._was_stalled = False
        if self._last_ping is not None and now - self._last_ping < self.period:
            return False
        self._last_ping = now
        return self.notifier.watchdog()
