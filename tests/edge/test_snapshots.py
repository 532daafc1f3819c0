from __future__ import annotations

import os
import stat

import cv2
import numpy as np
import pytest

from edge.errors import DecisionLogError
from edge.snapshots import SnapshotStore

DAY = 86400.0
NOW = 1714566896.0  # 2024-05-01 12:34:56 UTC


def _noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)


def test_snapshot_is_a_private_jpeg_in_a_day_directory(tmp_path):
    store = SnapshotStore(tmp_path / "snaps", max_days=30, max_mb=10, clock=lambda: NOW)
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 255  # pure red in RGB
    path = store.save("ev00001", rgb)
    assert path == tmp_path / "snaps" / "2024-05-01" / "ev00001.jpg"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    bgr = cv2.imread(str(path))
    assert bgr[16, 16, 2] > 240 and bgr[16, 16, 0] < 15  # red stayed red


@pytest.mark.parametrize(
    "event_id, rgb",
    [("../escape", np.zeros((8, 8, 3), np.uint8)), ("ev1", np.zeros((8, 8), np.uint8))],
)
def test_bad_snapshot_input_is_a_decision_log_error(tmp_path, event_id, rgb):
    store = SnapshotStore(tmp_path, max_days=30, max_mb=10, clock=lambda: NOW)
    with pytest.raises(DecisionLogError):
        store.save(event_id, rgb)


def test_snapshot_write_failure_is_a_decision_log_error(tmp_path):
    (tmp_path / "snaps").write_text("not a directory")
    store = SnapshotStore(tmp_path / "snaps", max_days=30, max_mb=10, clock=lambda: NOW)
    with pytest.raises(
        DecisionLogError, match=r"snaps/2024-05-01/ev1.jpg: cannot save snapshot for decision ev1"
    ):
        store.save("ev1", _noise(0))


def test_prune_by_age_removes_old_snapshots_and_empty_days(tmp_path):
    clock = [NOW - 10 * DAY]
    store = SnapshotStore(tmp_path, max_days=7, max_mb=100, clock=lambda: clock[0])
    old = store.save("old", _noise(1))
    clock[0] = NOW
    new = store.save("new", _noise(2))
    os.utime(old, (NOW - 10 * DAY, NOW - 10 * DAY))
    os.utime(new, (NOW - 6 * DAY, NOW - 6 * DAY))
    (tmp_path / "notes.jpg").write_bytes(b"not ours")  # outside any day directory: left alone
    assert store.prune(now=NOW) == 1
    assert not old.exists() and not old.parent.exists() and new.exists()
    assert (tmp_path / "notes.jpg").exists()
    assert store.prune() == 0  # the clock is NOW: nothing else is old


def test_prune_by_size_removes_oldest_first(tmp_path):
    store = SnapshotStore(tmp_path, max_days=30, max_mb=100, clock=lambda: NOW)
    paths = [store.save(f"ev{i}", _noise(i)) for i in range(5)]
    for i, p in enumerate(paths):
        os.utime(p, (NOW - 100 + i, NOW - 100 + i))
    keep = sum(p.stat().st_size for p in paths[-2:])  # room for exactly the two newest
    store = SnapshotStore(tmp_path, max_days=30, max_mb=keep / (1024 * 1024), clock=lambda: NOW)
    assert store.prune(now=NOW) == 3
    assert [p.exists() for p in paths] == [False, False, False, True, True]


def test_snapshots_are_never_written_through_a_symlinked_day_folder(tmp_path):
    import time as _time

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    snaps = tmp_path / "snaps"
    snaps.mkdir(mode=0o700)
    day = _time.strftime("%Y-%m-%d", _time.gmtime(1_767_225_600.0))
    (snaps / day).symlink_to(elsewhere)
    store = SnapshotStore(snaps, max_days=30, max_mb=10, clock=lambda: 1_767_225_600.0)
    with pytest.raises(DecisionLogError, match="is a symbolic link; refusing to write through it"):
        store.save("abcdef0123456789", np.zeros((8, 8, 3), np.uint8))
    assert list(elsewhere.iterdir()) == []
