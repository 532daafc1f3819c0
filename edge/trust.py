"""Who may change what facegate trusts: refuse files (and folders) that anyone can write.

In: a path and what it is (for the message).  Out: nothing, or a FacegateError
subclass naming the file and its mode.

As sshd refuses an authorized_keys that others could have edited, facegate
refuses a config, model or model card that any user could replace: whoever
can write the embedder or its card decides who the door lets in.  The gallery
is held to the stricter rule of its own module (owner-only, edge.gallery).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edge.errors import FacegateError


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
