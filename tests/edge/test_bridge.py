"""The MQTT bridge against a real Mosquitto on 127.0.0.1, with the real daemon where a door is needed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from broker import USERS, Broker, Watcher

from edge.bridge.mqtt import Bridge, Topics, discovery
from edge.bridge.server import BridgeServer
from edge.config import MqttConfig, load_config, parse_config
from edge.decisions import log_files, read_records
from edge.enroll import add_to_gallery, from_images
from edge.errors import ConfigError
from edge.pipeline import build_pipeline

CODE = "246813"
STATE = {
    "door": "front",
    "lock": "LOCKED",
    "door_open": False,
    "face_unlock": True,
    "problem": False,
}


# --------------------------------------------------------------------------- helpers


def mqtt_config(broker: Broker, tmp_path: Path, *, tls: bool = False, **kw: Any) -> MqttConfig:
    password = tmp_path / "mqtt-password"
    password.write_text(USERS["door"] + "\n")
    password.chmod(0o600)
    return replace(
        MqttConfig(),
        enabled=True,
        door_id="front",
        socket=str(tmp_path / "bridge.sock"),
        host="127.0.0.1",
        port=broker.tls_port if tls else broker.port,
        username="door",
        password_file=str(password),
        tls=tls,
        ca_file=str(broker.ca) if tls else None,
        **kw,
    )


class BridgeThread:
    """The bridge in this process (the LWT test runs it as a process of its own)."""

    def __init__(self, cfg: MqttConfig) -> None:
        self.bridge = Bridge(cfg, reconnect_s=0.1)
        self.thread = threading.Thread(target=self.bridge.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.bridge.stop()
        self.thread.join(timeout=10)


def fake_daemon(cfg: MqttConfig, state: dict[str, Any] | None = None) -> BridgeServer:
    server = BridgeServer(
        cfg.socket,
        allowed_uids=frozenset({os.getuid()}),
        queue_max=100,
        state=lambda: dict(state or STATE),
    )
    server.start()
    return server


def online(m: Any) -> bool:
    return m.topic == "facegate/front/availability" and m.payload == b"online"


@pytest.fixture
def gallery(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, lfw_samples: dict[str, Path]
) -> Path:
    """Colin Powell enrolled from one photo, made once per test (the daemon refuses a shared one)."""
    d = tmp_path_factory.mktemp("state")
    cfg = load_config()
    cfg = replace(
        cfg,
        models=replace(cfg.models, dir=str(model_dir)),
        gallery=replace(cfg.gallery, path=str(d / "gallery.json")),
        policy=replace(cfg.policy, min_face_px=60),
    )
    p = build_pipeline(cfg)
    add_to_gallery(
        cfg, "colin", from_images(p, [lfw_samples["Colin_Powell_0038"]], cfg.policy), p.embedder
    )
    return d / "gallery.json"


def door_yaml(
    tmp_path: Path,
    model_dir: Path,
    gallery: Path,
    m: MqttConfig,
    *,
    runtime: str = "ai-edge-litert",
    snapshots: bool = False,
    **policy: Any,
) -> Path:
    data = {
        "runtime": {"backend": runtime, "threads": 1},
        "models": {"dir": str(model_dir)},
        "match": {"min_cosine_similarity": 0.5, "min_margin": 0.05},
        "policy": {
            "frames": 3,
            "min_matching_frames": 2,
            "min_face_px": 60,
            "retry_after_s": 0.5,
            **policy,
        },
        "liveness": {"enabled": False},
        "gallery": {"path": str(gallery)},
        "camera": {"fps": 20.0},
        "log": {
            "decisions": str(tmp_path / "decisions.jsonl"),
            "snapshots_dir": str(tmp_path / "snaps") if snapshots else None,
        },
        "mqtt": {k: getattr(m, k) for k in MqttConfig.__dataclass_fields__},
    }
    path = tmp_path / "door.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def replay(
    tmp_path: Path, lfw_samples: dict[str, Path], plan: list[tuple[str | None, int]]
) -> Path:
    """A folder of frames: (photo stem or None for an empty porch, how many frames)."""
    d = tmp_path / "replay"
    d.mkdir(exist_ok=True)
    blank = np.full((250, 250, 3), 90, np.uint8)
    i = 0
    for stem, n in plan:
        for _ in range(n):
            name = d / f"{i:06d}.jpg"
            if stem is None:
                cv2.imwrite(str(name), blank)
            else:
                shutil.copyfile(lfw_samples[stem], name)
            i += 1
    return d


def start(args: list[str], yaml_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge", "-c", str(yaml_path), "-v", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(
                f"exited {proc.returncode}: {proc.stderr.read()[-2000:] if proc.stderr else ''}"
            )
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return err


def logged(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "decisions.jsonl"
    return list(read_records(log_files(path))) if path.exists() else []


def command(**body: Any) -> str:
    return json.dumps({"ts": time.time(), "nonce": f"n{time.monotonic_ns()}", **body})


# --------------------------------------------------------------------------- discovery and state


def test_discovery_payloads_are_exact_and_retained_over_tls(broker, tmp_path):
    cfg = mqtt_config(broker, tmp_path, tls=True)
    server = fake_daemon(cfg)
    first = Watcher(broker)
    b = BridgeThread(cfg)
    try:
        first.wait_for(online)
        first.wait_for(
            lambda m: m.topic == "facegate/front/face_unlock/state"
        )  # the state's last topic
        late = Watcher(broker, topics=("homeassistant/#", "facegate/#"))  # gets what was retained
        expected = discovery(cfg)
        for topic, payload in expected.items():
            m = late.wait_for(lambda m, t=topic: m.topic == t)
            assert m.retain and m.json() == payload
        lock = expected["homeassistant/lock/facegate_front/lock/config"]
        assert lock == {
            "name": "Lock",
            "unique_id": "facegate_front_lock",
            "state_topic": "facegate/front/lock/state",
            "command_topic": "facegate/front/lock/set",
            "payload_lock": "LOCK",
            "payload_unlock": "UNLOCK",
            "payload_open": "OPEN",
            "state_locked": "LOCKED",
            "state_unlocked": "UNLOCKED",
            "state_open": "OPEN",
            "state_jammed": "JAMMED",
            "optimistic": False,
            "availability_topic": "facegate/front/availability",
            "device": {
                "identifiers": ["facegate_front"],
                "name": "facegate front",
                "manufacturer": "facegate",
                "model": "face-verification door lock",
                "sw_version": lock["device"]["sw_version"],
            },
        }
        assert "code_format" not in lock  # remote unlock is off: no code to ask for
        assert set(expected) == {
            "homeassistant/lock/facegate_front/lock/config",
            "homeassistant/event/facegate_front/decision/config",
            "homeassistant/binary_sensor/facegate_front/door/config",
            "homeassistant/binary_sensor/facegate_front/problem/config",
            "homeassistant/switch/facegate_front/face_unlock/config",
        }  # no image entity unless mqtt.snapshots
        event = expected["homeassistant/event/facegate_front/decision/config"]
        assert event["event_types"] == [
            "granted",
            "denied_unknown",
            "presentation_attack",
            "lockout",
            "remote_unlock",
            "exit_button",
            "door_held_open",
            "attack_drill",
        ]
        for topic, value in (
            ("lock/state", b"LOCKED"),
            ("door/state", b"OFF"),
            ("problem/state", b"OFF"),
            ("face_unlock/state", b"ON"),
        ):
            m = late.wait_for(lambda m, t=topic: m.topic == f"facegate/front/{t}")
            assert m.retain and m.payload == value
        late.close()
    finally:
        b.stop()
        server.close()
        first.close()


def test_remote_unlock_discovery_asks_for_a_code_and_snapshots_add_an_image():
    cfg = replace(MqttConfig(), door_id="back", remote_unlock=True, code_file="/x", snapshots=True)
    d = discovery(cfg)
    lock = d["homeassistant/lock/facegate_back/lock/config"]
    assert lock["code_format"] and "tojson" in lock["command_template"]
    image = d["homeassistant/image/facegate_back/visitor/config"]
    assert (
        image["image_topic"] == "facegate/back/snapshot" and image["content_type"] == "image/jpeg"
    )


def test_a_drill_decision_is_an_attack_drill_event_the_discovery_declares():
    """No broker: a stand-in MQTT client records what the bridge publishes."""
    sent: list[tuple[str, bytes]] = []

    class Client:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: None  # will_set, reconnect_delay_set, ...

        def is_connected(self) -> bool:
            return True

        def publish(self, topic: str, payload: bytes, **kwargs: Any) -> None:
            sent.append((topic, payload))

    cfg = replace(MqttConfig(), enabled=True, door_id="front")
    bridge = Bridge(cfg, client_factory=Client)
    declared = discovery(cfg)["homeassistant/event/facegate_front/decision/config"]["event_types"]
    record = {"event_id": "e1", "decision": "deny", "best": "alice", "best_score": 0.8}
    for reason, drill, event_type in (
        ("attack_drill", True, "attack_drill"),
        ("presentation_attack", True, "presentation_attack"),  # a drill keeps other reasons
        ("accepted", False, "granted"),
    ):
        bridge._from_daemon(
            {"type": "decision", "record": {**record, "reason": reason, "drill": drill}}
        )
        topic, payload = sent[-1]
        event = json.loads(payload)
        assert topic == "facegate/front/event" and event["event_type"] == event_type, reason
        assert event["event_type"] in declared and event["drill"] is drill


def test_rediscovery_when_home_assistant_comes_online(broker, tmp_path):
    cfg = mqtt_config(broker, tmp_path)
    server = fake_daemon(cfg)
    w = Watcher(broker)
    b = BridgeThread(cfg)
    lock_topic = "homeassistant/lock/facegate_front/lock/config"
    try:
        w.wait_for(lambda m: m.topic == lock_topic)
        mark = len(w.seen)
        w.publish("homeassistant/status", "online")
        again = w.wait_for(lambda m: m.topic == lock_topic, after=mark)
        assert again.json() == discovery(cfg)[lock_topic]
    finally:
        b.stop()
        server.close()
        w.close()


def test_the_last_will_says_offline_when_the_bridge_is_killed(broker, tmp_path):
    cfg = mqtt_config(broker, tmp_path)
    server = fake_daemon(cfg)
    path = tmp_path / "bridge.yaml"
    path.write_text(
        yaml.safe_dump({"mqtt": {k: getattr(cfg, k) for k in MqttConfig.__dataclass_fields__}})
    )
    w = Watcher(broker, topics=("facegate/front/availability",))
    proc = start(["bridge"], path)
    try:
        w.wait_for(online)
        mark = len(w.seen)
        proc.kill()  # SIGKILL: no goodbye, the broker's will speaks
        proc.wait(timeout=10)
        w.wait_for(lambda m: m.payload == b"offline", after=mark)
        late = Watcher(broker, topics=("facegate/front/availability",))
        m = late.wait_for(lambda m: True)
        assert m.retain and m.payload == b"offline"
        late.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()
        w.close()


def test_only_the_bridge_user_may_connect_to_the_daemon(tmp_path):
    # A folder the other user can reach (pytest's own are private to root).
    shared = Path(tempfile.mkdtemp(prefix="facegate-sock-"))
    shared.chmod(0o755)
    path = shared / "bridge.sock"
    server = BridgeServer(
        path, allowed_uids=frozenset({os.getuid()}), queue_max=10, state=lambda: dict(STATE)
    )
    server.start()
    try:
        mine = socket.socket(socket.AF_UNIX)
        mine.connect(str(path))
        mine.settimeout(5)
        assert json.loads(mine.recv(65536).split(b"\n")[0])["type"] == "state"
        mine.close()
        if os.getuid() != 0 or not Path("/usr/bin/python3").is_file():
            pytest.skip("needs root (to act as another user) and /usr/bin/python3")
        # Another user, who must learn nothing: the server closes at once (recv gives b"").
        probe = (
            "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
            "s.settimeout(5); sys.exit(0 if s.recv(65536) == b'' else 1)"
        )
        # The system's Python: the test's own (a venv in root's folders) is not the other user's to run.
        proc = subprocess.run(
            ["/usr/bin/python3", "-c", probe, str(path)], user=65534, group=65534, check=False
        )
        assert proc.returncode == 0
    finally:
        server.close()
        shutil.rmtree(shared)


def test_events_queue_with_a_bound_and_the_oldest_are_dropped_and_counted(tmp_path):
    server = BridgeServer(
        tmp_path / "s.sock", allowed_uids=frozenset({os.getuid()}), queue_max=3, state=dict
    )
    server.start()
    try:
        t = time.perf_counter()
        for i in range(10):
            server.publish({"type": "decision", "record": {"event_id": f"e{i}"}})
        assert time.perf_counter() - t < 1.0  # nobody reading: still no wait
        assert server.dropped == 7
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(tmp_path / "s.sock"))
        s.settimeout(5)
        got = b""
        while got.count(b"\n") < 4:
            got += s.recv(65536)
        ids = [
            json.loads(line)["record"]["event_id"]
            for line in got.splitlines()
            if b'"decision"' in line
        ]
        assert ids == ["e7", "e8", "e9"]
        s.close()
    finally:
        server.close()


def test_mqtt_settings_are_checked_with_the_config():
    with pytest.raises(ConfigError) as info:
        parse_config(
            "mqtt: {door_id: 'front/door', remote_unlock: true, tls: false, ca_file: /ca.pem, usernme: x}\n",
            "door.yaml",
        )
    text = str(info.value)
    assert "door.yaml: mqtt.usernme: unknown key; did you mean mqtt.username?" in text
    assert "mqtt.door_id: must be 1-64 letters" in text
    assert "mqtt.code_file: remote_unlock needs a code" in text
    assert "mqtt.ca_file: set, but mqtt.tls is false" in text


# --------------------------------------------------------------------------- with the daemon


@pytest.fixture
def door(broker, tmp_path, model_dir, gallery, lfw_samples):
    """Start the daemon and the bridge (both as processes) on a replay; yields a handle."""
    procs: list[subprocess.Popen[str]] = []
    watchers: list[Watcher] = []

    class Door:
        def __init__(self) -> None:
            self.tmp = tmp_path

        def start(
            self,
            plan,
            *,
            remote_unlock=False,
            bridge=True,
            snapshots=False,
            runtime="ai-edge-litert",
            **policy,
        ):
            code = tmp_path / "code"
            code.write_text(CODE + "\n")
            code.chmod(0o600)
            self.mqtt = mqtt_config(
                broker,
                tmp_path,
                remote_unlock=remote_unlock,
                code_file=str(code) if remote_unlock else None,
                snapshots=snapshots,
                tls=remote_unlock,  # the config check refuses remote unlock without TLS
            )
            self.yaml = door_yaml(
                tmp_path,
                model_dir,
                gallery,
                self.mqtt,
                runtime=runtime,
                snapshots=snapshots,
                **policy,
            )
            self.topics = Topics(self.mqtt)
            self.gallery = gallery
            if bridge:
                self.watch = Watcher(broker)
                watchers.append(self.watch)
            self.daemon = start(
                ["run", "--mock-gpio", "--replay", str(replay(tmp_path, lfw_samples, plan))],
                self.yaml,
            )
            procs.append(self.daemon)
            wait_for_file(Path(self.mqtt.socket), self.daemon)
            if bridge:
                self.bridge = start(["bridge"], self.yaml)
                procs.append(self.bridge)
                self.watch.wait_for(online)
            return self

        def send(self, topic: str, payload: str, **kw: Any) -> dict[str, Any]:
            mark = len(self.watch.seen)
            self.watch.publish(topic, payload, **kw)
            return self.watch.wait_for(lambda m: m.topic == self.topics.result, after=mark).json()

    yield Door()
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
    for w in watchers:
        w.close()


def test_each_decision_of_a_replay_is_an_event_with_its_person(door, runtime):
    # An empty porch, Colin (enrolled), the porch for longer than a track lasts, a stranger, the porch.
    d = door.start(
        [(None, 10), ("Colin_Powell_0040", 6), (None, 60), ("Hugo_Chavez_0002", 6), (None, 60)],
        runtime=runtime,
    )
    assert d.daemon.wait(timeout=120) == 0
    records = logged(d.tmp)
    assert [r["reason"] for r in records] == ["accepted", "unknown_face"], records
    assert all(r["door"] == "front" for r in records)
    events = {}
    for r in records:
        events[r["event_id"]] = d.watch.wait_for(
            lambda m, e=r["event_id"]: m.topic == d.topics.event and m.json().get("event_id") == e
        ).json()
    granted, denied = (events[r["event_id"]] for r in records)
    assert (
        granted["event_type"] == "granted"
        and granted["person"] == "colin"
        and granted["score"] > 0.5
    )
    assert denied["event_type"] == "denied_unknown" and denied["reason"] == "unknown_face"
    assert not any(m.retain for m in d.watch.on(d.topics.event))


def test_a_retained_unlock_is_ignored_and_cleared(door, broker):
    stale = Watcher(broker)
    stale.publish("facegate/front/lock/set", command(action="UNLOCK", code=CODE), retain=True)
    stale.close()
    d = door.start([(None, 400)], remote_unlock=True)
    time.sleep(2.0)
    assert logged(d.tmp) == []  # nothing was unlocked by it
    late = Watcher(broker, topics=("facegate/front/lock/set",))
    time.sleep(0.5)
    assert late.seen == []  # the bridge cleared it: it cannot act on a later start either
    late.close()


def test_a_remote_unlock_is_logged_with_its_sender_and_a_replay_of_it_is_refused(door):
    d = door.start([(None, 400)], remote_unlock=True)
    payload = command(action="UNLOCK", code=CODE, sender="alice")
    first = d.send(d.topics.lock_set, payload)
    assert first["ok"] and first["why"] == "remote_unlock"
    again = d.send(d.topics.lock_set, payload)
    assert not again["ok"] and again["why"].startswith("replayed")
    stale = d.send(
        d.topics.lock_set,
        json.dumps({**json.loads(payload), "nonce": "x1", "ts": time.time() - 3600}),
    )
    assert not stale["ok"] and stale["why"].startswith("stale")
    records = logged(d.tmp)
    assert [(r["reason"], r["decision"], r["person"]) for r in records] == [
        ("remote_unlock", "unlock", "alice via door")
    ]
    assert d.watch.wait_for(
        lambda m: m.topic == d.topics.event and m.json().get("event_type") == "remote_unlock"
    )


def test_wrong_codes_have_their_own_lockout(door):
    """Wrong codes do not lock faces out (lockout_attempts 2 here); five in a row refuse even
    the right code, as remote_locked_out, a lockout event; kept in remote.json for a restart."""
    from edge.policy import REMOTE_WRONG_IN_ROW

    d = door.start([(None, 400)], remote_unlock=True, lockout_attempts=2, lockout_s=60.0)
    codes = [f"wrong{i}" for i in range(REMOTE_WRONG_IN_ROW)] + [CODE]
    reasons = [d.send(d.topics.lock_set, command(action="UNLOCK", code=c))["why"] for c in codes]
    assert reasons == ["wrong_code"] * REMOTE_WRONG_IN_ROW + ["remote_locked_out"]
    assert [r["reason"] for r in logged(d.tmp)] == reasons
    assert not any(r["decision"] == "unlock" for r in logged(d.tmp))
    event = d.watch.wait_for(
        lambda m: m.topic == d.topics.event and m.json().get("reason") == "remote_locked_out"
    ).json()
    assert event["event_type"] == "lockout" and event["person"] is None
    saved = json.loads(d.gallery.with_name("remote.json").read_text())["remote_unlock"]
    assert saved["wrong_in_row"] == REMOTE_WRONG_IN_ROW


@pytest.mark.parametrize(
    ("sender", "user", "person"),
    [
        ("alice", "door", "alice via door"),
        ("x" * 64, "door", "x" * 64 + " via door"),  # the user is never cut off
        ("x" * 100, "door", "x" * 64 + " via door"),
        ("eve\nvia admin\u202e\u0000", "door", "evevia admin via door"),
        ("\n\t", "door", "door"),
        (None, None, "mqtt"),
        (42, "door", "door"),
    ],
)
def test_a_remote_command_names_its_sender_printable_and_bounded_and_its_mqtt_user(
    sender, user, person
):
    from edge.bridge.mqtt import command_sender

    got = command_sender(sender, user)
    assert got == person and got.isprintable()


def test_remote_unlock_off_refuses_every_unlock(door):
    d = door.start([(None, 400)])
    got = d.send(d.topics.lock_set, command(action="UNLOCK", code=CODE))
    assert not got["ok"] and got["why"] == "remote unlock is off"
    assert d.send(d.topics.lock_set, "LOCK")["ok"]  # locking is always allowed
    assert logged(d.tmp) == []


def test_face_unlock_switched_off_from_mqtt_refuses_faces(door):
    d = door.start([(None, 200), ("Colin_Powell_0040", 6), (None, 40)])  # 10 s for the switch
    assert d.send(d.topics.face_set, "OFF")["ok"]
    d.watch.wait_for(lambda m: m.topic == d.topics.face_state and m.payload == b"OFF")
    assert d.daemon.wait(timeout=120) == 0
    records = logged(d.tmp)
    assert [(r["reason"], r["decision"], r["best"]) for r in records] == [
        ("face_unlock_off", "deny", "colin")
    ]
    # Kept beside the gallery: a restart does not switch it back on.
    assert json.loads(d.gallery.with_name("switches.json").read_text()) == {"face_unlock": False}


def test_the_door_decides_normally_with_the_broker_down(door, broker):
    broker.stop()
    d = door.start([(None, 5), ("Colin_Powell_0040", 6), (None, 30)], bridge=False)
    bridge = start(["bridge"], d.yaml)  # it cannot reach the broker; the door must not care
    try:
        assert d.daemon.wait(timeout=120) == 0
        assert [(r["reason"], r["decision"]) for r in logged(d.tmp)] == [("accepted", "unlock")]
    finally:
        stop(bridge)


def test_garbage_on_the_socket_drops_the_connection_not_the_daemon(tmp_path):
    server = BridgeServer(
        tmp_path / "s.sock",
        allowed_uids=frozenset({os.getuid()}),
        queue_max=10,
        state=lambda: dict(STATE),
    )
    server.start()
    try:
        for garbage in (
            b"not json\n",
            b"[1, 2]\n",
            b'{"type": "command", "action": "format_disk"}\n' + b"x" * 10 + b"\n",
        ):
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(tmp_path / "s.sock"))
            s.sendall(garbage)
            s.settimeout(5)
            try:
                while s.recv(65536):
                    pass  # the state, then the server closes on the bad line
            except TimeoutError:
                pass  # an unknown command is ignored, the connection kept
            s.close()
        assert server.commands() == []  # nothing unknown reached the daemon's loop
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(tmp_path / "s.sock"))
        s.sendall(b'{"type": "command", "id": 1, "action": "lock"}\n')
        deadline = time.monotonic() + 5
        got: list[dict[str, Any]] = []
        while not got and time.monotonic() < deadline:
            got = server.commands()
            time.sleep(0.02)
        assert got == [{"type": "command", "id": 1, "action": "lock"}]  # still serving
        s.close()
    finally:
        server.close()


def test_a_code_file_others_can_read_is_refused_before_ready(tmp_path):
    from edge.bridge.commands import read_code

    code = tmp_path / "code"
    code.write_text(CODE + "\n")
    code.chmod(0o644)
    with pytest.raises(
        ConfigError, match=r"code: mqtt.code_file: others can read it \(mode 0644\)"
    ):
        read_code(code)
    code.chmod(0o600)
    assert read_code(code) == CODE
    code.write_text("12\n")
    with pytest.raises(ConfigError, match="at least 6 characters"):
        read_code(code)
    code.write_text("24681\n")  # 5 characters: guessed within a few days of the wrong-code budget
    with pytest.raises(ConfigError) as info:
        read_code(code)
    assert str(info.value) == (
        f"{code}: mqtt.code_file: the code must be at least 6 characters (got 5): "
        "a short code is guessed within the wrong-code budget"
    )


def test_a_socket_path_that_is_a_symlink_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    link = tmp_path / "bridge.sock"
    link.symlink_to(target)
    server = BridgeServer(link, allowed_uids=frozenset({os.getuid()}), queue_max=10, state=dict)
    with pytest.raises(ConfigError, match="exists and is not a socket"):
        server.start()
    assert target.read_text() == ""


def test_the_acl_keeps_other_users_out_of_the_doors_topics(broker, tmp_path):
    cfg = mqtt_config(broker, tmp_path)
    server = fake_daemon(cfg)
    guest = Watcher(broker, user="guest", topics=("facegate/#", "homeassistant/#"))
    ha = Watcher(broker)
    b = BridgeThread(cfg)
    try:
        ha.wait_for(online)
        ha.wait_for(lambda m: m.topic == "facegate/front/face_unlock/state")
        guest.publish("facegate/front/lock/set", "LOCK")  # the broker drops it: not in the ACL
        time.sleep(0.5)
        assert guest.seen == []
        assert all(m.payload != b"LOCK" for m in ha.on("facegate/front/lock/set"))
    finally:
        b.stop()
        server.close()
        guest.close()
        ha.close()


def test_the_visitors_snapshot_is_published_only_when_asked(door):
    d = door.start([(None, 60), ("Colin_Powell_0040", 6), (None, 40)], snapshots=True)
    assert d.daemon.wait(timeout=120) == 0
    m = d.watch.wait_for(lambda m: m.topic == "facegate/front/snapshot")
    assert m.payload[:2] == b"\xff\xd8" and not m.retain  # a JPEG, not kept on the broker


@pytest.mark.parametrize(
    ("text", "face_unlock"),
    [
        (None, True),
        ('{"face_unlock": true}\n', True),
        ('{"face_unlock": false}\n', False),
        ("garbage", False),
        ('{"face_unlock": "yes"}', False),
    ],
)
def test_the_face_unlock_switch_survives_a_restart_and_an_unreadable_one_is_off(
    tmp_path, text, face_unlock
):
    from edge.bridge.commands import RemoteCommands
    from edge.bridge.link import DaemonLink, switches_path
    from edge.policy import Policy

    cfg = load_config()
    cfg = replace(cfg, gallery=replace(cfg.gallery, path=str(tmp_path / "gallery.json")))
    if text is not None:
        switches_path(cfg).write_text(text)
    policy = Policy(cfg.policy, cfg.match)
    link = DaemonLink(
        cfg,
        server=BridgeServer(tmp_path / "s.sock", allowed_uids=frozenset(), queue_max=1, state=dict),
        remote=RemoteCommands(code=None, max_age_s=30.0),
        policy=policy,
        door=None,
        camera=None,
        act=lambda d, crop: None,
        clock=time.monotonic,
        wall=time.time,
    )
    assert link.policy.face_unlock is face_unlock


def test_a_missing_or_world_readable_password_file_is_one_line_before_connecting(broker, tmp_path):
    cfg = mqtt_config(broker, tmp_path)
    path = Path(cfg.password_file or "")
    path.chmod(0o644)
    with pytest.raises(ConfigError) as info:
        Bridge(cfg)
    assert (
        str(info.value)
        == f"{path}: mqtt.password_file: any user can read it (mode 0644); run chmod o-r {path}"
    )
    path.unlink()
    with pytest.raises(ConfigError, match=r"mqtt-password: mqtt.password_file: no such file$"):
        Bridge(cfg)


# --------------------------------------------------------------------------- one message cannot kill it


class StandIn:
    """A stand-in paho client: records what the bridge publishes; no broker."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[tuple[str, bytes, bool]] = []
        self.loop_error: Exception | None = None

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None  # will_set, reconnect_delay_set, connect_async, ...

    def is_connected(self) -> bool:
        return True

    def publish(self, topic: str, payload: Any, **kwargs: Any) -> Any:
        self.sent.append(
            (
                topic,
                payload if isinstance(payload, bytes) else str(payload).encode(),
                kwargs.get("retain", False),
            )
        )

        class Info:
            def wait_for_publish(self, timeout: float = 0.0) -> None:
                pass

        return Info()

    def loop_forever(self, **kwargs: Any) -> None:
        if self.loop_error is not None:
            raise self.loop_error
        time.sleep(0.2)


class Msg:
    def __init__(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.topic, self.payload, self.retain = topic, payload, retain


def stand_in_bridge(tmp_path: Path, **kw: Any) -> tuple[Bridge, StandIn]:
    made: list[StandIn] = []

    def factory(*args: Any, **kwargs: Any) -> StandIn:
        made.append(StandIn())
        return made[-1]

    cfg = replace(
        MqttConfig(), enabled=True, door_id="front", socket=str(tmp_path / "none.sock"), **kw
    )
    return Bridge(cfg, client_factory=factory, reconnect_s=0.05), made[0]


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b'{"action":"LOCK","ts":Infinity}', "not JSON"),
        (b'{"action":"UNLOCK","ts":NaN,"code":"2468"}', "not JSON"),
        (b'{"action":"UNLOCK","ts":-Infinity}', "not JSON"),
        (b"[" * 100000 + b"]" * 100000, "bytes, more than"),
        (b'{"action":' + b"[" * 400 + b"]" * 400 + b"}", "action: not a string"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "bytes, more than"),
        (b'{"action":"UNLOCK","code":' + b'"' + b"9" * 5_000_000 + b'"}', "bytes, more than"),
        (b'{"action":"UNLOCK","code":2468}', "code: not a string"),
        (b'{"action":"UNLOCK","ts":true}', "ts: not a finite number"),
        (b'{"action":"UNLOCK","ts":"now"}', "ts: not a finite number"),
        (b'{"action":"UNLOCK","nonce":["x"]}', "nonce: not a string"),
        (b'{"action":"UNLOCK","ts":1e999}', "ts: not a finite number"),
    ],
)
def test_a_lock_command_no_client_would_send_is_refused_before_the_daemon(payload, why):
    from edge.bridge.mqtt import parse_lock_command

    body, reason = parse_lock_command(payload)
    assert body is None and why in reason


def test_a_well_formed_lock_command_keeps_its_fields():
    from edge.bridge.mqtt import parse_lock_command

    body, why = parse_lock_command(
        b'{"action":"UNLOCK","code":"2468","ts":1700000000.5,"nonce":"n1","sender":"ha","x":[1]}'
    )
    assert why == "" and body == {
        "action": "UNLOCK",
        "code": "2468",
        "ts": 1700000000.5,
        "nonce": "n1",
        "sender": "ha",
    }
    assert parse_lock_command(b"LOCK") == ({"action": "LOCK"}, "")


def test_hostile_messages_never_escape_the_callback(tmp_path):
    bridge, client = stand_in_bridge(tmp_path)
    t = bridge.topics
    for payload in (
        b'{"action":"LOCK","ts":Infinity}',
        b'{"action":"LOCK"' + b"[" * 100000,
        b"\xff\xfe" * 300,
        b'{"action":"UNLOCK","code":"x","ts":1}',  # valid, but no daemon: dropped, not raised
    ):
        bridge._on_message(client, None, Msg(t.lock_set, payload))
    bridge._on_message(client, None, Msg(t.face_set, b"ON"))

    # even a failure inside the bridge's own code is one warning, not the end of paho's thread
    def explode(cmd: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    bridge._to_daemon = explode
    bridge._on_message(client, None, Msg(t.lock_set, b"LOCK"))
    bridge._on_connect(client, None, None, object(), None)  # no is_failure: would raise


def test_if_the_mqtt_loop_ever_dies_the_bridge_exits_non_zero(tmp_path):
    bridge, client = stand_in_bridge(tmp_path)
    client.loop_error = RuntimeError("paho's thread died")
    done: list[int] = []
    th = threading.Thread(target=lambda: done.append(bridge.run()))
    th.start()
    th.join(timeout=10)
    assert done == [1] and bridge.mqtt_failed


def test_a_household_answer_never_reaches_the_broker_whenever_it_comes(tmp_path):
    bridge, client = stand_in_bridge(tmp_path)
    t = bridge.topics
    # a web request that timed out: its answer (a face JPEG, the rules) arrives late
    late = {"type": "result", "id": 7, "ok": True, "why": "", "data": {"jpeg_b64": "AAAA"}}
    bridge._from_daemon(late)
    assert not [m for m in client.sent if m[0] == t.result]
    # an MQTT command's answer is published once
    bridge._send = lambda msg: True
    bridge._to_daemon({"action": "lock"})
    ident = bridge._door_ids[-1]
    bridge._from_daemon({"type": "result", "id": ident, "ok": True, "why": "locked"})
    bridge._from_daemon({"type": "result", "id": ident, "ok": True, "why": "again"})
    results = [json.loads(m[1]) for m in client.sent if m[0] == t.result]
    assert [r["why"] for r in results] == ["locked"]


def test_a_refused_face_names_nobody_and_its_nearest_match_has_its_own_field(tmp_path):
    bridge, client = stand_in_bridge(tmp_path)
    record = {"event_id": "e1", "best": "alice", "best_score": 0.089, "person": "alice"}
    for reason, person, nearest in (
        ("unknown_face", None, "alice"),
        ("presentation_attack", None, "alice"),
        ("accepted", "alice", None),
    ):
        bridge._from_daemon({"type": "decision", "record": {**record, "reason": reason}})
        event = json.loads(client.sent[-1][1])
        assert (event["person"], event["nearest"]) == (person, nearest), reason


def test_without_a_door_contact_the_door_sensor_is_removed_not_left_unknown(tmp_path):
    with_contact = discovery(replace(MqttConfig(), enabled=True, door_id="front"))
    without = discovery(replace(MqttConfig(), enabled=True, door_id="front"), door_contact=False)
    key = "homeassistant/binary_sensor/facegate_front/door/config"
    assert with_contact[key]["device_class"] == "door" and without[key] == {}
    bridge, client = stand_in_bridge(tmp_path)
    bridge.door_contact = False
    bridge._publish_discovery()
    assert (key, b"", True) in client.sent


def test_a_clean_stop_says_offline_not_problem(tmp_path):
    path = tmp_path / "d.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    bridge, client = stand_in_bridge(tmp_path)
    bridge.cfg = replace(bridge.cfg, socket=str(path))
    th = threading.Thread(target=bridge.run)
    th.start()
    conn, _ = server.accept()
    time.sleep(0.2)
    bridge.stop()
    th.join(timeout=10)
    conn.close()
    server.close()
    t = bridge.topics
    assert (t.availability, b"offline", True) in client.sent
    assert not [m for m in client.sent if m[0] == t.problem_state and m[1] == b"ON"]


def test_refused_connections_are_one_log_line_per_interval_with_a_count(tmp_path, caplog):
    """A local user connecting in a loop once wrote a line per refusal (3,000 lines in 8 s)."""
    import logging

    from edge.bridge import server as server_module

    now = [1000.0]
    server = BridgeServer(
        tmp_path / "s.sock", allowed_uids=frozenset(), queue_max=1, state=dict, clock=lambda: now[0]
    )
    caplog.set_level(logging.WARNING, logger="edge.bridge.server")

    def knock(n: int) -> None:
        before = server.refusals.total
        for _ in range(n):
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(tmp_path / "s.sock"))
        deadline = time.monotonic() + 10
        while server.refusals.total < before + n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.refusals.total == before + n

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "edge.bridge.server"]

    server.start()
    try:
        knock(500)
        uid = os.getuid()
        assert lines() == [
            f"bridge socket: refused a connection from uid {uid} (not mqtt.bridge_user)"
        ]
        now[0] += server_module.REFUSED_LOG_INTERVAL_S - 1
        knock(100)
        assert len(lines()) == 1  # still within the interval: counted, not logged
        now[0] += 1
        knock(1)
        assert lines()[1] == (
            f"bridge socket: refused a connection from uid {uid} (not mqtt.bridge_user); "
            f"599 more connections refused in the 60 s before (uid {uid})"
        )
        knock(7)
    finally:
        server.close()
    assert lines()[2:] == [
        f"bridge socket: 7 more connections refused in the 60 s before (uid {uid})"
    ]


def _templates(o: Any, where: str = "") -> list[tuple[str, str]]:
    """Every Jinja template in a discovery payload, with where it is."""
    if isinstance(o, dict):
        return [t for k, v in o.items() for t in _templates(v, f"{where}.{k}")]
    if isinstance(o, list):
        return [t for i, v in enumerate(o) for t in _templates(v, f"{where}[{i}]")]
    return [(where, o)] if isinstance(o, str) and ("{{" in o or "{%" in o) else []


CODES = ['12"34"56', "ab\\cd\\ef", "çödé✓🔑42", "open sesame 7", "x" * 64, "'; DROP", "</script>"]


def test_every_discovery_template_renders_in_home_assistants_sandbox_to_what_the_bridge_accepts(
    monkeypatch,
):
    """HA renders templates in an ImmutableSandboxedEnvironment whose ranges stop at 100,000.

    ``range(1, 1000000000)`` raised "Range too big" there, and a code with a quote or a
    backslash, pasted raw into the JSON, broke it: every template is rendered here as HA
    does, for awkward codes, and must give JSON the bridge's own parser accepts, code intact.
    """
    from datetime import UTC, datetime

    import jinja2.sandbox

    from edge.bridge.mqtt import parse_lock_command

    monkeypatch.setattr(jinja2.sandbox, "MAX_RANGE", 100_000)  # homeassistant.helpers.template
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    env.globals["now"] = lambda: datetime.now(UTC)  # HA's global; `random` is Jinja's filter
    cfg = replace(MqttConfig(), door_id="back", remote_unlock=True, code_file="/x", snapshots=True)
    found = [t for payload in discovery(cfg).values() for t in _templates(payload)]
    assert [where for where, _ in found] == [".command_template"]  # add a check for any new one
    template = env.from_string(found[0][1])
    with pytest.raises(OverflowError, match="Range too big"):  # the sandbox really is strict
        env.from_string("{{ range(1, 1000000000) | random }}").render()
    for action in ("LOCK", "UNLOCK", "OPEN"):
        for code in [*CODES, None]:
            text = template.render(value=action, code=code)
            body = json.loads(text)
            assert body["action"] == action and body["code"] == (code or ""), text
            parsed, why = parse_lock_command(text.encode())
            assert parsed is not None, why
            assert parsed["action"] == action and parsed["code"] == (code or "")
            assert isinstance(parsed["ts"], float) and parsed["nonce"]
