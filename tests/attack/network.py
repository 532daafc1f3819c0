"""The network face of the attack suite: hostile MQTT messages, web requests and socket peers
against one real daemon and one real bridge, on 127.0.0.1 only.

The door: ``facegate run --mock-gpio --replay DIR --loop`` (subject 0005 enrolled, a visitor who
is not looping), mqtt on with remote unlock over the broker's TLS port (a 6-character code), the
web app on; and ``facegate bridge``.  Each case returns None, or what broke of its own promise;
``tests/attack/test_network_attack.py`` then checks that the door still *holds*: both processes
run, the bridge says online and answers a LOCK on ``<prefix>/<door>/command/result``, the login
page answers, no unlock was logged, and no traceback reached either process's stderr.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from broker import USERS, Broker, Watcher
from household import free_port, make_gallery

from edge.bridge.protocol import MAX_LINE
from edge.decisions import log_files, read_records
from edge.policy import REMOTE_WRONG_IN_ROW

CODE = "864213"
DOOR = "front"
PREFIX = f"facegate/{DOOR}"
LOCK_SET, FACE_SET = f"{PREFIX}/lock/set", f"{PREFIX}/face_unlock/set"
RESULT, AVAILABILITY = f"{PREFIX}/command/result", f"{PREFIX}/availability"
OTHER_UID = 65534  # nobody


def command(**body: Any) -> str:
    return json.dumps({"ts": time.time(), "nonce": f"n{time.monotonic_ns()}", **body})


class Net:
    """The daemon and the bridge as processes, their stderr in files, and clients to reach them."""

    def __init__(self, tmp: Path, model_dir: Path, broker: Broker) -> None:
        self.tmp = tmp
        self.broker = broker
        tmp.chmod(0o711)  # another user may reach the socket (and is refused by its credentials)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        gallery = make_gallery(tmp, model_dir)
        self.settings = gallery.with_name("settings.json")
        code = tmp / "state" / "code"
        code.write_text(CODE + "\n")
        code.chmod(0o600)
        password = tmp / "state" / "mqtt-password"
        password.write_text(USERS["door"] + "\n")
        password.chmod(0o600)
        self.socket = tmp / "bridge.sock"
        self.decisions = tmp / "decisions.jsonl"
        data: dict[str, Any] = {
            "runtime": {"backend": "ai-edge-litert", "threads": 1},
            "models": {"dir": str(model_dir)},
            "liveness": {"enabled": False},
            "gallery": {"path": str(gallery)},
            "camera": {"fps": 5.0},
            "policy": {"retry_after_s": 1.0, "track_timeout_s": 1.0},
            "log": {"decisions": str(self.decisions), "snapshots_dir": str(tmp / "snaps")},
            "mqtt": {
                "enabled": True,
                "door_id": DOOR,
                "socket": str(self.socket),
                "host": "127.0.0.1",
                "port": broker.tls_port,
                "username": "door",
                "password_file": str(password),
                "tls": True,
                "ca_file": str(broker.ca),
                "remote_unlock": True,
                "code_file": str(code),
            },
            "web": {
                "enabled": True,
                "listen": "127.0.0.1",
                "port": self.port,
                "state_dir": str(tmp / "web"),
            },
        }
        self.yaml = tmp / "door.yaml"
        self.yaml.write_text(yaml.safe_dump(data))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.err = {name: tmp / f"{name}.stderr" for name in ("daemon", "bridge")}
        self.watch: Watcher | None = None
        self.web: httpx.Client | None = None
        self.csrf = ""
        self.password = ""

    # ------------------------------------------------------------------ lifecycle

    def _start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        out = (self.tmp / f"{name}.stdout").open("wb")
        err = self.err[name].open("wb")
        p = subprocess.Popen(
            [sys.executable, "-m", "edge", "-c", str(self.yaml), "-v", *args],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        out.close()
        err.close()
        self.procs[name] = p
        return p

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise AssertionError(
                        f"{name} exited {p.returncode} before {what}: {self.err[name].read_text()[-3000:]}"
                    )
            assert time.monotonic() < deadline, f"{what}: not ready after {timeout:.0f} s"
            time.sleep(0.1)

    def start(self) -> Net:
        self.watch = Watcher(self.broker, user="door", topics=(f"{PREFIX}/#",))
        self._start("daemon", "run", "--mock-gpio", "--replay", str(self._porch()), "--loop")
        self._wait(self.socket.exists, "the daemon's socket")
        self._start("bridge", "bridge")
        out = self.tmp / "bridge.stdout"
        self._wait(lambda: "first password" in out.read_text(), "the first password")
        m = re.search(r"first password is in (\S+)", out.read_text())
        assert m, out.read_text()
        self.password = Path(m.group(1)).read_text().strip()
        self._wait(lambda: self.login_page(2.0) == 200, "the web app")
        self._wait(self.online, "the bridge online")
        self.web = httpx.Client(base_url=self.url, verify=False, timeout=15)
        status = self.login(self.web, self.password)
        assert status == 303 and "facegate_session" in self.web.cookies, status
        page = self.web.get("/").text
        m = re.search(r'"X-CSRF-Token": "([^"]+)"', page)
        assert m, page[:500]
        self.csrf = m.group(1)
        return self

    def _porch(self) -> Path:
        """An empty porch: no face decides anything, so no face lockout hides a remote one."""
        import cv2
        import numpy as np

        d = self.tmp / "replay"
        d.mkdir()
        for i in range(10):
            cv2.imwrite(str(d / f"{i:04d}.jpg"), np.full((480, 640, 3), 90 + i, np.uint8))
        return d

    def stop(self) -> None:
        if self.web is not None:
            self.web.close()
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.watch is not None:
            self.watch.close()

    # ------------------------------------------------------------------ reaching the door

    def login_page(self, timeout: float = 10.0) -> int | None:
        """The login page's status, retried until ``timeout`` (None: it never answered)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                return httpx.get(
                    self.url + "/login", verify=False, timeout=max(left, 0.5)
                ).status_code
            except httpx.HTTPError:
                if left <= 0.2:
                    return None
                time.sleep(0.2)

    def login(self, client: httpx.Client, password: str, **headers: str) -> int:
        page = client.get("/login").text
        m = re.search(r'name="login_csrf" value="([^"]+)"', page)
        assert m, page[:300]
        r = client.post(
            "/login", data={"login_csrf": m.group(1), "password": password}, headers=headers
        )
        return r.status_code

    def online(self) -> bool:
        assert self.watch is not None
        last = self.watch.on(AVAILABILITY)
        return bool(last) and last[-1].payload == b"online"

    def mark(self) -> int:
        assert self.watch is not None
        return len(self.watch.seen)

    def publish(self, topic: str, payload: str | bytes, *, retain: bool = False) -> None:
        assert self.watch is not None
        self.watch.publish(topic, payload, retain=retain)

    def results(self, after: int) -> list[dict[str, Any]]:
        assert self.watch is not None
        return [m.json() for m in self.watch.on(RESULT, after=after)]

    def send(self, payload: str, timeout: float = 15.0) -> dict[str, Any]:
        """A lock/set command and the result the bridge publishes for it."""
        assert self.watch is not None
        mark = self.mark()
        self.publish(LOCK_SET, payload)
        return self.watch.wait_for(lambda m: m.topic == RESULT, timeout, after=mark).json()

    def quiet(self, for_s: float = 0.7, at_most_s: float = 30.0) -> None:
        """Until no result has come for ``for_s`` (a burst's results drained)."""
        assert self.watch is not None
        deadline = time.monotonic() + at_most_s
        n = len(self.watch.on(RESULT))
        while time.monotonic() < deadline:
            time.sleep(for_s)
            now = len(self.watch.on(RESULT))
            if now == n:
                return
            n = now

    def records(self) -> list[dict[str, Any]]:
        return list(read_records(log_files(self.decisions))) if self.decisions.exists() else []

    def unlocks(self) -> int:
        return sum(r.get("decision") == "unlock" for r in self.records())

    def stderr_sizes(self) -> dict[str, int]:
        return {n: p.stat().st_size for n, p in self.err.items()}

    def stderr_since(self, sizes: dict[str, int]) -> dict[str, str]:
        out = {}
        for n, p in self.err.items():
            with p.open("rb") as f:
                f.seek(sizes[n])
                out[n] = f.read().decode(errors="replace")
        return out

    def holds(self) -> str | None:
        """None if the door still holds (both processes up and answering), else what broke."""
        for name, p in self.procs.items():
            if p.poll() is not None:
                return f"the {name} exited {p.returncode}"
        self.quiet()
        deadline = time.monotonic() + 20
        while not self.online():
            if time.monotonic() > deadline:
                return "the bridge is not online 20 s after the case"
            time.sleep(0.1)
        try:
            got = self.send("LOCK")
        except AssertionError as exc:
            return f"a LOCK got no result: {exc}"
        if not got.get("ok") or got.get("why") != "locked":
            return f"a LOCK was answered {got}"
        status = self.login_page(10.0)
        if status != 200:
            return f"the login page answered {status}"
        return None

    # ------------------------------------------------------------------ raw transports

    def tls(self, timeout: float = 10.0) -> ssl.SSLSocket:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return ctx.wrap_socket(raw)

    def daemon_socket(self, timeout: float = 5.0) -> socket.socket:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(str(self.socket))
        return s


def read_status(s: ssl.SSLSocket) -> int | None:
    buf = b""
    try:
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except (OSError, ssl.SSLError):
        pass
    m = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
    return int(m.group(1)) if m else None


@dataclass
class NetCase:
    name: str
    kind: str  # mqtt, web, socket
    run: Callable[[Net], str | None]  # what broke of the case's own promise, or None
    unlocks: int = 0  # unlocks the case makes deliberately (none)


# --------------------------------------------------------------------------- MQTT


def _both_topics(payload: bytes | str) -> Callable[[Net], str | None]:
    """Sent to lock/set and face_unlock/set: refused before the daemon (no result published)."""

    def run(n: Net) -> str | None:
        mark = n.mark()
        n.publish(LOCK_SET, payload)
        n.publish(FACE_SET, payload)
        time.sleep(0.5)
        got = n.results(mark)
        return f"acted on: {got[:2]}" if got else None

    return run


def _retained_unlock(n: Net) -> str | None:
    """A retained UNLOCK (right code, fresh) is never acted on, and is not left on the broker."""
    mark = n.mark()
    n.publish(LOCK_SET, command(action="UNLOCK", code=CODE, sender="retained"), retain=True)
    time.sleep(1.0)
    got = n.results(mark)
    late = Watcher(n.broker, user="ha", topics=(LOCK_SET,))
    time.sleep(0.5)
    left = [m.payload[:80] for m in late.seen if m.payload]
    late.close()
    n.publish(LOCK_SET, b"", retain=True)  # clear it whatever happened
    problems = []
    if got:
        problems.append(f"acted on: {got}")
    if left:
        problems.append(f"still retained on the broker (the code with it): {left}")
    return "; ".join(problems) or None


def _stale_and_replayed(n: Net) -> str | None:
    stale = n.send(command(action="UNLOCK", code=CODE, ts=time.time() - 3600))
    if stale.get("ok") or not str(stale.get("why", "")).startswith("stale"):
        return f"an hour-old UNLOCK was answered {stale}"
    nonce = f"replay-{time.monotonic_ns()}"
    first = n.send(command(action="UNLOCK", code="not-the-code", nonce=nonce))
    if first.get("ok"):
        return f"a wrong code was answered {first}"
    again = n.send(command(action="UNLOCK", code=CODE, nonce=nonce))
    if again.get("ok") or not str(again.get("why", "")).startswith("replayed"):
        return f"a replayed nonce was answered {again}"
    return None


def _wrong_codes(n: Net) -> str | None:
    whys = []
    for i in range(30):
        got = n.send(command(action="UNLOCK", code=f"wrong-{i:03d}"))
        if got.get("ok"):
            return f"wrong code {i} unlocked: {got}"
        whys.append(got.get("why"))
    if "remote_locked_out" not in whys[REMOTE_WRONG_IN_ROW:]:
        return f"no remote lockout after {REMOTE_WRONG_IN_ROW} wrong codes: {whys}"
    right = n.send(command(action="UNLOCK", code=CODE))  # refused: locked out (no unlock made)
    if right.get("ok") or right.get("why") != "remote_locked_out":
        return f"the right code during the lockout was answered {right}"
    reasons = [r.get("reason") for r in n.records()]
    if "remote_locked_out" not in reasons:
        return f"remote_locked_out is not in the decision log: {reasons[-10:]}"
    return None


def _burst(n: Net) -> str | None:
    assert n.watch is not None
    mark = n.mark()
    infos = [n.watch.client.publish(LOCK_SET, "LOCK", qos=1) for _ in range(1000)]
    for info in infos:
        info.wait_for_publish(10)
    n.quiet(1.0, 60.0)
    got = n.results(mark)
    if any(r.get("ok") and r.get("why") != "locked" for r in got):
        return "a burst LOCK was answered as something else"
    return None


def _face_unlock_junk(n: Net) -> str | None:
    mark = n.mark()
    for payload in (b"MAYBE", b"1", b"true", b"ON\x00", b"{}", b"\xff\xfe", b"o" * 10_000):
        n.publish(FACE_SET, payload)
    time.sleep(0.5)
    got = n.results(mark)
    return f"acted on: {got}" if got else None


def _mqtt_cases() -> list[NetCase]:
    nested = '{"action": ' + "[" * 100_000 + "]" * 100_000 + "}"
    rnd = os.urandom(1 << 20)
    return [
        NetCase("ts Infinity", "mqtt", _both_topics('{"action":"LOCK","ts":Infinity,"nonce":"a"}')),
        NetCase("ts NaN", "mqtt", _both_topics('{"action":"UNLOCK","ts":NaN,"nonce":"b"}')),
        NetCase("ts -Infinity", "mqtt", _both_topics('{"action":"LOCK","ts":-Infinity}')),
        NetCase("JSON nested 100,000 deep", "mqtt", _both_topics(nested)),
        NetCase(
            "a 5 MB code",
            "mqtt",
            _both_topics(command(action="UNLOCK", code="7" * (5 << 20))),
        ),
        NetCase("1 MB of random bytes", "mqtt", _both_topics(rnd)),
        NetCase(
            "invalid UTF-8",
            "mqtt",
            _both_topics(
                b'{"action":"UN\xffLOCK","code":"\xc3\x28","ts":1,"nonce":"\xed\xa0\x80"}'
            ),
        ),
        NetCase("a JSON array", "mqtt", _both_topics(f"[{command(action='UNLOCK', code=CODE)}]")),
        NetCase("a JSON string", "mqtt", _both_topics('"UNLOCK"')),
        NetCase(
            "numbers for every field",
            "mqtt",
            _both_topics('{"action":1,"code":864213,"ts":1e308,"nonce":7,"sender":9}'),
        ),
        NetCase("an empty payload", "mqtt", _both_topics(b"")),
        NetCase("a face_unlock payload not ON/OFF", "mqtt", _face_unlock_junk),
        NetCase("a retained UNLOCK", "mqtt", _retained_unlock),
        NetCase("the right code, stale, then a replayed nonce", "mqtt", _stale_and_replayed),
        NetCase("a wrong code 30 times", "mqtt", _wrong_codes),
        NetCase("1,000 messages in a burst", "mqtt", _burst),
    ]


# --------------------------------------------------------------------------- web

POST_ROUTES = (
    "/logout", "/door/lock", "/door/face_unlock", "/door/drill", "/enroll", "/enroll/capture",
    "/people/rename", "/people/reenroll", "/people/remove", "/review/label", "/review/template",
    "/report/apply", "/report/liveness", "/access", "/login",
)  # fmt: skip


def _no_csrf(route: str) -> Callable[[Net], str | None]:
    def run(n: Net) -> str | None:
        assert n.web is not None
        data = {"threshold": "0.5", "confirm": "yes", "name": "x", "value": "off", "password": "x"}
        r = n.web.post(route, data=data, follow_redirects=False)
        if not 400 <= r.status_code < 500:
            return f"answered {r.status_code}"
        if "facegate_session" not in n.web.cookies:
            return "the session was ended"
        return None

    return run


def _no_length(n: Net) -> str | None:
    s = n.tls()
    try:
        s.sendall(
            b"POST /door/lock HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n5\r\nx=1&y\r\n0\r\n\r\n"
        )
        status = read_status(s)
    finally:
        s.close()
    return None if status == 411 else f"answered {status}"


def _huge_body(n: Net) -> str | None:
    s = n.tls(timeout=15)
    status = None
    try:
        s.sendall(
            b"POST /enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            + f"Content-Length: {50 << 20}\r\n\r\n".encode()
        )
        chunk = b"\0" * (1 << 16)
        try:
            for _ in range(800):  # 50 MB, unless the app answers (and closes) first
                s.sendall(chunk)
        except (OSError, ssl.SSLError):
            pass
        status = read_status(s)
    finally:
        s.close()
    return None if status == 413 else f"answered {status}"


def _flash(n: Net) -> str | None:
    assert n.web is not None
    r = n.web.get("/", params={"flash": "<script>alert(1)</script>"})
    if r.status_code != 200:
        return f"answered {r.status_code}"
    return "the script is in the page" if "<script>alert(1)" in r.text else None


def _traversal(n: Net) -> str | None:
    assert n.web is not None
    for path in (
        "/img/snapshot/..%2F..%2Fstate%2Fgallery.json.jpg",
        "/img/snapshot/../../../etc/passwd.jpg",
        "/img/snapshot/%2e%2e%2f%2e%2e%2fdoor.yaml.jpg",
        "/img/snapshot/....//....//etc/passwd.jpg",
        "/img/face/..%2F..%2Fstate%2Fcode.jpg",
    ):
        r = n.web.get(path, follow_redirects=False)
        if r.status_code < 400:
            return f"{path}: answered {r.status_code} {r.text[:80]!r}"
        body = r.content
        if b"root:" in body or CODE.encode() in body or b"templates" in body or b"mqtt" in body:
            return f"{path}: a file's content came back"
    return None


def _forwarded_for(n: Net) -> str | None:
    with httpx.Client(base_url=n.url, verify=False, timeout=30) as c:
        for i in range(8):
            n.login(
                c, f"wrong-{i}", **{"X-Forwarded-For": f"10.0.{i}.1", "X-Real-IP": f"10.0.{i}.1"}
            )
        status = n.login(
            c, n.password, **{"X-Forwarded-For": "10.9.9.9", "Forwarded": "for=10.9.9.9"}
        )
        if status in (302, 303) or "facegate_session" in c.cookies:
            return f"the limiter was bypassed: the right password got in ({status})"
    return None


def _threshold(value: str) -> Callable[[Net], str | None]:
    def run(n: Net) -> str | None:
        assert n.web is not None
        before = n.settings.read_bytes() if n.settings.exists() else None
        r = n.web.post(
            "/report/apply",
            data={"threshold": value, "period": "30", "confirm": "yes", "csrf": n.csrf},
            follow_redirects=False,
        )
        after = n.settings.read_bytes() if n.settings.exists() else None
        if after != before:
            return f"the threshold changed: {after!r}"
        return None if 400 <= r.status_code < 500 else f"answered {r.status_code}"

    return run


def _idle_connections(n: Net) -> str | None:
    held = []
    try:
        for _ in range(300):
            try:
                held.append(socket.create_connection(("127.0.0.1", n.port), timeout=5))
            except OSError:
                break  # refused or closed by the app: it protects itself; go on
        t = time.monotonic()
        status = n.login_page(10.0)
        took = time.monotonic() - t
    finally:
        for s in held:
            s.close()
    if status != 200:
        return (
            f"with {len(held)} idle connections the login page answered {status} after {took:.1f} s"
        )
    return None


def _slowloris(n: Net) -> str | None:
    stop = threading.Event()

    def drip() -> None:
        try:
            s = n.tls()
        except OSError:
            return
        try:
            for b in b"GET /login HTTP/1.1\r\nHost: x\r\n":
                if stop.wait(1.0):
                    break
                s.sendall(bytes([b]))
        except (OSError, ssl.SSLError):
            pass
        finally:
            s.close()

    threads = [threading.Thread(target=drip, daemon=True) for _ in range(5)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    status = n.login_page(10.0)
    time.sleep(3.0)
    stop.set()
    for t in threads:
        t.join(5)
    return None if status == 200 else f"the login page answered {status} during the slowloris"


def _web_cases() -> list[NetCase]:
    return [
        *(NetCase(f"POST {r} without a CSRF token", "web", _no_csrf(r)) for r in POST_ROUTES),
        NetCase("a body without Content-Length", "web", _no_length),
        NetCase("a 50 MB body", "web", _huge_body),
        NetCase("?flash=<script>", "web", _flash),
        NetCase("path traversal in the image routes", "web", _traversal),
        *(
            NetCase(f"/report/apply threshold {v}", "web", _threshold(v))
            for v in ("-0.0", "nan", "inf", "1e309", "0.1")
        ),
        NetCase("300 idle TCP connections", "web", _idle_connections),
        NetCase("a slowloris", "web", _slowloris),
        # last of the web cases: it locks logins for login_lockout_s
        NetCase("logins from many X-Forwarded-For", "web", _forwarded_for),
    ]


# --------------------------------------------------------------------------- the daemon's socket

PEER = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect", e.errno); sys.exit(0)
try:
    s.sendall(b'{"type": "command", "id": 1, "action": "unlock", "code": "x"}\\n')
    print("got", len(s.recv(65536)))
except OSError as e:
    print("closed", e.errno)
"""


def _other_user(n: Net) -> str | None:
    if os.getuid() != 0:
        return None  # skipped: reported by the test (needs root to become another user)
    p = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", PEER, str(n.socket)],
        user=OTHER_UID,
        group=OTHER_UID,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=20,
        cwd="/",
    )
    out = p.stdout.strip()
    if p.returncode != 0 or not out:
        return f"the peer could not run: {p.stderr.strip()[-200:]}"
    if out.startswith("connect"):
        return f"uid {OTHER_UID} could not even connect ({out}): the case tested nothing"
    if out != "got 0" and not out.startswith("closed"):
        return f"uid {OTHER_UID} was answered: {out}"
    return None


def _long_line(n: Net) -> str | None:
    s = n.daemon_socket(10)
    try:
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(MAX_LINE // len(chunk) + 2):
                s.sendall(chunk)
            s.sendall(b"\n")
        except OSError:
            pass  # dropped mid-line: as it should be
    finally:
        s.close()
    return None


def _not_json(n: Net) -> str | None:
    s = n.daemon_socket()
    try:
        s.sendall(b"this is not json {\n\x00\xff\xfe\n")
        time.sleep(0.3)
    except OSError:
        pass
    finally:
        s.close()
    return None


def _churn(n: Net) -> str | None:
    failed = 0
    for _ in range(500):
        try:
            n.daemon_socket(2).close()
        except OSError:
            failed += 1
    return None if failed < 500 else "no connection was ever accepted"


def _socket_cases() -> list[NetCase]:
    return [
        NetCase(f"a connection as uid {OTHER_UID}", "socket", _other_user),
        NetCase(f"a line longer than MAX_LINE ({MAX_LINE})", "socket", _long_line),
        NetCase("a line that is not JSON", "socket", _not_json),
        NetCase("500 connections opened and closed", "socket", _churn),
    ]


def cases() -> list[NetCase]:
    return [*_mqtt_cases(), *_web_cases(), *_socket_cases()]
