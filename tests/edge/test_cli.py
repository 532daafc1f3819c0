"""The facegate command as a user meets it: output, one-line errors, exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.config import load_config
from edge.errors import ExitCode


def run(
    *args: str, env_dir: Path | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ)
    if env_dir is not None:
        env["FACEGATE_MODEL_DIR"] = str(env_dir)
    return subprocess.run(
        [sys.executable, "-m", "edge", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_embed_writes_json_lines(model_dir, lfw_samples):
    p = run(
        "embed",
        str(lfw_samples["Colin_Powell_0038"]),
        str(lfw_samples["Laura_Bush_0001"]),
        env_dir=model_dir,
    )
    assert p.returncode == 0, p.stderr
    records = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["image"] for r in records] == [
        str(lfw_samples["Colin_Powell_0038"]),
        str(lfw_samples["Laura_Bush_0001"]),
    ]
    for r in records:
        assert len(r["embedding"]) == 128 and np.linalg.norm(r["embedding"]) == pytest.approx(
            1, abs=1e-4
        )
        assert len(r["box"]) == 4 and 0.5 < r["score"] <= 1 and len(r["model_sha256"]) == 64


def test_embed_npy(model_dir, lfw_samples, tmp_path):
    out = tmp_path / "e.npy"
    p = run(
        "embed",
        *map(str, lfw_samples.values()),
        "--npy",
        str(out),
        "--max-faces",
        "1",
        env_dir=model_dir,
    )
    assert p.returncode == 0, p.stderr
    arr = np.load(out)
    assert arr.shape == (len(lfw_samples), 128) and arr.dtype == np.float32


def test_compare_gives_similarity_and_verdict(model_dir, lfw_samples, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("match:\n  min_cosine_similarity: 0.45\n")
    a, b, c = (
        str(lfw_samples[k]) for k in ("Tony_Blair_0006", "Tony_Blair_0018", "Hugo_Chavez_0002")
    )
    same = run("-c", str(cfg), "compare", a, b, env_dir=model_dir)
    assert same.returncode == 0 and same.stdout.rstrip().endswith(": same person"), (
        same.stdout + same.stderr
    )
    assert ">= 0.4500 (match.min_cosine_similarity)" in same.stdout
    diff = run("-c", str(cfg), "compare", a, c, env_dir=model_dir)
    assert diff.returncode == 0 and diff.stdout.rstrip().endswith(": different people")
    assert "< 0.4500 (match.min_cosine_similarity)" in diff.stdout


def test_no_face_is_one_line_and_its_exit_code(model_dir, tmp_path, lfw_samples):
    import cv2

    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 120, np.uint8))
    p = run("compare", str(blank), str(lfw_samples["Tony_Blair_0006"]), env_dir=model_dir)
    assert p.returncode == ExitCode.NO_FACE
    assert one_line_error(p) == f"facegate: error: {blank}: no face found"


def test_unreadable_and_corrupt_images(model_dir, tmp_path, lfw_samples):
    corrupt = tmp_path / "half.jpg"
    corrupt.write_bytes(lfw_samples["Tony_Blair_0006"].read_bytes()[:200])
    for path, words in (
        (tmp_path / "missing.jpg", "cannot read"),
        (corrupt, "not a decodable image"),
        (tmp_path, "is a directory"),
    ):
        p = run("compare", str(path), str(lfw_samples["Tony_Blair_0006"]), env_dir=model_dir)
        assert p.returncode == ExitCode.IMAGE
        line = one_line_error(p)
        assert str(path) in line and words in line


def test_embed_goes_on_past_bad_images_but_fails(model_dir, tmp_path, lfw_samples):
    p = run(
        "embed",
        str(tmp_path / "missing.jpg"),
        str(lfw_samples["Laura_Bush_0001"]),
        env_dir=model_dir,
    )
    assert p.returncode == ExitCode.IMAGE
    assert len(p.stdout.splitlines()) == 1  # the good image was still embedded
    one_line_error(p)


def test_corrupt_model_is_one_line(model_dir, tmp_path, lfw_samples):
    import shutil

    for f in model_dir.iterdir():
        if f.suffix in (".tflite", ".json", ".onnx"):
            shutil.copyfile(f, tmp_path / f.name)
    emb = tmp_path / load_config().models.embedder  # the default embedder
    good = emb.read_bytes()
    emb.write_bytes(good[:-100])
    p = run(
        "compare",
        str(lfw_samples["Tony_Blair_0006"]),
        str(lfw_samples["Tony_Blair_0018"]),
        env_dir=tmp_path,
    )
    assert p.returncode == ExitCode.MODEL
    assert "does not match its card" in one_line_error(p)
    emb.write_bytes(good)
    (tmp_path / "blazeface-short.tflite").write_bytes(b"junk")
    p = run("embed", str(lfw_samples["Tony_Blair_0006"]), env_dir=tmp_path)
    assert p.returncode == ExitCode.MODEL and "sha256 mismatch" in one_line_error(p)


def test_check_config(tmp_path):
    good = run("check-config")
    assert good.returncode == 0 and good.stdout.strip().endswith(": OK")
    bad = tmp_path / "f.yaml"
    bad.write_text("match:\n  min_cosine_similarity: 1.7\nruntime:\n  thread: 2\n")
    p = run("-c", str(bad), "check-config")
    assert p.returncode == ExitCode.CONFIG
    assert p.stderr.splitlines() == [
        f"facegate: error: {bad}: runtime.thread: unknown key; did you mean runtime.threads?",
        f"facegate: error: {bad}: match.min_cosine_similarity: must be between -1 and 1, got 1.7",
    ]


def test_models_list(model_dir):
    p = run("models", "list", env_dir=model_dir)
    assert p.returncode == 0
    assert any(
        line.startswith("blazeface-short") and " ok " in line for line in p.stdout.splitlines()
    )


def test_usage_error_exit_code():
    assert run("frobnicate").returncode == ExitCode.USAGE


def test_an_embedder_whose_crop_needs_landmarks_nobody_gives_is_one_line(
    model_dir, tmp_path, lfw_samples
):
    """SFace's card asks for mouth corners; with the landmark pass switched off the command refuses, naming the card."""
    cfg = tmp_path / "no-landmarks.yaml"
    cfg.write_text("models:\n  landmarker: null\n")
    p = run(
        "-c",
        str(cfg),
        "compare",
        str(lfw_samples["Tony_Blair_0006"]),
        str(lfw_samples["Tony_Blair_0018"]),
        env_dir=model_dir,
    )
    assert p.returncode == ExitCode.MODEL
    line = one_line_error(p)
    assert f"{load_config().models.embedder}: crop needs landmarks mouth_left, mouth_right" in line
    assert "set models.landmarker: yunet" in line


def test_relay_off_relocks_even_when_the_rest_of_the_config_is_broken(tmp_path):
    """ExecStopPost's backstop: a typo made while the daemon ran must not leave the next stop without its relock."""
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("lock:\n  relay_pin: 22\nmatch:\n  min_cosine_similarty: 0.5\npolicy: [oops]\n")
    assert run("-c", str(cfg), "check-config").returncode == ExitCode.CONFIG
    p = run("-c", str(cfg), "relay-off", "--mock-gpio")
    assert p.returncode == ExitCode.OK, p.stderr
    assert p.stdout.strip() == "relay on pin 22 is off (locked)"
    cfg.write_text(
        "lock:\n  relay_pin: 22\n  relay_pin: 23\n"
    )  # which pin is meant cannot be known: refuse, loudly
    p = run("-c", str(cfg), "relay-off", "--mock-gpio")
    assert p.returncode == ExitCode.CONFIG and "key 'relay_pin' given twice" in one_line_error(p)


@pytest.mark.parametrize(
    ("body", "pin", "read"),
    [
        (
            b"lock:\n  relay_pin: 22\n  active_high: false\n match: [oops\n",
            22,
            "22, lock.active_high False",
        ),
        (b"lock: {relay_pin: 5}\n\tpolicy: x\n", 5, "5, lock.active_high (default)"),
        (b"\xff\xfelock:\n  relay_pin: 6\n", 6, "6, lock.active_high (default)"),
        (b"{{{", 17, "(default), lock.active_high (default)"),
    ],
)
def test_relay_off_relocks_when_the_config_is_not_yaml_at_all(tmp_path, body, pin, read):
    """A typo that leaves the file not YAML (or not UTF-8) must not leave the next stop without its relock."""
    cfg = tmp_path / "typo.yaml"
    cfg.write_bytes(body)
    assert run("-c", str(cfg), "check-config").returncode == ExitCode.CONFIG
    p = run("-c", str(cfg), "relay-off", "--mock-gpio")
    assert p.returncode == ExitCode.OK, p.stderr
    assert p.stdout.strip() == f"relay on pin {pin} is off (locked)"
    warning = p.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"WARNING edge.config: {cfg}: not ")
    assert warning[0].endswith(f"relay-off read lock.relay_pin {read} by a line scan")


def test_relay_off_refuses_a_non_yaml_config_naming_two_pins(tmp_path):
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("lock:\n  relay_pin: 22\n[\nlock: {relay_pin: 23}\n")
    p = run("-c", str(cfg), "relay-off", "--mock-gpio")
    assert p.returncode == ExitCode.CONFIG
    assert "relay-off cannot tell which lock.relay_pin is meant (22, 23)" in one_line_error(p)


def test_users_remove_says_when_the_running_daemon_took_it(model_dir, tmp_path, samples):
    """A real daemon on a paced replay; `users remove` returns only with the daemon's acknowledgement (or a warning)."""
    import shutil
    import time

    from edge.gallery_watch import ack_path_for

    cfg = tmp_path / "door.yaml"
    gallery = tmp_path / "gallery.json"
    cfg.write_text(
        f"gallery: {{path: {gallery}}}\nlog: {{decisions: {tmp_path / 'decisions.jsonl'}}}\n"
        "liveness: {enabled: false}\ncamera: {fps: 10}\n"
    )
    frames = sorted((samples / "nuaa" / "ClientRaw" / "0005").glob("*.jpg"))
    for name, subject in (("alice", "0005"), ("bob", "0009")):
        shots = [
            str(p) for p in sorted((samples / "nuaa" / "ClientRaw" / subject).glob("*.jpg"))[:3]
        ]
        assert run("-c", str(cfg), "enroll", name, *shots, env_dir=model_dir).returncode == 0
    p = run("-c", str(cfg), "users", "remove", "bob", env_dir=model_dir)
    assert p.returncode == 0 and "no facegate daemon is running for this door" in p.stdout
    replay = tmp_path / "replay"
    replay.mkdir()
    for i in range(100):  # 10 s at 10 fps
        shutil.copyfile(frames[i % len(frames)], replay / f"{i:04d}.jpg")
    import os

    env = {**os.environ, "FACEGATE_MODEL_DIR": str(model_dir)}
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge",
            "-c",
            str(cfg),
            "run",
            "--mock-gpio",
            "--replay",
            str(replay),
        ],
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if json.loads(ack_path_for(gallery).read_text())["pid"] == daemon.pid:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        else:
            pytest.fail("the daemon never acknowledged its gallery")
        p = run("-c", str(cfg), "users", "remove", "alice", env_dir=model_dir)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.strip().splitlines()
        assert lines[0] == "removed alice"
        assert lines[1].startswith(
            f"the running daemon (pid {daemon.pid}) took the change after "
        ), lines
        assert float(lines[1].split("after ")[1].split(" s")[0]) < 1.0
    finally:
        daemon.kill()
        daemon.wait()
