"""A real door for the web app's tests: the daemon on a looping replay, and the bridge serving the app.

Both run as processes, as systemd runs them: ``facegate run --mock-gpio --replay DIR --loop`` and
``facegate bridge`` with ``mqtt.broker: false`` and ``web.enabled``, the app on 127.0.0.1 over
HTTPS with its self-signed certificate.  The gallery holds subject 0005 of the committed NUAA
frames; the replay loops subject 0009's session-2 frames with an empty porch between attempts,
so 0009 is refused until the app enrolls them (from their session-1 frames).
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from edge.config import load_config
from edge.enroll import add_to_gallery, from_images
from edge.pipeline import build_pipeline

NUAA = Path(__file__).resolve().parent / "data" / "nuaa" / "ClientRaw"
ENROLLED = "0005"
VISITOR = "0009"
# Every page of the web app (none of them open without a login).
PAGES = ("/", "/enroll", "/people", "/review", "/report", "/access", "/audit", "/api/status")


def frames(subject: str, session: str) -> list[Path]:
    """A subject's frames of one session (NUAA names: ID_glasses_pos_session_frame.jpg)."""
    return sorted(p for p in (NUAA / subject).glob("*.jpg") if p.stem.split("_")[3] == session)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_gallery(tmp: Path, model_dir: Path) -> Path:
    cfg = load_config()
    cfg = replace(
        cfg,
        models=replace(cfg.models, dir=str(model_dir)),
        gallery=replace(cfg.gallery, path=str(tmp / "state" / "gallery.json")),
        liveness=replace(cfg.liveness, enabled=False),
    )
    (tmp / "state").mkdir(mode=0o700)
    p = build_pipeline(cfg)
    add_to_gallery(cfg, ENROLLED, from_images(p, frames(ENROLLED, "01"), cfg.policy), p.embedder)
    return tmp / "state" / "gallery.json"


def make_replay(tmp: Path) -> Path:
    """The visitor's session-2 frames, then an empty porch long enough to end the attempt."""
    d = tmp / "replay"
    d.mkdir()
    blank = np.full((480, 640, 3), 90, np.uint8)
    i = 0
    for path in frames(VISITOR, "02")[:6]:
        shutil.copyfile(path, d / f"{i:04d}.jpg")
        i += 1
    for _ in range(14):
        cv2.imwrite(str(d / f"{i:04d}.jpg"), blank)
        i += 1
    return d


class HouseholdDoor:
    def __init__(self, tmp: Path, model_dir: Path, runtime: str = "ai-edge-litert") -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.web_dir = tmp / "web"
        gallery = make_gallery(tmp, model_dir)
        self.rules = tmp / "state" / "access.yaml"
        self.rules.write_text("people: {}\n")
        self.rules.chmod(0o600)
        data: dict[str, Any] = {
            "runtime": {"backend": runtime, "threads": 1},
            "models": {"dir": str(model_dir)},
            "liveness": {"enabled": False},
            "gallery": {"path": str(gallery)},
            "camera": {"fps": 10.0},
            "policy": {"retry_after_s": 1.0, "track_timeout_s": 1.0},  # a new attempt every 2 s
            "log": {"decisions": str(tmp / "decisions.jsonl"), "snapshots_dir": str(tmp / "snaps")},
            "access": {"rules": str(self.rules)},
            "mqtt": {"enabled": True, "broker": False, "socket": str(tmp / "bridge.sock")},
            "web": {
                "enabled": True,
                "listen": "127.0.0.1",
                "port": self.port,
                "state_dir": str(self.web_dir),
            },
        }
        self.yaml = tmp / "door.yaml"
        self.yaml.write_text(yaml.safe_dump(data))
        self.procs: list[subprocess.Popen[str]] = []
        self.password = ""
        self._out: list[str] = []

    def _start(self, *args: str) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, "-m", "edge", "-c", str(self.yaml), "-v", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(p)
        return p

    def start(self) -> HouseholdDoor:
        daemon = self._start("run", "--mock-gpio", "--replay", str(make_replay(self.tmp)), "--loop")
        sock = self.tmp / "bridge.sock"
        self._wait(sock.exists, daemon, "the daemon's socket")
        bridge = self._start("bridge")
        assert bridge.stdout is not None
        threading.Thread(target=lambda: self._out.extend(bridge.stdout or []), daemon=True).start()
        self._wait(
            lambda: any("first password" in line for line in self._out),
            bridge,
            "the first password",
        )
        line = next(x for x in self._out if "first password" in x)
        m = re.search(r"first password is in (\S+)", line)  # a 0600 file: never the journal
        assert m, line
        self.password = Path(m.group(1)).read_text().strip()
        self._wait(self._listening, bridge, "the web app")
        return self

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _wait(
        self, ready: Any, proc: subprocess.Popen[str], what: str, timeout: float = 90.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                raise AssertionError(f"exited {proc.returncode} before {what}: {err[-3000:]}")
            assert time.monotonic() < deadline, f"{what}: not ready after {timeout:.0f} s"
            time.sleep(0.1)

    def get(self, path: str) -> tuple[int, bytes]:
        """A request without a session (the certificate is the app's own self-signed one)."""
        ctx = ssl.create_default_context(cafile=str(self.web_dir / "tls.crt"))
        try:
            with urllib.request.urlopen(self.url + path, context=ctx, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self) -> list[str]:
        errs = []
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                _, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            errs.append(err or "")
        return errs


# --------------------------------------------------------------------------- in one process


class LocalDaemon:
    """The web app's DaemonPort, answered by a real Household in this process (no socket).

    Every answer is kept in ``answers``, so a test can check none ever held an embedding.
    """

    def __init__(self, household: Any, state: dict[str, Any] | None = None) -> None:
        self.household = household
        self.listeners: list[Any] = []
        self.answers: list[dict[str, Any]] = []
        self._state = (
            state
            if state is not None
            else {
                "lock": "LOCKED",
                "door_open": None,
                "face_unlock": True,
                "problem": False,
                "problem_why": "",
                "locked_out": False,
            }
        )

    @property
    def state(self) -> dict[str, Any] | None:
        return self._state

    def request(self, action: str, *, timeout_s: float = 15.0, **fields: Any) -> dict[str, Any]:
        ok, why, data = self.household.handle({"action": action, **fields})
        answer = {"type": "result", "ok": ok, "why": why, "data": data}
        self.answers.append(answer)
        return answer


@dataclass
class WebHarness:
    config: Any
    daemon: LocalDaemon
    clock: FakeClock
    policy: Any
    tmp: Path
    app: Any
    client: Any


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def door_config(tmp: Path, model_dir: Path, runtime: str = "ai-edge-litert") -> Any:
    """The config of an in-process door: 0005 enrolled, snapshots on, rules and web state in tmp."""
    gallery = make_gallery(tmp, model_dir)
    rules = tmp / "state" / "access.yaml"
    rules.write_text("people: {}\n")
    rules.chmod(0o600)
    cfg = load_config()
    return replace(
        cfg,
        models=replace(cfg.models, dir=str(model_dir)),
        runtime=replace(cfg.runtime, backend=runtime, threads=1),
        liveness=replace(cfg.liveness, enabled=False),
        gallery=replace(cfg.gallery, path=str(gallery)),
        exposure=replace(cfg.exposure, face_metering=False),
        log=replace(
            cfg.log, decisions=str(tmp / "decisions.jsonl"), snapshots_dir=str(tmp / "snaps")
        ),
        access=replace(cfg.access, rules=str(rules)),
        web=replace(cfg.web, state_dir=str(tmp / "web")),
    )


def run_door(config: Any, images: list[Path], tmp: Path) -> Any:
    """The real daemon (mock pins, virtual time) over ``images``, an empty porch after each person."""
    from gpiozero.pins.mock import MockFactory

    from edge.camera.replay import ReplayCamera
    from edge.service import build_service

    blank = tmp / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 90, np.uint8))
    clock = FakeClock()
    seq: list[Path] = []
    for path in images:
        seq += [path] * 3 + [blank] * 30
    svc = build_service(
        config,
        pin_factory=MockFactory(),
        camera=ReplayCamera(seq, fps=10, clock=clock, sleep=clock.sleep),
        clock=clock,
    )
    svc.run()
    return svc
