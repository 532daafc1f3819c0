"""The web app's own files: its copy of the decision log, the labels CSV and the audit trail.

In: the daemon's decision records (paged from its log on request, and live as they
happen) and the household's answers and changes.  Out: ``decisions.jsonl`` (the records,
each once, oldest first: ``tools/report`` reads it as it reads the daemon's log),
``labels.csv`` (``event_id,truth``: the labels file ``tools/report --labels`` reads) and
``audit.jsonl`` (who changed what, when, from where), all in ``web.state_dir``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.decisions import iso_utc_ms, read_records

if TYPE_CHECKING:
    from edge.bridge.contract import DecisionsAnswer, Reply

log = logging.getLogger(__name__)

MAX_SYNC_PAGES = 200  # one sync reads at most this many pages of records
SYNC_EVERY_S = 10.0  # between syncs, the daemon's live decision events keep the copy current


def _append_line(path: Path, obj: dict[str, Any], *, sync: bool) -> None:
    data = (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


class Mirror:
    """The decision records the web app has seen, in ``decisions.jsonl``."""

    def __init__(self, state_dir: str | Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(state_dir) / "decisions.jsonl"
        self.clock = clock
        self._synced_at: float | None = None
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._ids: set[str] = set()
        if self.path.exists():
            for rec in read_records([self.path], strict=False):
                self._keep(rec)

    def _keep(self, rec: dict[str, Any]) -> bool:
        ident = rec.get("event_id")
        if not isinstance(ident, str) or ident in self._ids or not isinstance(rec.get("time"), str):
            return False
        self._ids.add(ident)
        self._records.append(rec)
        return True

    @property
    def last_time(self) -> str:
        with self._lock:
            return max((r["time"] for r in self._records), default="")

    def add(self, rec: dict[str, Any]) -> bool:
        """Keep one record (a live decision, or a page from the daemon); False if already kept."""
        with self._lock:
            if not self._keep(rec):
                return False
            _append_line(self.path, rec, sync=False)
            return True

    def on_message(self, msg: dict[str, Any]) -> None:
        """A Bridge listener: every decision the daemon makes, as it makes it."""
        if msg.get("type") == "decision" and isinstance(msg.get("record"), dict):
            self.add(msg["record"])

    def sync(
        self, decisions: Callable[[str], Reply[DecisionsAnswer]], *, force: bool = False
    ) -> int:
        """Fetch what the daemon logged since the newest record here (``decisions``: after an
        ISO time, a page: edge.web.client.DaemonClient.decisions); how many were new.

        At most every SYNC_EVERY_S unless forced: in between, the live events arrive by
        themselves, and a sync would cost a round trip through the daemon's loop (a frame)."""
        now = self.clock()
        if not force and self._synced_at is not None and now - self._synced_at < SYNC_EVERY_S:
            return 0
        self._synced_at = now
        new = 0
        for _ in range(MAX_SYNC_PAGES):
            res = decisions(self.last_time)
            if not res.ok or res.data is None:
                log.warning("decisions from the daemon: %s", res.why)
                break
            for rec in res.data.records:
                new += self.add(rec)
            if not res.data.more:
                break
        return new

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(self._records, key=lambda r: r["time"])

    def get(self, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            return next((r for r in self._records if r["event_id"] == event_id), None)


class Audit:
    """Every change made from the web app, one JSON line each, fsynced before it is answered."""

    def __init__(self, state_dir: str | Path, wall: Callable[[], float] = time.time) -> None:
        self.path = Path(state_dir) / "audit.jsonl"
        self.wall = wall
        self._lock = threading.Lock()

    def write(self, address: str, action: str, ok: bool, **details: Any) -> None:
        entry = {
            "time": iso_utc_ms(self.wall()),
            "from": address,
            "action": action,
            "ok": ok,
            **details,
        }
        with self._lock:
            _append_line(self.path, entry, sync=True)
        log.info("audit: %s %s from %s", action, "ok" if ok else "refused", address)

    def last(self, n: int = 100) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self._lock:
            lines = self.path.read_bytes().splitlines()[-n:]
        out = []
        for line in reversed(lines):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out
