"""The running daemon's gallery: a change on disk takes effect within a second, and says so.

In: the gallery path, the embedder's sha256 and preprocessing, and the clock.
Out: the Gallery to match against now (``poll``), and an acknowledgement file
``<gallery>.loaded`` naming the sha256 of the file the daemon now uses, which
``facegate users remove`` and ``facegate enroll`` wait for.

A removed person must not get in after "removed" was printed, so the daemon
looks at the file's identity (inode, size, change time) at most every
``interval_s`` and reloads it when it changed.  A gallery that no longer loads
(corrupt, another model, others can write it) is fail-secure: nobody matches
until it is fixed; the old templates are never kept in its place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.errors import GalleryError
from edge.filelock import is_held, lock_path_for
from edge.files import file_identity, save_state
from edge.gallery import Gallery

log = logging.getLogger(__name__)

ACK_SUFFIX = ".loaded"


def ack_path_for(gallery: str | Path) -> Path:
    p = Path(gallery)
    return p.with_name(p.name + ACK_SUFFIX)


def file_sha256(path: str | Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


class GalleryWatcher:
    """The gallery the daemon matches against, reloaded when its file changes (build it with ``load``)."""

    def __init__(
        self,
        path: str | Path,
        gallery: Gallery,
        identity: tuple[int, int, int, int] | None,
        *,
        model_sha256: str,
        preprocessing: dict[str, Any],
        embedding_size: int | None = None,
        max_templates: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = 0.25,
    ) -> None:
        self.path = Path(path)
        self.gallery = gallery
        self._sha, self._pre = model_sha256, preprocessing
        self._checks = {"embedding_size": embedding_size, "max_templates": max_templates}
        self._clock = clock
        self.interval_s = interval_s
        self._identity = identity  # of the file as it was before ``gallery`` was read from it
        self._checked = clock()
        self.reloads = 0
        self._acknowledge(gallery.source_sha256)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        model_sha256: str,
        preprocessing: dict[str, Any],
        embedding_size: int | None = None,
        max_templates: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> GalleryWatcher:
        """Load the gallery for the daemon (refusing it as Gallery.load does) and watch it from then on."""
        path = Path(path)
        before = file_identity(
            path
        )  # taken first: a change made while loading is seen at the first poll
        gallery = Gallery.load(
            path,
            model_sha256=model_sha256,
            preprocessing=preprocessing,
            embedding_size=embedding_size,
            max_templates=max_templates,
        )
        return cls(
            path,
            gallery,
            before,
            model_sha256=model_sha256,
            preprocessing=preprocessing,
            embedding_size=embedding_size,
            max_templates=max_templates,
            clock=clock,
        )

    def poll(self, now: float | None = None) -> Gallery:
        """The gallery to match against now; reloaded if the file changed since it was read."""
        now = self._clock() if now is None else now
        if now - self._checked < self.interval_s:
            return self.gallery
        self._checked = now
        ident = file_identity(self.path)
        if ident == self._identity:
            return self.gallery
        self._identity = ident
        try:
            self.gallery = Gallery.load(
                self.path, model_sha256=self._sha, preprocessing=self._pre, **self._checks
            )
            log.info(
                "gallery %s changed: reloaded, %d people", self.path, len(self.gallery.names())
            )
        except GalleryError as exc:
            self.gallery = Gallery.empty(self._sha, self.gallery.embedding_size, self._pre)
            log.error("%s; nobody is let in until the gallery is fixed", exc)
        self.reloads += 1
        self._acknowledge(
            self.gallery.source_sha256
        )  # None for the empty stand-in: nothing was taken
        return self.gallery

    def _acknowledge(self, digest: str | None) -> None:
        record = {
            "sha256": digest,
            "people": len(self.gallery.names()),
            "pid": os.getpid(),
            "time": time.time(),
        }
        # Unwritten, the door still works; only the CLI's confirmation is missing.
        save_state(ack_path_for(self.path), record, "the acknowledgement")


def confirm_taken(
    gallery: str | Path,
    door_log: str | Path,
    *,
    timeout_s: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """After a gallery change: one line saying whether (and when) the running daemon took it."""
    digest = file_sha256(gallery)
    if is_held(lock_path_for(door_log)) is False:
        return (
            "no facegate daemon is running for this door: it will use this gallery when it starts"
        )
    start = time.monotonic()
    while True:
        try:
            ack = json.loads(ack_path_for(gallery).read_text())
        except (OSError, ValueError):
            ack = {}
        if isinstance(ack, dict) and ack.get("sha256") == digest and digest is not None:
            return f"the running daemon (pid {ack.get('pid')}) took the change after {time.monotonic() - start:.2f} s"
        if time.monotonic() - start >= timeout_s:
            return (
                f"warning: the running daemon has not taken the change within {timeout_s:g} s; "
                "check its journal (journalctl -u facegate)"
            )
        sleep(0.05)
