"""The daemon's side of the web app (edge.bridge.household), and the bridge carrying its requests."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from household import door_config, frames, run_door

from edge.bridge.household import (
    Household,
    drill_path,
    face_file,
    load_drill,
    load_threshold,
    settings_path,
)
from edge.bridge.mqtt import Bridge, DaemonUnavailable
from edge.bridge.server import BridgeServer
from edge.config import MqttConfig
from edge.gallery import Gallery


@pytest.fixture
def door(tmp_path: Path, model_dir: Path, runtime: str) -> Any:
    """A door that met 0005 (let in) and 0009 (refused), and its Household."""
    config = door_config(tmp_path, model_dir, runtime)
    visits = [frames(s, "02")[0] for s in ("0005", "0009")]
    svc = run_door(config, visits, tmp_path)
    return (
        config,
        svc,
        Household(config, pipeline=svc.pipeline, policy=svc.policy, last_frame=lambda: None),
    )


def ask(h: Household, action: str, **fields: Any) -> tuple[bool, str, dict[str, Any]]:
    return h.handle({"action": action, **fields})


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_decisions_come_in_pages_after_a_cursor(door):
    _, _, h = door
    ok, _, data = ask(h, "decisions", after="")
    assert (
        ok and [r["decision"] for r in data["records"]] == ["unlock", "deny"] and not data["more"]
    )
    ok, _, data = ask(h, "decisions", after="", limit=1)
    assert len(data["records"]) == 1 and data["more"]
    ok, _, data = ask(h, "decisions", after=data["records"][0]["time"])
    assert [r["decision"] for r in data["records"]] == ["deny"]
    ok, why, _ = ask(h, "decisions", after="yesterday")
    assert not ok and "ISO time" in why


def test_a_snapshot_is_found_by_its_event_id_only(door, tmp_path):
    config, _, h = door
    rec = ask(h, "decisions", after="")[2]["records"][1]
    ok, _, data = ask(h, "snapshot", event_id=rec["event_id"])
    assert ok and base64.b64decode(data["jpeg_b64"]) == Path(rec["snapshot"]).read_bytes()
    for bad in ("../gallery", "/etc/passwd", "..", "", 7, "a/b"):
        assert ask(h, "snapshot", event_id=bad)[:2] == (False, "no such snapshot")
    # A snapshot replaced by a symbolic link is not followed.
    snap = Path(rec["snapshot"])
    snap.unlink()
    snap.symlink_to(config.gallery.path)
    ok, why, _ = ask(h, "snapshot", event_id=rec["event_id"])
    assert not ok and "symbolic link" in why


def test_people_are_names_and_counts_and_a_face_file_is_named_by_a_digest(door):
    config, _, h = door
    ok, _, data = ask(h, "people")
    assert ok and data == {
        "people": [{"name": "0005", "templates": 5, "face": False, "photos": 0}],
        "model_current": True,
    }
    ok, why, data = ask(h, "enroll", name="../../x", photos=[b64(p) for p in frames("0009", "01")])
    assert not ok and "name" in why
    ok, why, data = ask(
        h, "enroll", name="Zoe Neil 2", photos=[b64(p) for p in frames("0009", "01")]
    )
    assert ok, why
    assert face_file(config, "Zoe Neil 2").parent == Path(config.gallery.path).with_name("faces")
    assert face_file(config, "Zoe Neil 2").stat().st_mode & 0o777 == 0o600
    assert ask(h, "face", name="Zoe Neil 2")[2]["jpeg_b64"]
    ok, _, _ = ask(h, "rename", old="Zoe Neil 2", new="zoe")
    assert ok and face_file(config, "zoe").exists() and not face_file(config, "Zoe Neil 2").exists()
    ok, _, _ = ask(h, "remove", name="zoe")
    assert ok and not face_file(config, "zoe").exists()
    assert Gallery.load(config.gallery.path).names() == ["0005"]


def test_the_accepted_photos_are_kept_privately_and_follow_a_rename_and_a_removal(door):
    from edge.kept_photos import kept, person_dir

    config, _, h = door
    bad = base64.b64encode(b"nope").decode()
    ok, why, _ = ask(h, "enroll", name="zoe", photos=[bad, *(b64(p) for p in frames("0009", "01"))])
    assert ok, why
    photos = kept(config, "zoe")
    assert [p.read_bytes() for p in photos] == [p.read_bytes() for p in frames("0009", "01")]
    assert person_dir(config, "zoe").stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in photos} == {0o600}
    assert ask(h, "people")[2]["people"][1] == {
        "name": "zoe",
        "templates": 5,
        "face": True,
        "photos": 5,
    }
    # Re-enrolled from them (with the model the daemon runs): the same five, replacing the old.
    ok, why, data = ask(h, "reenroll", name="zoe")
    assert ok and data["templates"] == 5 and len(kept(config, "zoe")) == 5
    assert not ask(h, "reenroll", name="0005")[0]  # enrolled at the command line: nothing kept
    ask(h, "rename", old="zoe", new="zoey")
    assert len(kept(config, "zoey")) == 5 and not kept(config, "zoe")
    ask(h, "remove", name="zoey")
    assert not person_dir(config, "zoey").exists()


def test_facegate_reenroll_after_a_model_change_rebuilds_the_gallery_from_the_kept_photos(
    door, tmp_path, capsys
):
    """Enrolled under FaceNet in the web app, then the embedder changed to SFace (the default)."""
    import yaml

    from edge.cli import main
    from edge.pipeline import build_pipeline

    config, svc, _ = door
    old_cfg = replace(
        config,
        models=replace(config.models, embedder="facenet-keras.float32.tflite"),
        gallery=replace(config.gallery, path=str(tmp_path / "new" / "gallery.json")),
    )
    (tmp_path / "new").mkdir(mode=0o700)
    old = Household(
        old_cfg, pipeline=build_pipeline(old_cfg), policy=svc.policy, last_frame=lambda: None
    )
    assert ask(old, "enroll", name="zoe", photos=[b64(p) for p in frames("0009", "01")])[0]
    facenet_sha = Gallery.load(old_cfg.gallery.path).model_sha256
    data = {
        "runtime": {"backend": config.runtime.backend, "threads": 1},
        "models": {"dir": config.models.dir},
        "liveness": {"enabled": False},
        "gallery": {"path": old_cfg.gallery.path},
    }
    (tmp_path / "sface.yaml").write_text(yaml.safe_dump(data))
    assert main(["-c", str(tmp_path / "sface.yaml"), "reenroll"]) == 0
    out = capsys.readouterr().out
    assert "re-enrolled zoe: 5 template(s)" in out and f"{facenet_sha[:12]}.bak" in out
    sface = build_pipeline(replace(config, gallery=old_cfg.gallery)).embedder
    g = Gallery.load(
        old_cfg.gallery.path, model_sha256=sface.sha256, preprocessing=sface.preprocessing
    )
    assert g.count("zoe") == 5
    backup = Path(old_cfg.gallery.path + f".{facenet_sha[:12]}.bak")
    assert Gallery.load(backup).model_sha256 == facenet_sha


def test_re_enrolling_replaces_the_templates(door):
    config, _, h = door
    ok, why, data = ask(
        h, "enroll", name="0005", photos=[b64(frames("0005", "02")[1])], replace=True
    )
    assert ok, why
    assert data["added"] == data["templates"] == 1
    assert Gallery.load(config.gallery.path).count("0005") == 1


def test_an_enrollment_is_bounded_and_says_why_each_photo_failed(door):
    _, _, h = door
    ok, why, _ = ask(h, "enroll", name="x", photos=[])
    assert not ok and "1 to 10 photos" in why
    ok, why, _ = ask(h, "enroll", name="x", photos=["a"] * 11)
    assert not ok and "1 to 10 photos" in why
    ok, why, data = ask(h, "enroll", name="x", photos=["%%%", base64.b64encode(b"nope").decode()])
    assert not ok and "nothing enrolled" in why
    assert [a["why"] for a in data["attempts"]] == [
        "not a base64 image",
        "photo 2: not a decodable image",
    ]


def test_rules_are_validated_written_without_following_a_link_and_read_back(door, tmp_path):
    config, _, h = door
    ok, why, _ = ask(h, "rules_set", text="people:\n  bob:\n    windoes: []\n")
    assert not ok and "did you mean" in why and "people.bob" in why
    good = "people:\n  bob:\n    disabled: true\n"
    assert ask(h, "rules_set", text=good)[0]
    assert ask(h, "rules_get")[2] == {"path": config.access.rules, "text": good}
    assert Path(config.access.rules).stat().st_mode & 0o777 == 0o600
    target = tmp_path / "elsewhere.yaml"
    target.write_text("people: {}\n")
    os.unlink(config.access.rules)
    os.symlink(target, config.access.rules)
    ok, why, _ = ask(h, "rules_set", text=good)
    assert not ok and "symbolic link" in why and target.read_text() == "people: {}\n"
    no_rules = Household(
        replace(config, access=replace(config.access, rules=None)),
        pipeline=h.pipeline,
        policy=h.policy,
        last_frame=lambda: None,
    )
    assert not ask(no_rules, "rules_set", text=good)[0]


def test_an_applied_threshold_survives_a_restart_and_a_bad_settings_file_is_ignored(door, caplog):
    config, svc, h = door
    assert ask(h, "threshold_set", value=0.8)[0]
    assert svc.policy.match.min_cosine_similarity == 0.8
    assert load_threshold(config) == 0.8
    for bad in (2.0, -0.1, "0.5", True, float("nan"), -0.0, 0.0, 0.079, 0.419, float("-inf")):
        assert not ask(h, "threshold_set", value=bad)[0], bad
    assert svc.policy.match.min_cosine_similarity == 0.8
    # below the floor strangers get in: the why says where the floor is and why
    ok, why, _ = ask(h, "threshold_set", value=0.2)
    assert not ok and "from 0.42 (match.threshold_floor: below it strangers get in)" in why
    assert ask(h, "threshold_set", value=0.42)[0]
    assert ask(h, "threshold_set", value=0.8)[0]
    # A restarted daemon (a new Household over a fresh policy) applies it, saying so.
    svc.policy.match = config.match
    Household(config, pipeline=svc.pipeline, policy=svc.policy, last_frame=lambda: None)
    assert svc.policy.match.min_cosine_similarity == 0.8
    assert "applied from the web app" in caplog.text
    settings_path(config).write_text('{"min_cosine_similarity": "low"}')
    assert load_threshold(config) is None
    settings_path(config).write_text("{not json")
    assert load_threshold(config) is None


T0 = 1_700_000_000.0  # the wall clock of the light households below, Unix seconds


def light(tmp_path: Path, wall: list[float], *, liveness: bool = True) -> tuple[Any, Household]:
    """A Household over a bare Policy (no models: these requests need none) on ``wall[0]``."""
    from edge.config import load_config
    from edge.policy import Policy

    base = load_config()
    config = replace(
        base,
        gallery=replace(base.gallery, path=str(tmp_path / "gallery.json")),
        liveness=replace(base.liveness, enabled=liveness),
    )
    policy = Policy(config.policy, config.match, liveness=config.liveness, wall=lambda: wall[0])
    return config, Household(config, pipeline=None, policy=policy, last_frame=lambda: None)


def test_a_drill_is_started_stopped_and_its_minutes_checked(tmp_path):
    wall = [T0]
    config, h = light(tmp_path, wall)
    path = drill_path(config)
    for bad in (-1, 31, 5.0, "5", True, None, [5]):
        ok, why, _ = ask(h, "drill", minutes=bad)
        assert not ok and why == "minutes: a whole number from 0 to 30", bad
    assert not path.exists() and not h.policy.drilling()
    ok, why, data = ask(h, "drill", minutes=5)
    assert ok and data == {"drill_until": T0 + 300.0} and "no face is let in" in why
    assert h.policy.drilling() and json.loads(path.read_text()) == {"until": T0 + 300.0}
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert ask(h, "settings")[2]["drill_until"] == T0 + 300.0
    assert not ask(h, "drill", minutes=31)[0] and h.policy.drill_until == T0 + 300.0
    ok, why, data = ask(h, "drill", minutes=0)
    assert ok and why == "attack drill stopped" and data == {"drill_until": None}
    assert not h.policy.drilling() and json.loads(path.read_text()) == {"until": None}
    assert ask(h, "settings")[2]["drill_until"] is None
    assert ask(h, "drill", minutes=30)[0] and h.policy.drill_until == T0 + 1800.0
    wall[0] = T0 + 1800.0  # it ends by itself
    assert not h.policy.drilling() and ask(h, "settings")[2]["drill_until"] is None


def test_a_saved_drill_is_read_back_and_a_bad_file_is_no_drill(tmp_path, caplog):
    wall = [T0]
    config, h = light(tmp_path, wall)
    path = drill_path(config)
    assert load_drill(config, T0) is None and not caplog.text  # no file: no drill, nothing to say
    assert ask(h, "drill", minutes=10)[0]
    assert load_drill(config, T0 + 60.0) == T0 + 600.0
    for text in ("{not json", '["until"]', '{"until": "soon"}', '{"until": true}'):
        path.write_text(text)
        caplog.clear()
        assert load_drill(config, T0) is None, text
        assert "no attack drill" in caplog.text, text
    path.write_text(json.dumps({"until": T0 + 32 * 60.0}))  # longer than any drill lasts
    assert load_drill(config, T0) is None
    path.write_text('{"until": NaN}')
    assert load_drill(config, T0) is None


def test_liveness_points_are_checked_merged_with_the_threshold_and_applied_again_at_start(
    tmp_path, caplog
):
    wall = [T0]
    config, h = light(tmp_path, wall)
    settings = settings_path(config)
    assert ask(h, "threshold_set", value=0.8)[0]
    ok, why, data = ask(h, "liveness_set", points={"texture": 0.3})
    assert ok and why == "liveness operating points: texture 0.018 -> 0.300"
    assert data == {"old": {"texture": 0.018}, "new": {"texture": 0.3}}
    assert h.policy.liveness.min_live_probability == 0.3
    assert json.loads(settings.read_text()) == {
        "min_cosine_similarity": 0.8,
        "liveness_points": {"texture": 0.3},
    }
    assert ask(h, "liveness_set", points={"minifasnet": 0.5})[0]
    assert ask(h, "threshold_set", value=0.7)[0]  # keeps the points
    assert json.loads(settings.read_text()) == {
        "min_cosine_similarity": 0.7,
        "liveness_points": {"texture": 0.3, "minifasnet": 0.5},
    }
    assert (h.policy.liveness.min_live_probability, h.policy.match.min_cosine_similarity) == (
        0.3,
        0.7,
    )
    assert h.policy.liveness.minifasnet_min_live_probability == 0.5
    answer = ask(h, "settings")[2]
    assert answer["liveness_points"] == {"texture": 0.3, "minifasnet": 0.5}
    assert answer["config_liveness_points"] == {"texture": 0.018, "minifasnet": 0.46}
    # Every bad point is refused with one line, and nothing is written or applied.
    before = settings.read_bytes()
    for points, said in (
        ({"texture": float("nan")}, "points.texture: a number strictly between 0 and 1"),
        ({"texture": float("inf")}, "points.texture: a number strictly between 0 and 1"),
        ({"texture": 0}, "points.texture: a number strictly between 0 and 1, got 0"),
        ({"texture": 1.0}, "points.texture: a number strictly between 0 and 1, got 1.0"),
        ({"texture": -1}, "points.texture: a number strictly between 0 and 1, got -1"),
        ({"texture": "0.3"}, "points.texture: a number strictly between 0 and 1, got '0.3'"),
        ({"texture": True}, "points.texture: a number strictly between 0 and 1, got True"),
        ({"minifasnet": 0.4, "eyes": 0.3}, "points: 'eyes' is not a liveness score cue"),
        ({"te\nxture": 0.3}, "points: 'te\\nxture' is not a liveness score cue"),
        ({}, "points: an object of score cue"),
        ([0.3], "points: an object of score cue"),
    ):
        ok, why, _ = ask(h, "liveness_set", points=points)
        assert not ok and why.startswith(said) and "\n" not in why, (points, why)
    assert settings.read_bytes() == before
    assert h.policy.liveness.minifasnet_min_live_probability == 0.5
    # A restarted daemon (a fresh policy, a new Household) applies both again, saying so.
    caplog.clear()
    _, h2 = light(tmp_path, wall)
    assert h2.policy.match.min_cosine_similarity == 0.7
    assert h2.policy.liveness.min_live_probability == 0.3
    assert h2.policy.liveness.minifasnet_min_live_probability == 0.5
    assert "liveness operating points texture 0.300, minifasnet 0.500 applied" in caplog.text
    # A bad entry in the file is ignored, the rest applied; liveness off: nothing to set.
    settings.write_text('{"liveness_points": {"texture": 2, "minifasnet": 0.4}}')
    _, h3 = light(tmp_path, wall)
    assert h3.policy.liveness.min_live_probability == 0.018
    assert h3.policy.liveness.minifasnet_min_live_probability == 0.4
    _, off = light(tmp_path, wall, liveness=False)
    ok, why, _ = ask(off, "liveness_set", points={"texture": 0.3})
    assert not ok and "liveness is off" in why
    assert json.loads(settings.read_text()) == {
        "liveness_points": {"texture": 2, "minifasnet": 0.4}
    }
    assert ask(off, "settings")[2]["liveness_points"] == {}


def test_a_capture_is_the_cameras_last_frame_with_its_guidance(door):
    from edge.images import read_image

    config, svc, _ = door
    frame = read_image(frames("0009", "01")[0])
    h = Household(config, pipeline=svc.pipeline, policy=svc.policy, last_frame=lambda: frame)
    ok, why, data = ask(h, "capture")
    assert (
        ok and data["ok"] and why == "ok" and base64.b64decode(data["jpeg_b64"])[:2] == b"\xff\xd8"
    )
    none = Household(config, pipeline=svc.pipeline, policy=svc.policy, last_frame=lambda: None)
    assert ask(none, "capture")[:2] == (False, "no frame from the camera yet")


# --------------------------------------------------------------------------- over the socket


def test_the_bridge_carries_a_request_and_its_answer_is_never_published(tmp_path):
    """A BridgeServer standing in for the daemon's end answers; the Bridge (no broker) waits for it."""
    path = tmp_path / "bridge.sock"
    server = BridgeServer(path, allowed_uids=frozenset({os.getuid()}), queue_max=10, state=dict)
    server.start()
    bridge = Bridge(MqttConfig(enabled=True, broker=False, socket=str(path)), reconnect_s=0.05)
    seen: list[dict[str, Any]] = []
    bridge.listeners.append(seen.append)
    runner = threading.Thread(target=bridge.run, daemon=True)
    runner.start()

    def answer() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for cmd in server.commands():
                server.publish(
                    {
                        "type": "result",
                        "id": cmd["id"],
                        "ok": True,
                        "why": "",
                        "data": {"people": []},
                    }
                )
                server.publish({"type": "decision", "record": {"event_id": "e1"}})
                return
            time.sleep(0.01)

    threading.Thread(target=answer, daemon=True).start()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                result = bridge.request("people", timeout_s=5)
                break
            except DaemonUnavailable:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert result["data"] == {"people": []}
        deadline = time.monotonic() + 5
        while not any(m.get("type") == "decision" for m in seen):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not any(
            m.get("type") == "result" for m in seen
        )  # the answer went to its request alone
    finally:
        bridge.stop()
        runner.join(10)
        server.close()
    with pytest.raises(DaemonUnavailable, match="not connected"):
        bridge.request("people", timeout_s=0.1)


def test_a_daemon_that_does_not_answer_times_the_request_out(tmp_path):
    path = tmp_path / "s.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    bridge = Bridge(MqttConfig(enabled=True, broker=False, socket=str(path)), reconnect_s=0.05)
    runner = threading.Thread(target=bridge.run, daemon=True)
    runner.start()
    conn, _ = listener.accept()
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                bridge.request("people", timeout_s=0.2)
            except DaemonUnavailable as exc:
                if "did not answer" in str(exc):
                    break
            assert time.monotonic() < deadline
        assert json.loads(conn.recv(65536).splitlines()[0])["action"] == "people"
    finally:
        bridge.stop()
        runner.join(10)
        conn.close()
        listener.close()


def test_a_door_command_or_an_unknown_one_is_not_a_household_request(door):
    _, _, h = door
    for action in ("unlock", "open", "lock", "face_unlock", "__init__", "_edit"):
        ok, why, data = ask(h, action)
        assert not ok and "not a household request" in why and data == {}


def test_the_newest_kept_photos_stay_when_their_numbers_grow_a_digit(tmp_path):
    from edge.config import load_config
    from edge.kept_photos import MAX_KEPT, keep, kept, person_dir

    base = load_config()
    config = replace(base, gallery=replace(base.gallery, path=str(tmp_path / "gallery.json")))
    d = person_dir(config, "zoe")
    d.mkdir(parents=True)
    for i in range(999 - MAX_KEPT + 1, 1000):
        (d / f"{i:03d}.jpg").write_bytes(b"old")
    keep(config, "zoe", [b"new1", b"new2"], replace=False)
    photos = kept(config, "zoe")
    assert len(photos) == MAX_KEPT
    assert [p.name for p in photos[-3:]] == ["999.jpg", "1000.jpg", "1001.jpg"]
    assert photos[-1].read_bytes() == b"new2"
