"""Exclusive locks on files: one daemon per door, one gallery writer at a time.

In: the path of a lock file (created 0600 beside what it guards, never through
a symlink).  Out: a held :class:`FileLock`, released on close or when the
process dies (``flock``: the kernel drops it with the last open descriptor, so
a crashed holder never leaves a stale lock).

Two daemons on one door would append to a log the other rotated away and lose
decisions; two enrollments at once would each save a gallery without the
other's person.  A second holder waits up to ``wait_s`` and is then refused
with one line naming the lock and the holder's pid.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from edge.errors import FacegateError, LockError

# The folder (or file system) refuses a new file: not "busy", which says another process runs.
_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class FileLock:
    def __init__(self, path: str | Path, fd: int) -> None:
        self.path = Path(path)
        self._fd: int | None = fd

    @classmethod
    def acquire(
        cls,
        path: str | Path,
        *,
        what: str,
        wait_s: float = 0.0,
        poll_s: float = 0.05,
        unwritable: type[FacegateError] = LockError,
    ) -> FileLock:
        """Take the lock on ``path`` (waiting up to ``wait_s``), or raise LockError naming ``what``.

        A folder that cannot be written (no lock file can be made there) raises ``unwritable``
        instead: the decision log's own error for a daemon, not "busy".
        """
        path = Path(path)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            if exc.errno in _UNWRITABLE and not os.path.lexists(path):
                raise unwritable(
                    f"{path.parent}: the folder cannot be written (making the lock file "
                    f"{path.name}: {exc.strerror or exc})"
                ) from None
            reason = (
                "is a symbolic link; refusing it"
                if exc.errno == errno.ELOOP
                else (exc.strerror or str(exc))
            )
            raise LockError(f"{path}: cannot open the lock file: {reason}") from None
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _holder(fd)
                    os.close(fd)
                    raise LockError(
                        f"{path}: {what} is already running{holder}; refusing to run a second"
                    ) from None
                time.sleep(poll_s)
            except OSError as exc:
                os.close(fd)
                raise LockError(f"{path}: cannot lock: {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_held(path: str | Path) -> bool | None:
    """Whether some process holds the lock on ``path`` (False if the file does not exist; None: cannot tell).

    Creates nothing: a command asking whether a daemon runs must not make its directories.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # drops the probe's lock too


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def lock_path_for(path: str | Path) -> Path:
    """The lock file guarding ``path``: ``<path>.lock`` beside it."""
    p = Path(path)
    return p.with_name(p.name + ".lock")
