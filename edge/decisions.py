"""The decision log: the contract between the daemon and tools/report.

In: types.Decision values, with the wall-clock time and snapshot path of each.
Out: ``decisions.jsonl``, one JSON object per line, appended and fsynced before
the door acts; rotated files ``decisions.jsonl.N.gz`` (N=1 newest).  Back: the
records, read in order across rotated files (:func:`read_records`), each field
checked by :func:`read_field`.  (Face snapshots are edge.snapshots.)

Record fields, schema 1: :data:`FIELDS` below is the code's list (what
:func:`decision_record` writes and :func:`read_field` checks for tools/report);
``docs/decision-log.md`` documents each one, and a test holds the two equal.
Floats are rounded to 4 decimals; a non-finite float is written as null.

Rotation: before a line would take the live file past ``max_bytes`` it is renamed
to ``.1`` and gzipped to ``.1.gz``; older ones shift to ``.N+1.gz`` and at most
``backups`` are kept.  ``backups=0`` keeps no rotated data: the full live file is
deleted and a new one started.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import logging
import math
import os
import re
import stat
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edge import jsonfields
from edge.closeable import Closeable
from edge.errors import DecisionLogError
from edge.files import atomic_write_bytes, folder_writable_by
from edge.types import Decision, Reason

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DECIMALS = 4


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class LogField:
    """One field of a record: its JSON kind, whether null is allowed, whether old logs may lack it."""

    kind: str  # "int", "number", "string", "name" (a person or null), "choice", "list", "object", "bool"
    nullable: bool = False
    required: bool = True
    choices: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None  # a number's range (a cosine is in [-1, 1])


_COSINE = (-1.0, 1.0)

FIELDS: dict[str, LogField] = {
    "schema": LogField("int"),
    "event_id": LogField("string"),
    "time": LogField("string"),
    "unix_time": LogField("number"),
    "decision": LogField("choice", choices=("unlock", "deny")),
    "reason": LogField("choice", choices=tuple(Reason)),
    "person": LogField("name", nullable=True, required=False),
    "best": LogField("name", nullable=True, required=False),
    "best_score": LogField("number", nullable=True, bounds=_COSINE),
    "second": LogField("name", nullable=True, required=False),
    "second_score": LogField("number", nullable=True, bounds=_COSINE),
    "threshold": LogField("number"),
    "min_margin": LogField("number"),
    "frames_used": LogField("int"),
    "frames_matched": LogField("int"),
    "track_id": LogField("int"),
    "quality": LogField("object"),
    "liveness": LogField("object", nullable=True),
    # Logs written before face-metered exposure have none.
    "exposure_stops": LogField("number", nullable=True, required=False),
    "model_sha256": LogField("string"),
    "camera": LogField("string"),
    "sources": LogField("list"),
    "snapshot": LogField("string", nullable=True),
    # Logs written before doors had ids have none.
    "door": LogField("string", nullable=True, required=False),
    # Logs written before attack drills have none: read as false.
    "drill": LogField("bool", required=False),
}


def read_field(rec: dict[str, Any], key: str) -> Any:
    """The value of ``key`` in a parsed record, checked against FIELDS; FieldError ("key: expected ...") if not.

    A nullable number reads null as NaN; a field that old logs may lack reads as None
    (NaN for a number, false for a boolean) when missing.
    """
    spec = FIELDS[key]
    if key not in rec and not spec.required:
        return math.nan if spec.kind == "number" else False if spec.kind == "bool" else None
    if spec.nullable and spec.kind != "number" and rec.get(key) is None and key in rec:
        return None
    if spec.kind == "number":
        v = jsonfields.number(rec, key, nullable=spec.nullable)
        if spec.bounds is not None and not math.isnan(v):
            lo, hi = spec.bounds
            if not lo - 1e-3 <= v <= hi + 1e-3:  # slack for float32 rounding
                raise jsonfields.FieldError(
                    f"{key}: expected a number in [{lo:g}, {hi:g}], got {v!r}"
                )
        return v
    if spec.kind == "int":
        return jsonfields.integer(rec, key)
    if spec.kind == "string":
        return jsonfields.text(rec, key)
    if spec.kind == "name":
        return jsonfields.opt_name(rec, key)
    if spec.kind == "choice":
        return jsonfields.choice(rec, key, spec.choices)
    if spec.kind == "list":
        return jsonfields.listed(rec, key)
    if spec.kind == "bool":
        return jsonfields.boolean(rec, key)
    return jsonfields.mapping(rec, key)


# --------------------------------------------------------------------------- records


def iso_utc_ms(t: float) -> str:
    """Unix seconds -> ``YYYY-MM-DDTHH:MM:SS.mmmZ``: sortable, unambiguous, human-readable."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clean(value: Any) -> Any:
    """Round floats; non-finite floats become null so every line is strict JSON."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return round(v, DECIMALS) if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return str(value)


def decision_record(
    d: Decision,
    *,
    unix_time: float,
    snapshot: str | None = None,
    exposure_stops: float | None = None,
) -> dict[str, Any]:
    """The flat, JSON-able log record of ``d`` (fields in the module docstring)."""
    return {
        "schema": SCHEMA_VERSION,
        "event_id": d.event_id,
        "time": iso_utc_ms(unix_time),
        "unix_time": _clean(unix_time),
        "decision": "unlock" if d.unlock else "deny",
        "reason": str(d.reason),
        "person": d.person,
        "best": d.best,
        "best_score": _clean(d.best_score),
        "second": d.second,
        "second_score": _clean(d.second_score),
        "threshold": _clean(d.threshold),
        "min_margin": _clean(d.min_margin),
        "frames_used": int(d.frames_used),
        "frames_matched": int(d.frames_matched),
        "track_id": int(d.track_id),
        "quality": _clean(dict(d.quality)),
        "liveness": None if d.liveness is None else _clean(dict(d.liveness)),
        "exposure_stops": None if exposure_stops is None else _clean(float(exposure_stops)),
        "model_sha256": d.model_sha256,
        "camera": d.camera,
        "sources": [str(s) for s in d.sources],
        "snapshot": None if snapshot is None else str(snapshot),
        "door": d.door or None,
        "drill": bool(d.drill),
    }


# --------------------------------------------------------------------------- writing


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rotated(path: Path) -> dict[int, Path]:
    """Compressed rotated siblings of ``path`` by number (``name.N.gz``, 1 = newest)."""
    pattern = re.compile(re.escape(path.name) + r"\.([1-9][0-9]*)\.gz")
    found: dict[int, Path] = {}
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            m = pattern.fullmatch(p.name)
            if m:
                found[int(m.group(1))] = p
    return found


class DecisionLog(Closeable):
    """Append-only JSON-lines log, one fsynced write per decision, with size rotation.

    A decision is logged when ``append`` returns: a crash or power cut after that
    loses nothing, and one before it leaves at most a torn last line, which the
    next open cuts off (that decision never took effect).
    """

    def __init__(self, path: str | Path, *, max_bytes: int, backups: int) -> None:
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self.backups = int(backups)
        self._fd: int | None = None
        self._regular = False
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` as one line and fsync it; DecisionLogError if it is not on disk."""
        event_id = record.get("event_id", "?")
        try:
            line = (
                json.dumps(
                    record, ensure_ascii=False, separators=(",", ":"), allow_nan=False
                ).encode()
                + b"\n"
            )
        except (TypeError, ValueError) as exc:
            raise DecisionLogError(
                f"{self.path}: cannot serialise decision {event_id}: {exc}"
            ) from None
        with self._lock:
            try:
                self._write(line)
            except OSError as exc:
                self._close()  # the next append reopens: the disk may have been fixed
                reason = exc.strerror or str(exc)
                raise DecisionLogError(
                    f"{self.path}: cannot write decision {event_id}: {reason}"
                ) from None

    def _write(self, line: bytes) -> None:
        if self._fd is None:
            self._open()
        assert self._fd is not None
        size = os.fstat(self._fd).st_size if self._regular else 0
        if self._regular and size > 0 and size + len(line) > self.max_bytes:
            self._rotate()
            size = 0
        n = os.write(self._fd, line)  # one write on an O_APPEND fd: lines never interleave
        if n != len(line):
            # A short write (disk nearly full) left part of a line: take it back.
            if self._regular:
                os.ftruncate(self._fd, size)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync(self._fd)

    def open(self) -> None:
        """Open (create) the log now: the daemon calls this before READY, so an unwritable log is found
        at start, not at the first decision; DecisionLogError naming the file if it cannot be."""
        with self._lock:
            if self._fd is not None:
                return
            try:
                self._open()
            except OSError as exc:
                raise DecisionLogError(
                    f"{self.path}: cannot open the decision log: {exc.strerror or exc}"
                ) from None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        open_folder = folder_writable_by(self.path.parent, stat.S_IWOTH)
        if open_folder is not None:
            raise OSError(
                errno.EPERM,
                f"its folder {self.path.parent} is world-writable (mode "
                f"{open_folder:04o}): anyone could replace the log",
            )
        try:
            # Never through a symlink: whoever plants one would choose what facegate appends to (and cuts).
            fd = os.open(
                self.path,
                os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                0o640,
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OSError(
                    errno.ELOOP, "is a symbolic link; refusing to write through it"
                ) from None
            raise
        try:
            self._regular = stat.S_ISREG(os.fstat(fd).st_mode)
            if self._regular:
                self._repair_tail(fd)
                self._finish_pending()
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _repair_tail(self, fd: int) -> None:
        """End the file on a newline, so our next line is not glued onto a torn one.

        A complete JSON object missing only its newline is kept; anything else
        after the last newline is a write a crash interrupted, and is cut off.
        """
        size = os.fstat(fd).st_size
        if size == 0:
            return
        with open(
            fd, "rb", buffering=0, closefd=False
        ) as f:  # the fd just opened (read-write), not the path again
            pos, chunks = size, []
            while (
                pos > 0
            ):  # backwards, a block at a time, until a newline: linear in the tail's length
                step = min(65536, pos)
                pos -= step
                f.seek(pos)
                chunks.append(f.read(step))
                if b"\n" in chunks[-1]:
                    break
            tail = b"".join(reversed(chunks))
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n") + 1  # 0 when the whole file is one torn line
        fragment = tail[cut:]
        try:
            complete = isinstance(json.loads(fragment), dict)
        except ValueError:
            complete = False
        if complete:
            os.write(fd, b"\n")
            os.fsync(fd)
        else:
            keep = size - len(fragment)
            log.warning(
                "%s: cut off a torn last line (%d bytes) left by a crash", self.path, len(fragment)
            )
            os.ftruncate(fd, keep)
            os.fsync(fd)

    def _rotate(self) -> None:
        """live -> .1 -> .1.gz, shifting older .N.gz up; every line stays in exactly one file."""
        self._close()
        self._finish_pending()
        rotated = _rotated(self.path)
        for n in sorted(
            rotated, reverse=True
        ):  # highest first: never overwrite a file not yet moved
            if n >= self.backups:
                rotated[n].unlink()  # would become backups+1: the oldest data goes
            else:
                os.replace(rotated[n], rotated[n].with_name(f"{self.path.name}.{n + 1}.gz"))
        if self.backups > 0:
            os.replace(self.path, self._plain(1))
            _fsync_dir(self.path.parent)
            self._finish_pending()
        else:
            self.path.unlink()
            _fsync_dir(self.path.parent)
        log.info(
            "%s: rotated at %d bytes (keeping %d rotated files)",
            self.path,
            self.max_bytes,
            self.backups,
        )
        self._open()

    def _plain(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def _finish_pending(self) -> None:
        """Compress a rotated ``.1`` a crash left plain (or drop it if its .gz is already complete)."""
        plain = self._plain(1)
        if not plain.exists():
            return
        gz = plain.with_name(plain.name + ".gz")
        if not gz.exists():
            atomic_write_bytes(
                gz, gzip.compress(plain.read_bytes(), compresslevel=6, mtime=0), mode=0o640
            )
        plain.unlink()
        _fsync_dir(self.path.parent)


# --------------------------------------------------------------------------- reading


def log_files(path: str | Path) -> list[Path]:
    """Every file of the log at ``path``: rotated ones oldest first, then the live one."""
    path = Path(path)
    rotated = _rotated(path)
    files = [rotated[n] for n in sorted(rotated, reverse=True)]
    # A plain .1 is a rotation a crash interrupted before compressing.  Beside a
    # .1.gz it is a leftover of a complete one: read the .gz alone, no line twice.
    plain = path.with_name(f"{path.name}.1")
    if plain.exists() and 1 not in rotated:
        files.append(plain)
    if path.exists():
        files.append(path)
    return files


def read_records(paths: Iterable[str | Path], *, strict: bool = True) -> Iterator[dict[str, Any]]:
    """Yield the records of ``paths`` in order; ``.gz`` files are decompressed.

    A torn last line (no newline, not JSON) is what a crash mid-write leaves: it
    is skipped with a warning.  Any other bad line is corruption: DecisionLogError,
    or with ``strict=False`` a warning and the line skipped.
    """
    for given in paths:
        path = Path(given)
        opener = gzip.open if path.name.endswith(".gz") else open
        lineno = 0
        try:
            if not stat.S_ISREG(
                os.stat(path).st_mode
            ):  # a FIFO would block forever, a device never end
                raise DecisionLogError(f"{path}: not a regular file")
            with opener(path, "rb") as f:
                for lineno, raw in enumerate(f, 1):
                    record = _parse(path, lineno, raw, strict)
                    if record is not None:
                        yield record
        except (OSError, EOFError, zlib.error) as exc:  # zlib.error: a corrupt .gz
            if isinstance(exc, DecisionLogError):
                raise
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            msg = f"{path}: cannot read after line {lineno}: {reason}"
            if strict:
                raise DecisionLogError(msg) from None
            log.warning("%s; rest of the file skipped", msg)


def _parse(path: Path, lineno: int, raw: bytes, strict: bool) -> dict[str, Any] | None:
    if not raw.strip():
        return None
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        record = None
    if not isinstance(record, dict):
        if not raw.endswith(b"\n"):
            log.warning(
                "%s:%d: torn last line skipped (a write interrupted by a crash)", path, lineno
            )
            return None
        _bad(f"{path}:{lineno}: not a JSON object", strict)
        return None
    schema = record.get("schema")
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        _bad(f"{path}:{lineno}: schema: expected a positive integer, got {schema!r}", strict)
        return None
    if schema > SCHEMA_VERSION:
        raise DecisionLogError(
            f"{path}:{lineno}: schema: record has schema {schema}, this facegate reads up to "
            f"{SCHEMA_VERSION}; upgrade facegate"
        )
    return record


def _bad(msg: str, strict: bool) -> None:
    if strict:
        raise DecisionLogError(msg)
    log.warning("%s; skipped", msg)
