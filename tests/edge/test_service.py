"""The daemon end to end on replays: it opens for the enrolled, and every fault leaves it locked.

Relay state is read from gpiozero's MockFactory pins; systemd messages from a
real UNIX datagram socket.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from fakes import PREPROCESSING, FakeClock, FakePicamera2, backlit_door
from gpiozero.pins.mock import MockFactory

from edge.camera.replay import ReplayCamera
from edge.decisions import FIELDS, log_files, read_records
from edge.enroll import add_to_gallery, from_images
from edge.errors import CameraError, ConfigError, ExitCode, GalleryError
from edge.notify import Notifier
from edge.pipeline import build_pipeline
from edge.service import build_service
from edge.types import Frame, Reason

PIN = 17


@pytest.fixture
def door_config(config, tmp_path):
    """The test config with the gallery and logs in tmp_path and a fixed threshold.

    Liveness is off here: these tests replay LFW photographs (which are photos)
    to test the daemon's other duties; tests/edge/test_service_liveness.py has it on.
    """
    return replace(
        config,
        liveness=replace(config.liveness, enabled=False),
        gallery=replace(config.gallery, path=str(tmp_path / "gallery.json")),
        log=replace(
            config.log,
            decisions=str(tmp_path / "decisions.jsonl"),
            snapshots_dir=str(tmp_path / "snaps"),
        ),
        match=replace(config.match, min_cosine_similarity=0.5, min_margin=0.05),
        policy=replace(
            config.policy, frames=3, min_matching_frames=2, min_face_px=60, lockout_attempts=100
        ),
    )


@pytest.fixture
def enrolled(door_config, lfw_samples):
    """Colin Powell and Serena Williams enrolled from one photo each."""
    p = build_pipeline(door_config)
    for name, stem in (("colin", "Colin_Powell_0038"), ("serena", "Serena_Williams_0001")):
        good = from_images(p, [lfw_samples[stem]], door_config.policy)
        add_to_gallery(door_config, name, good, p.embedder)
    return door_config


def relay_history(pins: MockFactory) -> list[bool]:
    return [bool(s.state) for s in pins.pin(PIN).states]


def service_for(config, frames, pins, **kw):
    """The daemon on a replay paced at 10 fps of virtual time: timing never depends on machine load."""
    if "camera" not in kw:
        clock = kw.setdefault("clock", FakeClock())
        kw["camera"] = ReplayCamera(frames, fps=10, clock=clock, sleep=clock.sleep)
    return build_service(config, pin_factory=pins, **kw)


def records(config) -> list[dict]:
    return list(read_records(log_files(config.log.decisions)))


def test_enrolled_person_unlocks_and_stranger_does_not(enrolled, lfw_samples, tmp_path):
    pins = MockFactory()
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((250, 250, 3), 90, np.uint8))
    colin, stranger = lfw_samples["Colin_Powell_0040"], lfw_samples["Hugo_Chavez_0002"]
    # virtual time: 10 fps, and enough empty frames between people for the track to end
    clock = FakeClock()
    frames = [colin] * 3 + [blank] * 30 + [stranger] * 3 + [blank] * 30
    svc = service_for(
        enrolled,
        frames,
        pins,
        camera=ReplayCamera(frames, fps=10, clock=clock, sleep=clock.sleep),
        clock=clock,
    )
    assert svc.run() == ExitCode.OK
    recs = records(enrolled)
    assert [(r["decision"], r["reason"], r["person"]) for r in recs] == [
        ("unlock", Reason.ACCEPTED, "colin"),
        ("deny", Reason.UNKNOWN_FACE, recs[1]["person"]),
    ]
    assert recs[0]["sources"] == [str(colin)] * 2 and recs[0]["frames_matched"] == 2
    assert recs[1]["frames_used"] == 3 and recs[1]["best_score"] < 0.5
    assert recs[0]["snapshot"] and Path(recs[0]["snapshot"]).is_file()
    history = relay_history(pins)
    assert history[0] is False and history.count(True) == 1 and history[-1] is False


def test_relay_is_off_at_start_and_after_the_run(enrolled, lfw_samples):
    pins = MockFactory()
    svc = service_for(enrolled, [lfw_samples["Colin_Powell_0040"]] * 3, pins)
    assert relay_history(pins) == [False]
    svc.run()
    assert relay_history(pins)[-1] is False


def test_corrupt_frames_are_skipped_and_logged(enrolled, lfw_samples, tmp_path, caplog):
    bad = tmp_path / "torn.jpg"
    bad.write_bytes(lfw_samples["Colin_Powell_0040"].read_bytes()[:300])
    pins = MockFactory()
    svc = service_for(
        enrolled,
        [bad, lfw_samples["Colin_Powell_0040"], bad, lfw_samples["Colin_Powell_0040"]],
        pins,
    )
    assert svc.run() == ExitCode.OK
    assert svc.stats.corrupt_frames == 2 and svc.stats.unlocks == 1
    assert "skipping a corrupt frame" in caplog.text and str(bad) in caplog.text


def test_decision_log_disk_full_keeps_the_door_locked(enrolled, lfw_samples, caplog):
    cfg = replace(enrolled, log=replace(enrolled.log, decisions="/dev/full", snapshots_dir=None))
    pins = MockFactory()
    svc = service_for(cfg, [lfw_samples["Colin_Powell_0040"]] * 3, pins)
    assert svc.run() == ExitCode.LOG
    assert True not in relay_history(pins)  # an unloggable unlock never happens
    assert "No space left on device" in caplog.text and "door stays locked" in caplog.text


def test_pipeline_error_relocks_and_goes_on(enrolled, lfw_samples, caplog):
    pins = MockFactory()
    svc = service_for(enrolled, [lfw_samples["Colin_Powell_0040"]] * 4, pins)
    real = svc.pipeline.process
    calls = {"n": 0}

    def flaky(frame, face):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("interpreter exploded")
        return real(frame, face)

    svc.pipeline.process = flaky
    assert svc.run() == ExitCode.OK
    assert svc.stats.errors == 1 and "pipeline error, door stays locked" in caplog.text
    assert svc.stats.unlocks == 1  # the next frames still work


def test_persistent_pipeline_errors_end_the_process_locked(enrolled, lfw_samples):
    pins = MockFactory()
    svc = service_for(enrolled, [lfw_samples["Colin_Powell_0040"]] * 40, pins)
    svc.pipeline.detect = lambda frame: (_ for _ in ()).throw(RuntimeError("broken"))
    assert svc.run() == ExitCode.FAILURE
    assert True not in relay_history(pins)


class _FlakyCamera:
    """A live camera that fails to open twice, delivers frames, drops, and comes back."""

    name = "flaky"

    def __init__(self, frame_path: Path, script: list[str]) -> None:
        self.frame = Frame(
            cv2.cvtColor(cv2.imread(str(frame_path)), cv2.COLOR_BGR2RGB), source=str(frame_path)
        )
        self.script = script  # "open-fail", "frame", "drop", "end"
        self.opened = 0

    def open(self) -> None:
        if self.script and self.script[0] == "open-fail":
            self.script.pop(0)
            raise CameraError("camera 0: cannot open (unplugged?)")
        self.opened += 1

    def read(self) -> Frame:
        from edge.camera import EndOfStream

        step = self.script.pop(0) if self.script else "end"
        if step == "frame":
            return self.frame
        if step == "end":
            raise EndOfStream("done")
        raise CameraError("camera 0: no frame (unplugged?)")

    def close(self) -> None:
        pass


def test_camera_missing_at_start_and_lost_mid_run_reconnects_locked(enrolled, lfw_samples, caplog):
    from edge.camera.reconnect import ReconnectingCamera

    cam = _FlakyCamera(
        lfw_samples["Hugo_Chavez_0002"],
        ["open-fail", "open-fail", "frame", "drop", "frame", "frame"],
    )
    sleeps: list[float] = []
    wrapped = ReconnectingCamera(
        lambda: cam, initial_backoff=0.5, max_backoff=4, sleep=sleeps.append
    )
    pins = MockFactory()
    svc = service_for(enrolled, [], pins, camera=wrapped)
    assert svc.run() == ExitCode.OK
    assert sleeps == [0.5, 1.0, 0.5]  # backed off, never spun
    assert svc.stats.frames == 3 and True not in relay_history(pins)
    assert "unplugged" in caplog.text


def test_camera_that_never_comes_back_exits_with_the_camera_code(enrolled):
    from edge.camera.reconnect import ReconnectingCamera

    class Dead:
        name = "dead"

        def open(self):
            raise CameraError("camera 0: cannot open")

        def read(self):
            raise AssertionError

        def close(self):
            pass

    clock = FakeClock()
    cam = ReconnectingCamera(
        Dead, initial_backoff=1, max_backoff=2, give_up_after=5, clock=clock, sleep=clock.sleep
    )
    pins = MockFactory()
    assert service_for(enrolled, [], pins, camera=cam).run() == ExitCode.CAMERA
    assert True not in relay_history(pins)


def test_stop_mid_pulse_relocks_at_once(enrolled, lfw_samples):
    cfg = replace(enrolled, lock=replace(enrolled.lock, unlock_s=30.0))
    pins = MockFactory()
    frames = [lfw_samples["Colin_Powell_0040"]] * 2000
    svc = service_for(cfg, frames, pins)
    t = threading.Thread(target=svc.run)
    t.start()
    deadline = time.monotonic() + 60
    while not pins.pin(PIN).state and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pins.pin(PIN).state and svc.stats.unlocks <= 1  # energised: the 30 s pulse is running
    svc.stop()  # what the SIGTERM handler calls
    assert not pins.pin(PIN).state  # off at once, not at the end of the pulse
    t.join(30)
    assert not t.is_alive() and not pins.pin(PIN).state


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    yield path, sock
    sock.close()


def drain(sock) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except (TimeoutError, BlockingIOError):
            return out


def test_ready_after_first_frame_and_watchdog_only_while_frames_flow(
    enrolled, lfw_samples, notify_socket, monkeypatch
):
    path, sock = notify_socket
    monkeypatch.setenv("WATCHDOG_USEC", str(200_000))  # ping every 0.1 s of (virtual) time
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    clock = FakeClock()
    stall_after = enrolled.service.watchdog_stall_s
    frames = [lfw_samples["Hugo_Chavez_0002"]] * 5

    class StallingCamera(ReplayCamera):
        def read(self):
            try:
                return super().read()
            except Exception:
                clock.advance(
                    stall_after + 1
                )  # the pipeline stalls: no frame for longer than stall_after
                svc.watchdog.tick()
                svc.stop()
                raise

    cam = StallingCamera(frames, fps=10, clock=clock, sleep=clock.sleep)
    svc = service_for(
        enrolled, frames, MockFactory(), camera=cam, clock=clock, notifier=Notifier(str(path))
    )
    svc.run()
    msgs = drain(sock)
    assert msgs[0].startswith("STATUS=starting")
    ready = [i for i, m in enumerate(msgs) if m.startswith("READY=1")]
    assert len(ready) == 1
    pings = [i for i, m in enumerate(msgs) if m == "WATCHDOG=1"]
    assert 2 <= len(pings) <= 5 and all(i > ready[0] for i in pings)
    assert msgs[-1] == "STOPPING=1"
    assert msgs[pings[-1] + 1 :] == ["STOPPING=1"]  # no ping after the stall


def _run_daemon(config_path: Path, replay: Path, env_extra: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, **env_extra}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge",
            "-c",
            str(config_path),
            "-v",
            "run",
            "--mock-gpio",
            "--replay",
            str(replay),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _write_config(cfg, path: Path) -> Path:
    import yaml

    data = {
        "runtime": {"backend": cfg.runtime.backend, "threads": 1},
        "models": {"dir": cfg.models.dir},
        "match": {"min_cosine_similarity": 0.5, "min_margin": 0.05},
        "policy": {"frames": 3, "min_matching_frames": 2, "min_face_px": 60},
        "liveness": {"enabled": False},
        "gallery": {"path": cfg.gallery.path},
        "camera": {"fps": 20.0},
        "log": {"decisions": cfg.log.decisions},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def _replay_dir(tmp_path: Path, lfw_samples, n: int) -> Path:
    d = tmp_path / "replay"
    d.mkdir()
    faces = [lfw_samples["Colin_Powell_0040"], lfw_samples["Hugo_Chavez_0002"]]
    blank = np.full((250, 250, 3), 90, np.uint8)
    for i in range(n):  # alternate people with gaps, so decisions keep coming
        name = d / f"{i:06d}.jpg"
        if (i // 3) % 20 < 2:
            name.write_bytes(faces[(i // 60) % 2].read_bytes())
        else:
            cv2.imwrite(str(name), blank)
    return d


def test_sigterm_stops_cleanly_and_says_stopping(enrolled, lfw_samples, tmp_path, notify_socket):
    path, sock = notify_socket
    cfg = _write_config(enrolled, tmp_path / "door.yaml")
    proc = _run_daemon(cfg, _replay_dir(tmp_path, lfw_samples, 4000), {"NOTIFY_SOCKET": str(path)})
    got: list[str] = []
    deadline = time.monotonic() + 120
    while not any(m.startswith("READY=1") for m in got) and time.monotonic() < deadline:
        got += drain(sock)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    got += drain(sock)
    assert proc.returncode == ExitCode.OK, err[-2000:]
    assert got[-1] == "STOPPING=1"
    assert "Traceback" not in err and "stopped:" in err


def test_sigkill_loses_no_logged_decision(enrolled, lfw_samples, tmp_path):
    cfg = _write_config(enrolled, tmp_path / "door.yaml")
    proc = _run_daemon(cfg, _replay_dir(tmp_path, lfw_samples, 4000), {})
    log_path = Path(enrolled.log.decisions)
    deadline = time.monotonic() + 120
    while (
        not log_path.exists() or log_path.read_text().count("\n") < 3
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    _, err = proc.communicate(timeout=30)
    text = log_path.read_text()
    lines = text.splitlines()
    assert len(lines) >= 3 and text.endswith("\n")  # whole lines only, even killed mid-run
    records = [json.loads(line) for line in lines]
    assert all(list(r) == list(FIELDS) for r in records)  # every record whole
    logged = [r["event_id"] for r in records]
    assert len(set(logged)) == len(logged)
    # The daemon says "decision <id>: ..." only after the record is fsynced and the door has
    # acted: every decision it acted on before the kill is in the log.
    acted = re.findall(r"decision (\S+): (?:UNLOCK|deny) ", err)
    assert len(acted) >= 2 and set(acted) <= set(logged), (acted, logged)


def test_relay_off_command_forces_the_pin_low():
    """systemd's ExecStopPost runs `facegate relay-off` after any exit, SIGKILL included."""
    from edge.cli import relay_off

    pins = MockFactory()
    pin = pins.pin(PIN)
    pin.function = "output"
    pin.state = True  # as a killed process might have left it mid-pulse
    relay_off(replace_lock_pin(PIN), pin_factory=pins)
    assert pin.state is False or pin.state == 0


def replace_lock_pin(pin):
    from edge.config import load_config

    cfg = load_config()
    return replace(cfg.lock, relay_pin=pin)


def test_missing_or_foreign_gallery_refuses_to_start(config, tmp_path, lfw_samples):
    missing = replace(config, gallery=replace(config.gallery, path=str(tmp_path / "none.json")))
    with pytest.raises(GalleryError, match="no gallery"):
        build_service(
            missing,
            pin_factory=MockFactory(),
            camera=ReplayCamera([lfw_samples["Colin_Powell_0040"]]),
        )
    from edge.gallery import Gallery

    other = Gallery.empty("0" * 64, 128, PREPROCESSING)
    other.save(tmp_path / "g.json")
    foreign = replace(config, gallery=replace(config.gallery, path=str(tmp_path / "g.json")))
    with pytest.raises(GalleryError, match="enroll everyone again"):
        build_service(
            foreign,
            pin_factory=MockFactory(),
            camera=ReplayCamera([lfw_samples["Colin_Powell_0040"]]),
        )


@pytest.mark.parametrize(
    "field, change",
    [
        ("color", lambda card: card["input"].update(color="BGR")),
        ("normalization", lambda card: card["input"]["normalization"].update(std=2.0)),
        ("crop", lambda card: card["crop"]["template"]["nose_tip"].__setitem__(1, 80.0)),
    ],
)
def test_a_card_whose_preprocessing_changed_refuses_the_old_templates(
    enrolled, model_dir, tmp_path, lfw_samples, field, change
):
    """Same weights (same sha256), another colour order, normalisation or crop: no unlock from old templates."""
    import shutil

    models = tmp_path / "models"
    models.mkdir()
    for f in model_dir.iterdir():
        if f.is_file() and f.suffix in (".tflite", ".json", ".onnx"):
            shutil.copyfile(f, models / f.name)
    card_file = models / (enrolled.models.embedder + ".card.json")
    card = json.loads(card_file.read_text())
    change(card)
    card_file.write_text(json.dumps(card))
    changed = replace(enrolled, models=replace(enrolled.models, dir=str(models)))
    pins = MockFactory()
    with pytest.raises(GalleryError) as info:
        service_for(changed, [lfw_samples["Colin_Powell_0040"]] * 5, pins)
    msg = str(info.value)
    assert (
        "\n" not in msg
        and f"preprocessing.{field}: enrolled with" in msg
        and "enroll everyone again" in msg
    )
    assert relay_history(pins) in ([], [False])  # the relay was never energised


def test_snapshot_retention_runs_from_the_daemon(enrolled, lfw_samples, tmp_path):
    import os as _os

    snaps = Path(enrolled.log.snapshots_dir)
    old = snaps / "2000-01-01" / "ancient.jpg"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x")
    _os.utime(old, (946684800, 946684800))  # year 2000: far past snapshot_days
    pins = MockFactory()
    svc = service_for(enrolled, [lfw_samples["Colin_Powell_0040"]] * 3, pins)
    svc.run()
    assert not old.exists()
    assert any(snaps.rglob("*.jpg"))  # today's snapshot was kept


def test_snapshot_retention_runs_when_nobody_comes_to_the_door(enrolled, tmp_path):
    """Retention is not only a side effect of a decision: a quiet door prunes too."""
    import os as _os

    snaps = Path(enrolled.log.snapshots_dir)
    old = snaps / "2000-01-01" / "ancient.jpg"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x")
    _os.utime(old, (946684800, 946684800))
    empty = tmp_path / "empty.jpg"
    cv2.imwrite(str(empty), np.full((250, 250, 3), 128, np.uint8))
    svc = service_for(enrolled, [empty] * 3, MockFactory())
    svc.run()
    assert svc.stats.decisions == 0 and not old.exists()


# ---------------------------------------------------------------------------- face-metered exposure


def picamera2_service(config, pins, picture, calls, **fake):
    from edge.camera import build_camera

    cam = build_camera(
        config.camera, picamera2_factory=lambda: FakePicamera2(picture, calls=calls, **fake)
    )
    return service_for(config, [], pins, camera=cam, clock=FakeClock())


def test_face_metering_brings_a_backlit_face_to_its_target(enrolled, lfw_samples):
    from edge.exposure import correction_stops, expose, meter_face

    calls: list = []
    picture = backlit_door(lfw_samples["Hugo_Chavez_0002"])
    svc = picamera2_service(enrolled, MockFactory(), picture, calls)
    assert svc.exposure is not None
    assert svc.run(max_frames=40) == ExitCode.OK
    sent = [c[1]["ExposureValue"] for c in calls if c[0] == "set_controls"]
    assert sent and sent[0] > 0.5 and len(sent) <= 4  # up, in a few steps, then left alone
    final = expose(picture, sent[-1])
    box = svc.pipeline.detect(Frame(rgb=final))[0].box
    m = meter_face(final, box)
    assert (
        m is not None
        and abs(correction_stops(m, enrolled.exposure.target_face_luma))
        < enrolled.exposure.tolerance_stops
    )
    before = meter_face(picture, box)
    assert before is not None and before.luma < m.luma - 0.15
    recs = records(enrolled)  # a stranger: denied, with the exposure the decision was made at
    # Frames taken while the exposure changed are not judged: the stranger is refused on metered frames.
    assert [(r["decision"], r["reason"]) for r in recs] == [("deny", Reason.UNKNOWN_FACE)]
    assert recs[0]["exposure_stops"] == pytest.approx(sent[-1], abs=1e-4)
    # per change: the frame that asked for it and settle_frames after it
    assert svc.stats.settling_frames == (enrolled.exposure.settle_frames + 1) * len(sent)


def test_face_metering_off_or_a_camera_without_it_leaves_the_exposure_alone(
    enrolled, lfw_samples, caplog
):
    calls: list = []
    off = replace(enrolled, exposure=replace(enrolled.exposure, face_metering=False))
    svc = picamera2_service(
        off, MockFactory(), backlit_door(lfw_samples["Hugo_Chavez_0002"]), calls
    )
    assert svc.exposure is None and svc.run(max_frames=10) == ExitCode.OK
    assert not [c for c in calls if c[0] == "set_controls"]
    with caplog.at_level(
        logging.INFO, logger="edge.exposure"
    ):  # the daemon asks edge.exposure.for_camera
        replay = service_for(enrolled, [lfw_samples["Hugo_Chavez_0002"]], MockFactory())
    assert replay.exposure is None and replay.run() == ExitCode.OK
    assert [r["exposure_stops"] for r in records(enrolled)] == [None]  # no metering: null, not 0
    assert (
        "exposure.face_metering: " in caplog.text
        and "cannot set its exposure; it keeps its own metering" in caplog.text
    )


def test_a_camera_refusing_exposure_control_ends_metering_not_the_door(
    enrolled, lfw_samples, caplog
):
    calls: list = []
    pins = MockFactory()
    svc = picamera2_service(
        enrolled,
        pins,
        backlit_door(lfw_samples["Hugo_Chavez_0002"]),
        calls,
        fail_set_controls=RuntimeError("Control ExposureValue is busy"),
    )
    assert svc.run(max_frames=20) == ExitCode.OK
    assert svc.stats.frames == 20 and svc.stats.errors == 0
    assert len([c for c in calls if c[0] == "set_controls"]) == 1 and svc.exposure is None
    assert (
        "setting ExposureValue failed" in caplog.text
        and "face-metered exposure is off" in caplog.text
    )
    assert True not in relay_history(pins)  # a stranger: nobody let in, metering or not


def test_a_person_removed_while_the_daemon_runs_is_refused_within_a_second(
    enrolled, lfw_samples, tmp_path
):
    """`facegate users remove` saves the gallery; the running daemon reloads it and acknowledges the new file."""
    from edge.gallery import Gallery, gallery_writer
    from edge.gallery_watch import ack_path_for, file_sha256

    clock = FakeClock()
    removed_at: list[float] = []

    def on_decision(d, record) -> None:
        if d.unlock and not removed_at:  # the first unlock: now remove colin, as the CLI does
            with gallery_writer(enrolled.gallery.path):
                g = Gallery.load(enrolled.gallery.path)
                g.remove("colin")
                g.save(enrolled.gallery.path)
            removed_at.append(clock())

    pins = MockFactory()
    empty = tmp_path / "empty.jpg"
    cv2.imwrite(str(empty), np.full((250, 250, 3), 128, np.uint8))
    colin = lfw_samples["Colin_Powell_0040"]
    # Colin at the door, gone for 3 s (his track ends), back again: a new attempt after the removal.
    svc = service_for(
        enrolled,
        [colin] * 10 + [empty] * 30 + [colin] * 10,
        pins,
        clock=clock,
        on_decision=on_decision,
    )
    assert json.loads(ack_path_for(enrolled.gallery.path).read_text())["people"] == 2
    assert svc.run() == ExitCode.OK
    recs = list(read_records(log_files(enrolled.log.decisions)))
    unlocks = [r for r in recs if r["decision"] == "unlock"]
    assert len(unlocks) == 1 and removed_at  # the only unlock is the one before the removal
    later = recs[recs.index(unlocks[0]) + 1 :]
    assert later and all(r["decision"] == "deny" and r["person"] != "colin" for r in later)
    assert svc.gallery_watcher.reloads == 1 and svc.gallery.names() == ["serena"]
    ack = json.loads(ack_path_for(enrolled.gallery.path).read_text())
    assert ack["sha256"] == file_sha256(enrolled.gallery.path) and ack["people"] == 1
    assert relay_history(pins).count(True) == 1


def test_a_gallery_that_stops_loading_refuses_everyone_not_the_old_templates(enrolled, lfw_samples):
    clock = FakeClock()
    broken: list[bool] = []

    def on_decision(d, record) -> None:
        if d.unlock and not broken:
            path = Path(enrolled.gallery.path)
            path.write_text(path.read_text()[:-20])  # torn: no longer valid JSON
            broken.append(True)

    pins = MockFactory()
    empty = Path(enrolled.gallery.path).with_name("empty.jpg")
    cv2.imwrite(str(empty), np.full((250, 250, 3), 128, np.uint8))
    colin = lfw_samples["Colin_Powell_0040"]
    svc = service_for(
        enrolled,
        [colin] * 10 + [empty] * 30 + [colin] * 10,
        pins,
        clock=clock,
        on_decision=on_decision,
    )
    svc.run()
    recs = list(read_records(log_files(enrolled.log.decisions)))
    assert [r["decision"] for r in recs].count("unlock") == 1
    assert recs[-1]["decision"] == "deny" and svc.gallery.names() == []


def test_a_restart_does_not_clear_the_lockout(enrolled, lfw_samples, tmp_path):
    """Power-cycling the Pi must not reset an attacker's doubling lockout: it is kept beside the gallery."""
    from edge.service import lockout_path

    cfg = replace(
        enrolled,
        policy=replace(
            enrolled.policy,
            lockout_attempts=2,
            lockout_window_s=600.0,
            lockout_s=600.0,
            retry_after_s=0.0,
        ),
    )
    empty = tmp_path / "empty.jpg"
    cv2.imwrite(str(empty), np.full((250, 250, 3), 128, np.uint8))
    stranger = lfw_samples["Tony_Blair_0006"]
    svc = service_for(cfg, ([stranger] * 4 + [empty] * 25) * 2, MockFactory())
    svc.run()
    state = json.loads(lockout_path(cfg).read_text())
    assert state["level"] == 1 and state["locked_until"] is not None
    assert stat_mode(lockout_path(cfg)) == 0o600
    pins = MockFactory()
    again = service_for(
        cfg, [lfw_samples["Colin_Powell_0040"]] * 4, pins
    )  # colin is enrolled, but the door is locked out
    again.run()
    recs = list(read_records(log_files(cfg.log.decisions)))
    assert recs[-1]["reason"] == Reason.LOCKED_OUT and recs[-1]["person"] == "colin"
    assert True not in relay_history(pins)


def test_a_restart_does_not_end_an_attack_drill(enrolled, lfw_samples, tmp_path, caplog):
    """The web app's drill is kept beside the gallery (drill.json): a daemon started during it
    refuses colin as attack_drill; an unreadable file is no drill, and the door works."""
    from edge.bridge.household import drill_path

    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.full((250, 250, 3), 90, np.uint8))
    visit = [lfw_samples["Colin_Powell_0040"]] * 3 + [blank] * 30
    drill_path(enrolled).write_text(json.dumps({"until": time.time() + 600.0}))
    pins = MockFactory()
    with caplog.at_level(logging.WARNING, logger="edge.service"):
        assert service_for(enrolled, visit, pins).run() == ExitCode.OK
    assert "restored an attack drill" in caplog.text
    assert [(r["reason"], r["decision"], r["drill"]) for r in records(enrolled)] == [
        (Reason.ATTACK_DRILL, "deny", True)
    ]
    assert True not in relay_history(pins)
    drill_path(enrolled).write_text("{not json")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert service_for(enrolled, visit, MockFactory()).run() == ExitCode.OK
    assert "no attack drill" in caplog.text
    assert [(r["reason"], r["drill"]) for r in records(enrolled)[1:]] == [(Reason.ACCEPTED, False)]


def stat_mode(path: Path) -> int:
    import stat as _stat

    return _stat.S_IMODE(path.stat().st_mode)


def test_a_guests_entries_are_counted_across_a_restart(enrolled, lfw_samples, tmp_path):
    """access.rules: colin may enter twice; the count is kept beside the gallery."""
    rules = tmp_path / "access.yaml"
    rules.write_text("people:\n  colin: {max_entries: 2}\n")
    cfg = replace(enrolled, access=replace(enrolled.access, rules=str(rules)))
    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.full((250, 250, 3), 90, np.uint8))
    colin = lfw_samples["Colin_Powell_0040"]
    visits = ([colin] * 3 + [blank] * 30) * 2
    pins = MockFactory()
    assert service_for(cfg, visits, pins).run() == ExitCode.OK
    assert [r["reason"] for r in records(cfg)] == [Reason.ACCEPTED, Reason.ACCEPTED]
    # A restart: the same visit is his third entry.
    assert service_for(cfg, visits[:33], MockFactory()).run() == ExitCode.OK
    recs = records(cfg)
    assert [(r["reason"], r["decision"]) for r in recs[2:]] == [(Reason.NO_ENTRIES_LEFT, "deny")]
    assert json.loads((tmp_path / "entries.json").read_text()) == {"colin": 2}


def test_a_rules_file_that_does_not_load_refuses_to_start(enrolled, tmp_path):
    rules = tmp_path / "access.yaml"
    rules.write_text("people: {colin: {disabled: perhaps}}\n")
    cfg = replace(enrolled, access=replace(enrolled.access, rules=str(rules)))
    with pytest.raises(ConfigError, match=r"people.colin.disabled: must be true or false"):
        service_for(cfg, [], MockFactory())


def test_a_restart_keeps_the_wrong_remote_codes_and_an_unreadable_count_is_the_cap(
    enrolled, tmp_path, caplog
):
    """A guesser gains nothing by power-cycling the Pi: the wrong codes in a row and the day's
    count are kept beside the gallery (remote.json, 0600); an unreadable file is today's cap."""
    from edge.policy import REMOTE_WRONG_IN_ROW
    from edge.service import remote_path

    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.full((250, 250, 3), 90, np.uint8))
    svc = service_for(enrolled, [blank], MockFactory())
    assert not remote_path(enrolled).exists()  # no file until a remote command
    for _ in range(REMOTE_WRONG_IN_ROW):
        svc.act(svc.policy.remote(svc.clock(), sender="x via ha", code_ok=False), None)
    assert svc.run() == ExitCode.OK
    saved = json.loads(remote_path(enrolled).read_text())["remote_unlock"]
    assert saved["wrong_in_row"] == REMOTE_WRONG_IN_ROW
    assert saved["day_wrong"] == REMOTE_WRONG_IN_ROW and saved["locked_until"] is not None
    assert stat_mode(remote_path(enrolled)) == 0o600

    pins = MockFactory()
    again = service_for(enrolled, [blank], pins)
    d = again.policy.remote(again.clock(), sender="alice via ha", code_ok=True)
    assert d.reason == Reason.REMOTE_LOCKED_OUT and not d.unlock
    again.act(d, None)
    assert again.run() == ExitCode.OK
    assert True not in relay_history(pins)

    remote_path(enrolled).write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="edge.service"):
        third = service_for(enrolled, [blank], MockFactory())
    assert "remote unlock is refused until tomorrow" in caplog.text
    d = third.policy.remote(third.clock() + 1e6, sender="alice via ha", code_ok=True)
    assert d.reason == Reason.REMOTE_DAILY_CAP and not d.unlock
    third.run()
