"""Files facegate trusts or writes: one careful reader, atomic writers, and who may change them.

In: a path, what it is (for messages) and the error class to raise.  Out: bytes read from a
regular file, or a file replaced whole; otherwise one line naming the file.

- :func:`read_regular` opens without blocking (a FIFO cannot hang us), refuses anything but
  a regular file and anything over a size bound, and optionally refuses a symlink.
- :func:`atomic_write_bytes` writes beside the target and renames over it, so readers see
  the old file or the whole new one, and a symlink at the path is replaced, never followed.
- :func:`refuse_world_writable` and :func:`folder_writable_by`: as sshd refuses an
  authorized_keys that others could have edited, facegate refuses a config, model or model
  card that any user could replace (whoever can write the embedder or its card decides who
  the door lets in).  The gallery is held to the stricter owner-only rule (edge.gallery).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from edge.errors import FacegateError

log = logging.getLogger(__name__)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_dir(directory: str | Path) -> None:
    """Make a rename or a new file in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write a file so that readers see the old one or the whole new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def file_identity(path: str | Path) -> tuple[int, int, int, int] | None:
    """(inode, size, mtime, ctime) of ``path`` itself, or None if it is not there: a change to
    any of them is a new file to reload (the watchers of the gallery and the access rules)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def save_state(path: str | Path, state: Any, what: str) -> bool:
    """Write a small JSON state file (0600, atomically) beside the gallery; False, and a warning
    naming the file, if it cannot be written: the daemon keeps the state in memory and goes on."""
    try:
        atomic_write_bytes(path, (json.dumps(state) + "\n").encode(), mode=0o600)
    except OSError as exc:
        log.warning("%s: cannot save %s: %s", path, what, exc.strerror or exc)
        return False
    return True


def read_state(path: str | Path, key: str) -> tuple[Any, str | None]:
    """``key`` of a small JSON state file: (value, None); (None, None) if there is no file;
    (None, why) if it cannot be read or is not a JSON object.  The caller says what a missing
    or unusable value means (always the safe side)."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, f"unreadable ({exc})"
    if not isinstance(raw, dict):
        return None, "not a JSON object"
    return raw.get(key), None


def read_regular(
    path: str | Path,
    *,
    what: str,
    error: type[FacegateError],
    max_bytes: int,
    follow_symlinks: bool = True,
) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file of at most ``max_bytes``, and its stat.

    Every refusal is one ``error`` line: "<path>: cannot read <what>: ...", "<path>: is a
    directory, not a regular file", "<path>: not a regular file (a device, FIFO or socket)", "<path>:
    N bytes, more than M for <what>", or (``follow_symlinks=False``) "<path>: is a symbolic
    link; refusing to trust it (use the real path)".  A missing file raises FileNotFoundError,
    for the caller to say what to do about it.
    """
    path = Path(path)
    fd = _open_for_reading(path, what=what, error=error, follow_symlinks=follow_symlinks)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise error(f"{path}: is a directory, not a regular file")
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path}: not a regular file (a device, FIFO or socket)")
        if st.st_size > max_bytes:
            raise error(f"{path}: {st.st_size:,} bytes, more than {max_bytes:,} for {what}")
        chunks = []
        left = max_bytes + 1  # one byte more than allowed: a file that grew is caught too
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise error(f"{path}: more than {max_bytes:,} bytes for {what}")
    return data, st


def _open_for_reading(
    path: Path, *, what: str, error: type[FacegateError], follow_symlinks: bool
) -> int:
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a regular file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise error(
                f"{path}: is a symbolic link; refusing to trust it (use the real path)"
            ) from None
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL byte in the path
        raise error(f"{path!r}: cannot read {what}: {exc}") from None


def read_secret(
    path: str | Path,
    *,
    field: str,
    refuse_mode: int,
    who: str,
    chmod: str,
    error: type[FacegateError],
) -> str:
    """The first line of a secret file (a code, a password), refused if ``refuse_mode``'s bits
    are set: ``<path>: <field>: <who> can read it (mode 0644); run chmod <chmod> <path>``."""
    try:
        data, st = read_regular(path, what="a secret", error=error, max_bytes=4096)
    except FileNotFoundError:
        raise error(f"{path}: {field}: no such file") from None
    if st.st_mode & refuse_mode:
        raise error(
            f"{path}: {field}: {who} can read it (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run chmod {chmod} {path}"
        )
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[0] if lines else ""


def folder_writable_by(folder: str | Path, mask: int) -> int | None:
    """The folder's mode if the users in ``mask`` (S_IWOTH, or S_IWGRP | S_IWOTH) can replace files in it, else None.

    A sticky folder (as /tmp) lets nobody replace another's file, so it counts as closed.
    OSError if the folder cannot be looked at.
    """
    mode = os.stat(folder).st_mode
    return stat.S_IMODE(mode) if mode & mask and not mode & stat.S_ISVTX else None


def refuse_world_writable(path: str | Path, what: str, error: type[FacegateError]) -> None:
    """Raise ``error`` if ``path`` or its folder can be written by every user (a sticky folder, as /tmp, is fine)."""
    path = Path(path)
    try:
        st = os.stat(path)
        open_folder = folder_writable_by(path.parent, stat.S_IWOTH)
    except OSError:
        return  # missing or unreadable: the reader says so in its own words
    if st.st_mode & stat.S_IWOTH:
        raise error(
            f"{path}: any user can write this {what} (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run chmod o-w {path}"
        )
    if open_folder is not None:
        raise error(
            f"{path}: any user can replace this {what}: its folder {path.parent} is world-writable "
            f"(mode {open_folder:04o}); run chmod o-w {path.parent}"
        )
