"""edge.filelock: one daemon per door, one gallery writer at a time, across real processes."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import pytest

from edge.errors import DecisionLogError, ExitCode, LockError
from edge.filelock import FileLock, lock_path_for

HOLD = """
import sys, time
from edge.filelock import FileLock
lock = FileLock.acquire(sys.argv[1], what="test holder")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _holder(path, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    path = tmp_path / "decisions.jsonl.lock"
    p = _holder(path, 30)
    try:
        with pytest.raises(LockError) as e:
            FileLock.acquire(path, what="a facegate daemon for this door")
        assert str(e.value) == (
            f"{path}: a facegate daemon for this door is already running (pid {p.pid}); "
            "refusing to run a second"
        )
        assert e.value.exit_code == ExitCode.BUSY
    finally:
        p.kill()
        p.wait()
    # The kernel dropped the dead holder's lock: no stale lock to clean up by hand.
    with FileLock.acquire(path, what="x") as lock:
        assert lock.held
    assert not lock.held


def test_a_writer_waits_for_the_lock_to_be_free(tmp_path):
    path = lock_path_for(tmp_path / "gallery.json")
    assert path.name == "gallery.json.lock"
    p = _holder(path, 0.5)
    t = time.monotonic()
    with FileLock.acquire(path, what="x", wait_s=10):
        assert time.monotonic() - t > 0.1  # it waited for the holder to finish
    p.wait()


def test_a_lock_file_behind_a_symlink_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    link = tmp_path / "decisions.jsonl.lock"
    link.symlink_to(target)
    with pytest.raises(LockError, match="cannot open the lock file: is a symbolic link"):
        FileLock.acquire(link, what="x")


def test_two_daemons_on_one_door_the_second_refuses_in_one_line(tmp_path, model_dir, samples):
    """The real command: a second `facegate run` on the same decision log exits BUSY before touching the relay."""
    cfg = tmp_path / "door.yaml"
    cfg.write_text(
        f"gallery: {{path: {tmp_path / 'gallery.json'}}}\nlog: {{decisions: {tmp_path / 'decisions.jsonl'}}}\n"
        "liveness: {enabled: false}\n"
    )
    env = {**os.environ, "FACEGATE_MODEL_DIR": str(model_dir)}
    frames = [str(p) for p in sorted((samples / "nuaa" / "ClientRaw" / "0005").glob("*.jpg"))[:3]]
    enroll = subprocess.run(
        [sys.executable, "-m", "edge", "-c", str(cfg), "enroll", "alice", *frames],
        capture_output=True,
        text=True,
        env=env,
    )
    assert enroll.returncode == 0, enroll.stderr
    p = _holder(tmp_path / "decisions.jsonl.lock", 30)  # stands for the first daemon
    try:
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge",
                "-c",
                str(cfg),
                "run",
                "--mock-gpio",
                "--replay",
                str(samples / "nuaa" / "ClientRaw" / "0005"),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
    finally:
        p.kill()
        p.wait()
    assert second.returncode == ExitCode.BUSY
    lines = [
        line for line in second.stderr.strip().splitlines() if line.startswith("facegate: error:")
    ]
    assert len(lines) == 1 and "Traceback" not in second.stderr
    assert (
        f"decisions.jsonl.lock: a facegate daemon for this door is already running (pid {p.pid})"
        in lines[0]
    )


def test_two_enrollments_at_once_keep_both_people(config, tmp_path, samples, monkeypatch):
    """Each writer loads, adds and saves under the gallery's lock; a slow save widens the race it closes."""
    import threading
    from dataclasses import replace

    from edge.enroll import add_to_gallery, from_images
    from edge.gallery import Gallery
    from edge.pipeline import build_pipeline

    door = replace(config, gallery=replace(config.gallery, path=str(tmp_path / "gallery.json")))
    pipeline = build_pipeline(door)
    good = {
        name: from_images(
            pipeline, sorted((samples / "nuaa" / "ClientRaw" / s).glob("*.jpg"))[:2], door.policy
        )
        for name, s in (("alice", "0005"), ("bob", "0009"))
    }
    real_save = Gallery.save

    def slow_save(self, path):
        time.sleep(0.3)  # both writers would have loaded the old gallery by now, without the lock
        real_save(self, path)

    monkeypatch.setattr(Gallery, "save", slow_save)
    errors: list[BaseException] = []

    def enroll(name: str) -> None:
        try:
            add_to_gallery(door, name, good[name], pipeline.embedder)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=enroll, args=(n,)) for n in good]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(Gallery.load(door.gallery.path).names()) == ["alice", "bob"]


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_a_folder_that_cannot_be_written_is_not_busy(tmp_path, monkeypatch, code):
    """A read-only log folder said "already running" (exit 12); it is the folder that cannot be written."""
    real_open = os.open

    def refuse(path, flags, *a, **kw):
        if str(path).endswith(".lock"):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(DecisionLogError) as info:
        FileLock.acquire(
            tmp_path / "decisions.jsonl.lock", what="a daemon", unwritable=DecisionLogError
        )
    assert str(info.value) == (
        f"{tmp_path}: the folder cannot be written (making the lock file decisions.jsonl.lock: "
        f"{os.strerror(code)})"
    )
    with pytest.raises(LockError):  # the default stays the lock's own error
        FileLock.acquire(tmp_path / "x.lock", what="a daemon")


def test_a_daemon_whose_log_folder_cannot_be_written_exits_log_not_busy(
    tmp_path, model_dir, samples
):
    """The real command, its decision log in /sys (no new file can be made there, even by root)."""
    cfg = tmp_path / "door.yaml"
    cfg.write_text(
        f"gallery: {{path: {tmp_path / 'gallery.json'}}}\n"
        "log: {decisions: /sys/facegate-decisions.jsonl}\nliveness: {enabled: false}\n"
    )
    env = {**os.environ, "FACEGATE_MODEL_DIR": str(model_dir)}
    frames = [str(p) for p in sorted((samples / "nuaa" / "ClientRaw" / "0005").glob("*.jpg"))[:3]]
    enroll = subprocess.run(
        [sys.executable, "-m", "edge", "-c", str(cfg), "enroll", "alice", *frames],
        capture_output=True,
        text=True,
        env=env,
    )
    assert enroll.returncode == 0, enroll.stderr
    replay = str(samples / "nuaa" / "ClientRaw" / "0005")
    p = subprocess.run(
        [sys.executable, "-m", "edge", "-c", str(cfg), "run", "--mock-gpio", "--replay", replay],
        capture_output=True,
        text=True,
        env=env,
    )
    lines = [line for line in p.stderr.strip().splitlines() if line.startswith("facegate: error:")]
    assert p.returncode == ExitCode.LOG, p.stderr
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert lines[0] == (
        "facegate: error: /sys: the folder cannot be written (making the lock file "
        "facegate-decisions.jsonl.lock: Permission denied)"
    )
