"""The web app on the LAN: uvicorn over HTTPS, in a thread of the bridge service.

In: the config and the running Bridge (:mod:`edge.bridge.mqtt`).  Out: the app listening
on ``web.listen:web.port`` with TLS (:mod:`edge.web.tls`) until :meth:`WebServer.stop`.
Everything it needs (state directory, password hash, certificate) is checked when it is
built, before the bridge starts serving: a problem is one ConfigError line.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
from pathlib import Path
from typing import Any

from edge.config import Config
from edge.errors import ConfigError

log = logging.getLogger(__name__)


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
    from edge.web.auth import first_password

    password = first_password(state_dir)
    if password is not None:  # printed this once; only its hash is kept
        print(
            f"facegate web: the first password is {password}  (shown once: keep it; "
            "`facegate web-password` makes a new one)",
            flush=True,
        )


def listen(host: str, port: int, where: str = "") -> socket.socket:
    """The app's listening socket, bound before the bridge starts serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(64)
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
