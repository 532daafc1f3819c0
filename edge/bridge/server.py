"""The daemon's end of the bridge socket: events out, commands in, and the door never waits.

In: the socket path, the user ids allowed to connect, a bound on queued events, and a
function giving the daemon's state.  Out: :meth:`BridgeServer.publish` (never blocks; when
the queue is full the oldest event is dropped and counted) and :meth:`BridgeServer.commands`
(the commands received since the last call, for the daemon's own loop to carry out).

One bridge at a time: a new connection replaces the old.  Each is checked by its peer
credentials (SO_PEERCRED); a process of any other user is refused before it can say a word.
Threads (accept, read, write) only move bytes; the daemon's loop does everything else.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.bridge.protocol import ACTIONS, LineReader, ProtocolError, encode
from edge.closeable import Closeable
from edge.errors import ConfigError
from edge.text import first_line
from edge.throttle import Throttle

log = logging.getLogger(__name__)

STATE_PERIOD_S = 1.0  # the state is re-read this often and sent when it changed
SEND_TIMEOUT_S = 5.0  # a bridge that does not read for this long is dropped
MAX_PENDING_COMMANDS = 64
REFUSED_LOG_INTERVAL_S = 60.0  # refused connections: one log line per interval, with a count


class _RefusalLog:
    """One warning per interval for refused connections, the rest counted into the next line.

    Any local user can connect as often as it likes: a line per refusal let one fill the
    journal (3,000 lines in 8 s).  The first refusal is logged at once; those within the
    interval after it are counted and reported, with their uids, by the next line (or at close).
    """

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self.interval_s = interval_s
        self.total = 0  # every refusal since start
        self._throttle = Throttle(interval_s, clock)
        self._held_uids: set[str] = set()

    def refused(self, why: str, uid: str) -> None:
        self.total += 1
        held = self._throttle.allow("refused")
        if held is None:
            self._held_uids.add(uid)
            return
        log.warning("bridge socket: refused a connection %s%s", why, self._summary(held))

    def flush(self) -> None:
        held = self._throttle.held("refused")
        if held:
            log.warning("bridge socket:%s", self._summary(held).removeprefix(";"))

    def _summary(self, held: int) -> str:
        if not held:
            return ""
        uids = ", ".join(sorted(self._held_uids)[:5]) + (
            ", ..." if len(self._held_uids) > 5 else ""
        )
        self._held_uids.clear()
        return (
            f"; {held} more connection{'s' if held != 1 else ''} refused "
            f"in the {self.interval_s:g} s before (uid {uids})"
        )


def peer_uid(conn: socket.socket) -> int:
    """The user id of the process at the other end of a UNIX socket (Linux SO_PEERCRED)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class BridgeServer(Closeable):
    def __init__(
        self,
        path: str | Path,
        *,
        allowed_uids: frozenset[int],
        queue_max: int,
        state: Callable[[], dict[str, Any]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.refusals = _RefusalLog(REFUSED_LOG_INTERVAL_S, clock)
        self.allowed_uids = allowed_uids
        self.state = state
        self.dropped = 0  # events dropped because the queue was full
        self._events: collections.deque[bytes] = collections.deque()
        self._queue_max = queue_max
        self._commands: queue.Queue[dict[str, Any]] = queue.Queue(MAX_PENDING_COMMANDS)
        self._cond = threading.Condition()
        self._conn: socket.socket | None = None
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._last_state: dict[str, Any] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Bind the socket (before READY: a path that cannot be used is a ConfigError now)."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise ConfigError(f"{self.path}: mqtt.socket: {exc.strerror}") from None
        if st is not None:
            if not stat.S_ISSOCK(st.st_mode):
                raise ConfigError(
                    f"{self.path}: mqtt.socket: exists and is not a socket (a symlink or a file); "
                    "refusing to replace it"
                )
            self.path.unlink()  # a stale socket from a daemon that died
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            sock.bind(str(self.path))
            # Any local user may connect; only the allowed uids get past the credential check.
            os.chmod(self.path, 0o666)
            sock.listen(2)
        except OSError as exc:
            sock.close()
            raise ConfigError(f"{self.path}: mqtt.socket: cannot listen: {exc.strerror}") from None
        sock.settimeout(0.5)
        self._sock = sock
        for target, name in ((self._accept_loop, "accept"), (self._write_loop, "write")):
            t = threading.Thread(target=target, name=f"bridge-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("bridge socket %s: listening", self.path)

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._drop_connection()
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
            try:
                if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                    self.path.unlink()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=2.0)
        self.refusals.flush()

    # ------------------------------------------------------------------ the daemon's side

    def publish(self, msg: dict[str, Any]) -> None:
        """Queue an event for the bridge; never blocks.  Full: the oldest goes, and is counted."""
        data = encode(msg)
        with self._cond:
            if len(self._events) >= self._queue_max:
                self._events.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    log.warning(
                        "bridge: %d events dropped (queue full: no bridge reading)", self.dropped
                    )
            self._events.append(data)
            self._cond.notify()

    def commands(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self._commands.get_nowait())
            except queue.Empty:
                return out

    @property
    def connected(self) -> bool:
        return self._conn is not None

    # ------------------------------------------------------------------ threads

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            sock = self._sock
            if sock is None:
                return
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                uid = peer_uid(conn)
            except OSError as exc:
                conn.close()
                self.refusals.refused(
                    f"whose peer credentials cannot be read ({first_line(exc)})", "unknown"
                )
                continue
            if uid not in self.allowed_uids:
                conn.close()
                self.refusals.refused(f"from uid {uid} (not mqtt.bridge_user)", str(uid))
                continue
            self._drop_connection()
            conn.settimeout(SEND_TIMEOUT_S)
            with self._cond:
                self._conn = conn
                self._last_state = None  # a new bridge gets the whole state first
                self._cond.notify_all()
            log.info("bridge connected (uid %d)", uid)
            threading.Thread(
                target=self._read_loop, args=(conn,), name="bridge-read", daemon=True
            ).start()

    def _read_loop(self, conn: socket.socket) -> None:
        reader = LineReader(conn)
        while not self._stop.is_set():
            try:
                msg = reader.read()
            except TimeoutError:
                continue
            except (OSError, ProtocolError) as exc:
                log.warning("bridge: %s; dropping the connection", first_line(exc))
                break
            if msg is None:
                break
            if msg.get("type") != "command" or msg.get("action") not in ACTIONS:
                log.warning("bridge: ignoring a message that is not a known command")
                continue
            try:
                self._commands.put_nowait(msg)
            except queue.Full:
                self.publish({"type": "result", "id": msg.get("id"), "ok": False, "why": "busy"})
        if self._conn is conn:
            self._drop_connection()
            log.info("bridge disconnected")

    def _write_loop(self) -> None:
        next_state = 0.0
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stop.is_set() or (self._conn is not None and bool(self._events)),
                    timeout=max(0.0, next_state - time.monotonic()),
                )
                conn = self._conn
                data = self._events.popleft() if conn is not None and self._events else None
            if self._stop.is_set():
                return
            if conn is None:
                next_state = time.monotonic() + STATE_PERIOD_S
                continue
            if time.monotonic() >= next_state:
                next_state = time.monotonic() + STATE_PERIOD_S
                self._send_state(conn)
            if data is not None and not self._send(conn, data):
                with self._cond:
                    self._events.appendleft(data)  # not lost: the next bridge gets it

    def _send_state(self, conn: socket.socket) -> None:
        try:
            state = {"type": "state", **self.state(), "dropped_events": self.dropped}
        except Exception as exc:  # the state is a report: never let it stop the events
            log.warning("bridge: cannot read the daemon's state: %s", first_line(exc))
            return
        if state != self._last_state and self._send(conn, encode(state)):
            self._last_state = state

    def _send(self, conn: socket.socket, data: bytes) -> bool:
        try:
            conn.sendall(data)
            return True
        except OSError as exc:
            log.warning("bridge: send failed (%s); dropping the connection", first_line(exc))
            self._drop_connection()
            return False

    def _drop_connection(self) -> None:
        with self._cond:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
