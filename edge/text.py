"""Small text helpers shared by the daemon and the tools: one-line messages for journald and stderr."""

from __future__ import annotations


def first_line(exc: BaseException | str, *, typed: bool = False) -> str:
    """The first non-empty line of an exception's message (or of a text).

    Errors are reported on one line (journald, a CLI's stderr); a library's multi-line message
    (OpenCV, TensorFlow) would otherwise spill its detail into the log.  An exception with no
    message is named by its type; ``typed`` prefixes the type anyway ("OSError: ..."), for
    library errors whose message alone does not say what failed.
    """
    text = ""
    for line in str(exc).strip().splitlines():
        if line.strip():
            text = line.strip()
            break
    if isinstance(exc, str):
        return text
    name = type(exc).__name__
    if not text:
        return name
    return f"{name}: {text}" if typed else text


def printable(text: str, limit: int) -> str:
    """``text`` with every non-printable character (control characters, newlines, format
    characters such as bidi overrides) dropped, stripped, and cut to at most ``limit``
    characters: safe to put in one log line or a decision's field."""
    return "".join(c for c in text if c.isprintable()).strip()[:limit].strip()
