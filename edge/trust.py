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


def refuse_world_writable(path: str | Path, what: str, error: type[FacegateError]) -> None:
    """Raise ``error`` if ``path`` or its folder can be written by every user (a sticky folder, as /tmp, is fine)."""
    path = Path(path)
    try:
        st = os.stat(path)
        parent = os.stat(path.parent)
    except OSError:
        return  # missing or unreadable: the reader says so in its own words
    if st.st_mode & stat.S_IWOTH:
        raise error(f"{path}: any user can write this {what} (mode {stat.S_IMODE(st.st_mode):04o}); "
                    f"run chmod o-w {path}")
    if parent.st_mode & stat.S_IWOTH and not parent.st_mode & stat.S_ISVTX:
        raise error(f"{path}: any user can replace this {what}: its folder {path.parent} is world-writable "
                    f"(mode {stat.S_IMODE(parent.st_mode):04o}); run chmod o-w {path.parent}")
