"""edge.decisions: the decision-log records, appending, rotation, reading, snapshots."""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import re
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from edge.decisions import (
    FIELDS,
    SCHEMA_VERSION,
    DecisionLog,
    decision_record,
    log_files,
    read_field,
    read_records,
)
from edge.errors import DecisionLogError
from edge.jsonfields import FieldError
from edge.types import Decision, Reason

DOC = Path(__file__).resolve().parents[2] / "docs" / "decision-log.md"
# How docs/decision-log.md names each kind of FIELDS.
DOC_TYPES = {
    "int": "integer",
    "number": "number",
    "string": "string",
    "name": "string",
    "choice": "string",
    "list": "list of strings",
    "object": "object",
    "bool": "boolean",
}


@pytest.fixture
def decision() -> Decision:
    return Decision(
        event_id="20240501T123456-0001",
        at=12.5,
        unlock=True,
        reason=Reason.ACCEPTED,
        person="alice",
        best="alice",
        best_score=0.812345678,
        second="bob",
        second_score=0.31234,
        threshold=0.6,
        min_margin=0.1,
        frames_used=5,
        frames_matched=4,
        track_id=17,
        quality={"face_px": 142.0, "sharpness": 88.123456, "brightness": 120.5},
        liveness={"score": 0.987654},
        model_sha256="f" * 64,
        camera="picamera2:0",
        sources=("frames/0001.jpg", "frames/0002.jpg"),
    )


def _record(i: int) -> dict:
    """Records of equal length, so how many fit in a file is exact."""
    return {
        "schema": SCHEMA_VERSION,
        "event_id": f"ev{i:05d}",
        "decision": "deny",
        "reason": "unknown_face",
    }


LINE = len(json.dumps(_record(0), separators=(",", ":"))) + 1


def _read_all(path: Path) -> list[dict]:
    return list(read_records(log_files(path)))


# --------------------------------------------------------------------------- records


def test_record_has_every_field_rounded_and_round_trips(decision, tmp_path):
    rec = decision_record(
        decision,
        unix_time=1714566896.789123,
        snapshot="/var/lib/facegate/snapshots/2024-05-01/x.jpg",
    )
    assert list(rec) == list(FIELDS)
    assert rec["schema"] == 1 and rec["decision"] == "unlock" and rec["reason"] == "accepted"
    assert rec["time"] == "2024-05-01T12:34:56.789Z"
    assert rec["unix_time"] == 1714566896.7891
    assert (rec["best_score"], rec["second_score"]) == (0.8123, 0.3123)
    assert rec["quality"] == {"face_px": 142.0, "sharpness": 88.1235, "brightness": 120.5}
    assert rec["liveness"] == {"score": 0.9877} and rec["exposure_stops"] is None
    assert (
        decision_record(decision, unix_time=1714566896.789123, exposure_stops=1.234567)[
            "exposure_stops"
        ]
        == 1.2346
    )
    assert rec["sources"] == ["frames/0001.jpg", "frames/0002.jpg"]
    assert (rec["frames_used"], rec["frames_matched"], rec["track_id"]) == (5, 4, 17)
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path, max_bytes=1 << 20, backups=3) as dlog:
        dlog.append(rec)
    assert _read_all(path) == [rec]


def test_denial_without_gallery_or_liveness_is_strict_json(decision):
    d = replace(
        decision,
        unlock=False,
        reason=Reason.NO_GALLERY,
        person=None,
        best=None,
        best_score=-1.0,
        second=None,
        second_score=float("-inf"),
        liveness=None,
        quality={"x": float("nan")},
    )
    rec = decision_record(d, unix_time=1714566896.789123)
    assert rec["decision"] == "deny" and rec["snapshot"] is None and rec["liveness"] is None
    assert rec["second_score"] is None and rec["quality"] == {"x": None}
    json.dumps(rec, allow_nan=False)


# --------------------------------------------------------------------------- appending


def test_each_append_is_one_write_then_one_fsync(tmp_path, monkeypatch):
    path = tmp_path / "log" / "decisions.jsonl"  # parent created on demand
    calls: list[tuple[str, bytes | None]] = []
    real_write, real_fsync = os.write, os.fsync
    monkeypatch.setattr(
        os, "write", lambda fd, data: calls.append(("write", bytes(data))) or real_write(fd, data)
    )
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(("fsync", None)) or real_fsync(fd))
    dlog = DecisionLog(path, max_bytes=1 << 20, backups=3)
    for i in range(3):
        dlog.append(_record(i))
    dlog.close()
    lines = path.read_bytes().splitlines(keepends=True)
    assert [json.loads(line) for line in lines] == [_record(i) for i in range(3)]
    assert calls == [c for line in lines for c in (("write", line), ("fsync", None))]
    assert stat.S_IMODE(path.stat().st_mode) & ~0o640 == 0


def test_appending_continues_an_existing_log(tmp_path):
    path = tmp_path / "decisions.jsonl"
    for i in range(2):
        with DecisionLog(path, max_bytes=1 << 20, backups=1) as dlog:
            dlog.append(_record(i))
    assert _read_all(path) == [_record(0), _record(1)]


def test_disk_full_is_a_decision_log_error(tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full not available")
    dlog = DecisionLog("/dev/full", max_bytes=100, backups=3)
    with pytest.raises(DecisionLogError) as info:
        dlog.append(_record(7))
    assert str(info.value) == "/dev/full: cannot write decision ev00007: No space left on device"
    with pytest.raises(DecisionLogError, match="No space left"):  # and again on retry
        dlog.append(_record(8))


def test_unserialisable_record_is_refused(tmp_path):
    with pytest.raises(DecisionLogError, match=r"cannot serialise decision e1"):
        DecisionLog(tmp_path / "d.jsonl", max_bytes=1000, backups=1).append(
            {"event_id": "e1", "x": float("nan")}
        )


def test_torn_tail_from_a_crash_is_cut_before_appending(tmp_path, caplog):
    path = tmp_path / "decisions.jsonl"
    path.write_text(json.dumps(_record(0)) + "\n" + '{"schema": 1, "event_id": "ev0')
    with (
        caplog.at_level(logging.WARNING, logger="edge.decisions"),
        DecisionLog(path, max_bytes=1 << 20, backups=1) as dlog,
    ):
        dlog.append(_record(1))
    assert "torn last line" in caplog.text
    assert _read_all(path) == [_record(0), _record(1)]


def test_complete_record_missing_its_newline_is_kept(tmp_path):
    path = tmp_path / "decisions.jsonl"
    path.write_text(json.dumps(_record(0)))
    with DecisionLog(path, max_bytes=1 << 20, backups=1) as dlog:
        dlog.append(_record(1))
    assert _read_all(path) == [_record(0), _record(1)]


# --------------------------------------------------------------------------- rotation


def test_rotation_loses_and_duplicates_nothing(tmp_path):
    path = tmp_path / "decisions.jsonl"
    n = 50
    with DecisionLog(path, max_bytes=3 * LINE, backups=100) as dlog:
        for i in range(n):
            dlog.append(_record(i))
    files = log_files(path)
    assert files[-1] == path and len(files) == 1 + (n - 1) // 3
    assert all(f.name.endswith(".gz") for f in files[:-1])
    assert _read_all(path) == [_record(i) for i in range(n)]
    assert all(len(gzip.decompress(f.read_bytes())) == 3 * LINE for f in files[:-1])


@pytest.mark.parametrize("n, per_file, backups", [(50, 3, 3), (20, 4, 1), (7, 2, 5)])
def test_rotation_keeps_only_the_newest_backups(tmp_path, n, per_file, backups):
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path, max_bytes=per_file * LINE, backups=backups) as dlog:
        for i in range(n):
            dlog.append(_record(i))
    rotations = (n - 1) // per_file
    kept_files = min(rotations, backups)
    rotated = sorted(p.name for p in tmp_path.iterdir() if p != path)
    assert rotated == sorted(f"decisions.jsonl.{k}.gz" for k in range(1, kept_files + 1))
    dropped = (rotations - kept_files) * per_file  # whole oldest files, nothing else
    assert _read_all(path) == [_record(i) for i in range(dropped, n)]
    with gzip.open(tmp_path / "decisions.jsonl.1.gz") as f:  # .1 is the newest rotated file
        assert json.loads(f.readlines()[-1]) == _record(n - 1 - (n - 1) % per_file - 1)


def test_backups_zero_deletes_rotated_data(tmp_path):
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path, max_bytes=2 * LINE, backups=0) as dlog:
        for i in range(5):
            dlog.append(_record(i))
    assert [p.name for p in tmp_path.iterdir()] == ["decisions.jsonl"]
    assert _read_all(path) == [_record(4)]


def test_oversized_line_gets_a_file_of_its_own(tmp_path):
    path = tmp_path / "decisions.jsonl"
    big = {**_record(1), "pad": "x" * 200}
    with DecisionLog(path, max_bytes=LINE, backups=5) as dlog:
        for rec in (_record(0), big, _record(2)):
            dlog.append(rec)
    assert _read_all(path) == [_record(0), big, _record(2)]
    assert len(log_files(path)) == 3


def test_rotation_interrupted_by_a_crash_is_finished_without_duplicates(tmp_path):
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path, max_bytes=2 * LINE, backups=5) as dlog:
        for i in range(4):
            dlog.append(_record(i))  # .1.gz holds 0-1, live 2-3
    # crash after live -> .1 but before compressing: .1.gz already moved to .2.gz
    os.replace(tmp_path / "decisions.jsonl.1.gz", tmp_path / "decisions.jsonl.2.gz")
    os.replace(path, tmp_path / "decisions.jsonl.1")
    assert _read_all(path) == [_record(i) for i in range(4)]
    with DecisionLog(path, max_bytes=2 * LINE, backups=5) as dlog:
        dlog.append(_record(4))
    assert not (tmp_path / "decisions.jsonl.1").exists()
    assert _read_all(path) == [_record(i) for i in range(5)]
    # crash after compressing but before removing the plain copy: read it once
    (tmp_path / "decisions.jsonl.1").write_bytes(
        gzip.decompress((tmp_path / "decisions.jsonl.1.gz").read_bytes())
    )
    assert _read_all(path) == [_record(i) for i in range(5)]


# --------------------------------------------------------------------------- reading


def test_gz_and_plain_files_are_read_in_the_order_given(tmp_path):
    gz = tmp_path / "decisions.jsonl.1.gz"
    gz.write_bytes(
        gzip.compress(b"".join(json.dumps(_record(i)).encode() + b"\n" for i in range(3)))
    )
    live = tmp_path / "decisions.jsonl"
    live.write_text(json.dumps(_record(3)) + "\n")
    assert log_files(live) == [gz, live]
    assert list(read_records([gz, live])) == [_record(i) for i in range(4)]


def test_log_files_lists_oldest_first(tmp_path):
    live = tmp_path / "decisions.jsonl"
    for name in (
        "decisions.jsonl.2.gz",
        "decisions.jsonl.10.gz",
        "decisions.jsonl.1.gz",
        "other.jsonl.1.gz",
    ):
        (tmp_path / name).write_bytes(b"")
    names = [p.name for p in log_files(live)]
    assert names == ["decisions.jsonl.10.gz", "decisions.jsonl.2.gz", "decisions.jsonl.1.gz"]


def test_torn_last_line_is_skipped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "decisions.jsonl"
    path.write_text(
        json.dumps(_record(0)) + "\n" + json.dumps(_record(1)) + "\n" + '{"schema": 1, "ev'
    )
    with caplog.at_level(logging.WARNING, logger="edge.decisions"):
        assert list(read_records([path])) == [_record(0), _record(1)]
    assert f"{path}:3: torn last line skipped" in caplog.text


def test_corrupt_middle_line_names_file_and_line(tmp_path, caplog):
    path = tmp_path / "decisions.jsonl"
    path.write_text(json.dumps(_record(0)) + "\n" + "garbage\n" + json.dumps(_record(2)) + "\n")
    with pytest.raises(DecisionLogError) as info:
        list(read_records([path]))
    assert str(info.value) == f"{path}:2: not a JSON object"
    with caplog.at_level(logging.WARNING, logger="edge.decisions"):
        assert list(read_records([path], strict=False)) == [_record(0), _record(2)]
    assert f"{path}:2: not a JSON object" in caplog.text


def test_unparsable_complete_last_line_is_corruption_not_a_tear(tmp_path):
    path = tmp_path / "decisions.jsonl"
    path.write_text(json.dumps(_record(0)) + "\n" + "[1, 2]\n")
    with pytest.raises(DecisionLogError, match=re.escape(f"{path}:2: not a JSON object")):
        list(read_records([path]))


def test_newer_schema_is_refused_even_when_not_strict(tmp_path):
    path = tmp_path / "decisions.jsonl"
    path.write_text(
        json.dumps(_record(0))
        + "\n"
        + json.dumps({**_record(1), "schema": SCHEMA_VERSION + 1})
        + "\n"
    )
    with pytest.raises(DecisionLogError, match=re.escape(f"{path}:2: schema: record has schema 2")):
        list(read_records([path], strict=False))


def test_truncated_gzip_is_a_decision_log_error(tmp_path):
    gz = tmp_path / "decisions.jsonl.1.gz"
    data = gzip.compress(b"".join(json.dumps(_record(i)).encode() + b"\n" for i in range(50)))
    gz.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecisionLogError, match=re.escape(f"{gz}: cannot read")):
        list(read_records([gz]))


# --------------------------------------------------------------------------- snapshots


def test_the_log_is_never_written_through_a_symlink(tmp_path):
    """A planted link must not choose what facegate appends to, nor let it cut the target's last line as 'torn'."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious line without a newline")
    link = tmp_path / "decisions.jsonl"
    link.symlink_to(victim)
    dlog = DecisionLog(link, max_bytes=1 << 20, backups=1)
    with pytest.raises(DecisionLogError) as e:
        dlog.open()
    assert (
        str(e.value)
        == f"{link}: cannot open the decision log: is a symbolic link; refusing to write through it"
    )
    with pytest.raises(DecisionLogError, match="is a symbolic link"):
        dlog.append({"event_id": "e1"})
    assert victim.read_bytes() == b"precious line without a newline"


def test_an_unusable_log_directory_is_found_when_the_log_opens(tmp_path):
    """The daemon opens its log before READY (edge.service.build_service): a path it cannot create fails there."""
    (tmp_path / "not-a-dir").write_text("")
    with pytest.raises(
        DecisionLogError,
        match=r"not-a-dir/decisions.jsonl: cannot open the decision log: File exists",
    ):
        DecisionLog(tmp_path / "not-a-dir" / "decisions.jsonl", max_bytes=1000, backups=1).open()


def test_a_long_torn_tail_is_repaired_in_linear_time(tmp_path):
    """A 20 MB newline-free tail (a crash mid-write of garbage) is cut in one backwards pass,
    keeping what came before."""
    path = tmp_path / "decisions.jsonl"
    good = json.dumps({"event_id": "e0", "schema": 1}).encode() + b"\n"
    path.write_bytes(good + b"x" * (20 << 20))
    with DecisionLog(path, max_bytes=1 << 30, backups=1) as dlog:
        dlog.append({"event_id": "e1"})
    assert path.read_bytes() == good + b'{"event_id":"e1"}\n'


def test_a_log_in_a_world_writable_folder_is_refused(tmp_path):
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    try:
        with pytest.raises(DecisionLogError, match="is world-writable"):
            DecisionLog(open_dir / "decisions.jsonl", max_bytes=1000, backups=1).open()
    finally:
        open_dir.chmod(0o700)


def test_the_docs_table_is_the_schema_the_code_writes_and_checks():
    """docs/decision-log.md is the schema's documentation: same fields, order, types and optionality."""
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| `([a-z_0-9]+)` \| ([^|]+) \| ([^|]+) \|", line)
        if m:
            rows[m[1]] = (m[2].strip(), m[3].strip())
    assert list(rows) == list(FIELDS)
    for name, spec in FIELDS.items():
        kind = DOC_TYPES[spec.kind] + (" or null" if spec.nullable else "")
        assert rows[name][0] == kind, name
        assert (rows[name][1] == "optional") == (not spec.required), name


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("event_id", "", "event_id: expected a non-empty string, got ''"),
        ("best_score", "high", "best_score: expected a number or null, got 'high'"),
        ("threshold", None, "threshold: expected a number, got None"),
        ("best_score", float("inf"), "best_score: expected a finite number or null, got inf"),
        ("best_score", 1e308, "best_score: expected a number in [-1, 1], got 1e+308"),
        ("second_score", -1.5, "second_score: expected a number in [-1, 1], got -1.5"),
        ("unix_time", 10**400, "unix_time: expected a finite number, got an integer of 401 digits"),
        ("reason", "let_in", "reason: expected one of accepted, unknown_face"),
        ("decision", "open", "decision: expected one of unlock, deny, got 'open'"),
        ("person", "eve\x1b[2J", "person: holds control characters"),
        ("frames_used", True, "frames_used: expected a whole number, got True"),
        ("sources", "a.jpg", "sources: expected a list, got 'a.jpg'"),
        ("quality", [], "quality: expected an object, got list"),
    ],
)
def test_read_field_refuses_a_wrong_type_naming_the_field(decision, field, value, message):
    rec = decision_record(decision, unix_time=1714566896.789123)
    assert read_field(rec, field) == rec[field] or rec[field] is None
    rec[field] = value
    with pytest.raises(FieldError) as info:
        read_field(rec, field)
    assert str(info.value).startswith(message)


def test_fields_old_logs_lack_read_as_missing(decision):
    rec = decision_record(decision, unix_time=1714566896.789123)
    for name, spec in FIELDS.items():
        if not spec.required:
            del rec[name]
            got = read_field(rec, name)
            if spec.kind == "bool":
                assert got is False, name  # false: e.g. no drill ran
            else:
                assert got is None or math.isnan(got), name  # None, or NaN for a number


def test_every_record_says_whether_a_drill_ran_and_old_logs_read_as_none_did(decision, tmp_path):
    assert decision_record(decision, unix_time=0.0)["drill"] is False
    drilled = replace(decision, unlock=False, reason=Reason.ATTACK_DRILL, drill=True)
    rec = decision_record(drilled, unix_time=0.0)
    assert rec["drill"] is True and rec["decision"] == "deny" and rec["reason"] == "attack_drill"
    assert read_field(rec, "drill") is True
    old = {k: v for k, v in rec.items() if k != "drill"}  # a log from before drills
    assert read_field(old, "drill") is False
    for bad in (1, 0, "true", None):
        with pytest.raises(FieldError, match="drill: expected true or false"):
            read_field({**rec, "drill": bad}, "drill")
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path, max_bytes=1 << 20, backups=1) as dlog:
        dlog.append(rec)
        dlog.append(old)
    assert [r.get("drill") for r in _read_all(path)] == [True, None]
