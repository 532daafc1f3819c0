"""The web app on the LAN: uvicorn over HTTPS, in a thread of the bridge service.

In: the config and the running Bridge (:mod:`edge.bridge.mqtt`).  Out: the app listening
on ``web.listen:web.port`` with TLS (:mod:`edge.web.tls`) until :meth:`WebServer.stop`.
Everything it needs (state directory, password hash, certificate) is checked when it is
built, before the bridge starts serving: a problem is one ConfigError line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from edge.config import Config
from edge.errors import ConfigError
from edge.throttle import Throttle

log = logging.getLogger(__name__)

# The bounds of the web server, so that no number of connections can use up the bridge's
# descriptors (systemd/facegate-bridge.service sets LimitNOFILE well above them):
MAX_CONNECTIONS = 200  # TCP connections open at once (TLS handshakes too); beyond, the oldest goes
LIMIT_CONCURRENCY = 100  # uvicorn: connections and requests in progress; beyond it a 503
BACKLOG = 128  # connections the kernel queues before they are accepted (no descriptor of ours)
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this
OVERLOAD_LOG_S = 60.0  # an overload is logged once a minute per kind, without a traceback


def prepare_state_dir(path: str | Path) -> Path:
    """The app's state directory: made 0700 if missing; refused if others may write it or it is a link."""
    d = Path(path)
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(d)
    except OSError as exc:
        raise ConfigError(f"{d}: web.state_dir: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{d}: web.state_dir: not a directory (a symbolic link is refused)")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"{d}: web.state_dir: group or others may write it; chmod 700 it")
    return d


def announce_first_password(state_dir: Path) -> None:
    """Make the first password if there is none: written to a file only the bridge's user (and
    root) may read, and only where it is printed: the journal is read by more than them."""
    from edge.web.auth import first_password, write_first_password

    password = first_password(state_dir)
    if password is None:
        return
    try:
        where = write_first_password(state_dir, password)
    except OSError as exc:
        raise ConfigError(
            f"{state_dir}: web.state_dir: cannot write the first password ({exc.strerror}): "
            "run `facegate web-password` as the bridge's user"
        ) from None
    print(
        f"facegate web: the first password is in {where} (0600: root and the bridge's user "
        "only; delete it once you keep it elsewhere; `facegate web-password` makes a new one)",
        flush=True,
    )


class OverloadLog(logging.Filter):
    """One line per kind of overload per ``every_s`` (the rest counted into the next), never a
    traceback: a flood of connections must not become a flood of log lines."""

    KINDS: ClassVar[dict[str, str]] = {
        "socket.accept() out of system resource": "out of descriptors or memory (accept)",
        "Exceeded concurrency limit.": "too many requests at once (answered 503)",
        "connections open": "too many connections at once (the oldest closed)",
    }

    def __init__(
        self, every_s: float = OVERLOAD_LOG_S, clock: Callable[[], float] = time.monotonic
    ):
        super().__init__()
        self.throttle = Throttle(every_s, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        kind = next((k for k in self.KINDS if k in text), None)
        if kind is None:
            return True
        dropped = self.throttle.allow(kind)
        if dropped is None:
            return False
        record.msg = f"web: overload: {self.KINDS[kind]}" + (
            f" ({dropped} more since the last line)" if dropped else ""
        )
        record.args, record.exc_info, record.exc_text, record.stack_info = (), None, None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


OVERLOAD = OverloadLog()
for _name in ("asyncio", "uvicorn.error", __name__):
    logging.getLogger(_name).addFilter(OVERLOAD)


class CappedSocket(socket.socket):
    """A listening socket that keeps at most ``cap`` accepted connections open: beyond it the
    oldest is shut down as a new one is accepted (before any TLS handshake), so idle
    connections can neither use up the process's descriptors nor keep new ones out.
    (asyncio's own loop accepts through it: the web server runs on it, not on uvloop.)"""

    def __init__(self, family: int, cap: int = MAX_CONNECTIONS) -> None:
        super().__init__(family, socket.SOCK_STREAM)
        self.cap = cap
        self._open: list[socket.socket] = []

    def accept(self) -> tuple[socket.socket, Any]:
        conn, addr = super().accept()  # BlockingIOError when none is waiting
        self._open = [c for c in self._open if c.fileno() != -1]
        if len(self._open) >= self.cap:
            # The oldest goes, not the newest: idle connections held open (a TLS handshake
            # never finished) cannot keep a household member's new one out.  Shut down, not
            # closed: its transport sees the end and closes its own descriptor.
            oldest = self._open.pop(0)
            with contextlib.suppress(OSError):
                oldest.shutdown(socket.SHUT_RDWR)
            log.warning("web: %d connections open: closing the oldest", self.cap)
        self._open.append(conn)
        return conn, addr


def listen(host: str, port: int, where: str = "", cap: int = MAX_CONNECTIONS) -> socket.socket:
    """The app's listening socket, bound before the bridge starts serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = CappedSocket(family, cap)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"{where or '<config>'}: web.port: cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    sock.set_inheritable(True)
    return sock


class WebServer:
    def __init__(self, config: Config, bridge: Any) -> None:
        import uvicorn

        from edge.web.app import create_app
        from edge.web.tls import certificate

        w = config.web
        state_dir = prepare_state_dir(w.state_dir)
        # The port first: a port in use is a ConfigError now (not a log line in uvicorn's
        # thread), and comes before the first password is made and printed.
        self.sock = listen(w.listen, w.port, config.source)
        try:
            announce_first_password(state_dir)
            cert, key = certificate(w)
            app = create_app(config, bridge)
        except BaseException:
            self.sock.close()
            raise
        self.config = uvicorn.Config(
            app,
            host=w.listen,
            port=w.port,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=3,
            # Bounded (see MAX_CONNECTIONS): uvicorn 0.54 has no TLS handshake timeout of its
            # own; asyncio's (60 s) applies, and the capped socket bounds the handshakes.
            loop="asyncio",
            limit_concurrency=LIMIT_CONCURRENCY,
            backlog=BACKLOG,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        self.server = uvicorn.Server(self.config)
        # Run in a thread, uvicorn leaves the signals to the bridge (the main thread).
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="web", daemon=True
        )
        self.url = f"https://{w.listen}:{w.port}/"

    def start(self) -> None:
        self._thread.start()
        log.info("web app at %s", self.url)

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.sock.close()
