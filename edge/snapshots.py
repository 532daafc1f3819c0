"""Face snapshots: one JPEG per decision, for review, pruned by age and total size.

In: an event id and the RGB face crop a decision was made on.  Out:
``<directory>/<YYYY-MM-DD>/<event_id>.jpg`` (0600 files in 0700 folders: they are
biometric images), whose path the decision log records; :meth:`SnapshotStore.prune`
deletes the oldest beyond ``max_days`` or ``max_mb``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.errors import DecisionLogError
from edge.files import atomic_write_bytes

log = logging.getLogger(__name__)

_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class SnapshotStore:
    """JPEG face snapshots per decision, pruned by age and total size.

    They are biometric images: files are 0600 in 0700 directories, and days are
    UTC, like the log's ``time``.  ``max_days=0`` or ``max_mb=0`` keeps none.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        max_days: float,
        max_mb: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.max_days = float(max_days)
        self.max_bytes = float(max_mb) * 1024 * 1024
        self.clock = clock

    def save(self, event_id: str, rgb: np.ndarray) -> Path:
        """Write the snapshot; DecisionLogError on failure so the caller logs snapshot=null."""
        if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
            raise DecisionLogError(
                f"{self.directory}: event_id {event_id!r} is not a safe file name"
            )
        day = time.strftime("%Y-%m-%d", time.gmtime(self.clock()))
        path = self.directory / day / f"{event_id}.jpg"
        try:
            if not (
                isinstance(rgb, np.ndarray)
                and rgb.dtype == np.uint8
                and rgb.ndim == 3
                and rgb.shape[2] == 3
            ):
                raise ValueError(
                    f"expected uint8 HxWx3 RGB, got {getattr(rgb, 'dtype', type(rgb))} "
                    f"{getattr(rgb, 'shape', '')}"
                )
            ok, buf = cv2.imencode(
                ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
            )
            if not ok:
                raise ValueError("JPEG encoding failed")
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.parent.mkdir(mode=0o700, exist_ok=True)
            for d in (
                self.directory,
                path.parent,
            ):  # never through a planted link: faces would land elsewhere
                if d.is_symlink():
                    raise OSError(
                        errno.ELOOP, f"{d} is a symbolic link; refusing to write through it"
                    )
            atomic_write_bytes(path, buf.tobytes(), mode=0o600)
        except (OSError, ValueError, cv2.error) as exc:
            lines = str(exc).strip().splitlines()  # cv2.error spans several lines
            reason = getattr(exc, "strerror", None) or (lines[-1] if lines else type(exc).__name__)
            raise DecisionLogError(
                f"{path}: cannot save snapshot for decision {event_id}: {reason}"
            ) from None
        return path

    def _snapshots(self) -> list[tuple[float, int, Path]]:
        found: list[tuple[float, int, Path]] = []
        if not self.directory.is_dir():
            return found
        for day in self.directory.iterdir():
            if not (_DAY.fullmatch(day.name) and day.is_dir()):
                continue  # only touch what save() wrote
            for p in day.glob("*.jpg"):
                try:
                    st = p.stat()
                except OSError:
                    continue
                found.append((st.st_mtime, st.st_size, p))
        return sorted(found)

    def prune(self, now: float | None = None) -> int:
        """Delete snapshots older than max_days, then oldest first until under max_mb; return how many."""
        now = self.clock() if now is None else now
        snaps = self._snapshots()
        cutoff = now - self.max_days * 86400.0
        total = sum(size for _, size, _ in snaps)
        deleted = 0
        for mtime, size, p in snaps:  # oldest first
            if mtime >= cutoff and total <= self.max_bytes:
                break
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("%s: cannot delete snapshot: %s", p, exc.strerror)
                continue
            total -= size
            deleted += 1
        for day in self.directory.iterdir() if self.directory.is_dir() else ():
            if _DAY.fullmatch(day.name) and day.is_dir():
                with contextlib.suppress(OSError):
                    day.rmdir()  # only succeeds when empty
        if deleted:
            log.info("%s: pruned %d snapshots", self.directory, deleted)
        return deleted
