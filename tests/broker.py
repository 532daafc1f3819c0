"""A real Mosquitto for tests, on 127.0.0.1 only: a password file, an ACL, and a TLS listener
whose CA is made here; and an MQTT client that records what it sees."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
USERS = {"door": "door-secret", "ha": "ha-secret", "guest": "guest-secret"}
# The bridge may use facegate's and Home Assistant's topics; HA everything; a guest nothing.
ACL = """user door
topic readwrite facegate/#
topic readwrite homeassistant/#

user ha
topic readwrite #
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate for 127.0.0.1, its key)."""
    ca_key, ca, key, csr, cert = (
        d / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt")
    )
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=facegate test CA",
             "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    ext = d / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return ca, cert, key


@dataclass
class Broker:
    dir: Path
    port: int
    tls_port: int
    ca: Path
    proc: subprocess.Popen[bytes] | None = None
    conf: Path = field(init=False)

    def __post_init__(self) -> None:
        self.conf = self.dir / "mosquitto.conf"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"mosquitto exited: {err[-500:]}") from None
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


def start_broker(d: Path) -> Broker:
    d.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_ca(d)
    passwd = d / "passwd"
    for i, (user, password) in enumerate(USERS.items()):
        cmd = ["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwd), user, password]
        subprocess.run(cmd, check=True, capture_output=True)
    acl = d / "acl"
    acl.write_text(ACL)
    broker = Broker(d, free_port(), free_port(), ca)
    broker.conf.write_text(
        f"""user root
persistence false
per_listener_settings false
allow_anonymous false
password_file {passwd}
acl_file {acl}
listener {broker.port} 127.0.0.1
listener {broker.tls_port} 127.0.0.1
cafile {ca}
certfile {cert}
keyfile {key}
"""
    )
    for p in (passwd, acl, key):
        os.chmod(p, 0o600)
    broker.start()
    return broker


@dataclass
class Seen:
    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


class Watcher:
    """An MQTT client (Home Assistant's part in the tests) recording every message it sees."""

    def __init__(
        self, broker: Broker, *, user: str = "ha", topics: tuple[str, ...] = ("#",)
    ) -> None:
        self.seen: list[Seen] = []
        self._cond = threading.Condition()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{user}-{time.monotonic_ns()}"
        )
        self.client.username_pw_set(user, USERS[user])
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        if not subscribed.wait(5):
            raise RuntimeError("the test client could not subscribe")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._cond:
            self.seen.append(Seen(msg.topic, bytes(msg.payload), bool(msg.retain), time.time()))
            self._cond.notify_all()

    def wait_for(
        self, pred: Callable[[Seen], bool], timeout: float = 20.0, *, after: int = 0
    ) -> Seen:
        """The first message (from index ``after``) matching ``pred``; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.seen[after:]:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no such message within {timeout} s; saw {[m.topic for m in self.seen][-20:]}"
                    )
                self._cond.wait(left)

    def on(self, topic: str, *, after: int = 0) -> list[Seen]:
        with self._cond:
            return [m for m in self.seen[after:] if m.topic == topic]

    def publish(self, topic: str, payload: str | bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
