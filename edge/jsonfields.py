"""Checked reads of fields from parsed JSON: the gallery, model cards, the decision log, lockout state.

In: a dict from ``json.loads`` and a key.  Out: the value, of the type asked for, or a
:class:`FieldError` whose text is ``"<key>: expected ..., got <value>"``; each caller prefixes
its file (and line) and raises its own error class, so a bad file is one line naming the file
and the field.  ``bool`` is never taken for a number (JSON true is not 1).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class FieldError(ValueError):
    """One field of a JSON document is missing or of the wrong type; str() is "key: why"."""


def _got(obj: Mapping[str, Any], key: str) -> Any:
    return obj.get(key)


def is_number(v: object) -> bool:
    """A JSON number: int or float, not bool."""
    return type(v) is int or type(v) is float


def text(obj: Mapping[str, Any], key: str, *, name: str | None = None) -> str:
    """A non-empty string."""
    v = _got(obj, key)
    if type(v) is not str or not v:
        raise FieldError(f"{name or key}: expected a non-empty string, got {v!r}")
    return v


def opt_name(obj: Mapping[str, Any], key: str) -> str | None:
    """A person's name or null (missing reads as null); control characters refused.

    facegate never enrolls such a name: printed raw it could rewrite a reviewer's terminal.
    """
    v = _got(obj, key)
    if v is not None and type(v) is not str:
        raise FieldError(f"{key}: expected a string or null, got {v!r}")
    if v is not None and _CONTROL.search(v):
        raise FieldError(
            f"{key}: holds control characters ({ascii(v)[:80]}), which no enrolled name has"
        )
    return v


def as_finite(v: object) -> float | None:
    """``v`` as a finite float, or None: not a number, NaN, infinity, or an int beyond a float (10**400)."""
    if not is_number(v):
        return None
    try:
        f = float(v)  # type: ignore[arg-type]
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _shown(v: object) -> str:
    """A refused value for a message: short (a 400-digit integer is not echoed whole)."""
    if type(v) is int and v.bit_length() > 64:
        return f"an integer of {len(str(abs(v)))} digits"
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def number(obj: Mapping[str, Any], key: str, *, nullable: bool = False) -> float:
    """A finite number; with ``nullable``, an explicit null reads as NaN (the log writes non-finite as null)."""
    v = _got(obj, key)
    f = as_finite(v)
    if f is not None:
        return f
    if v is None and nullable and key in obj:
        return math.nan
    what = "a finite number" if is_number(v) else "a number"
    raise FieldError(f"{key}: expected {what}{' or null' if nullable else ''}, got {_shown(v)}")


def finite(obj: Mapping[str, Any], key: str, *, name: str | None = None) -> float:
    """A finite number."""
    v = _got(obj, key)
    f = as_finite(v)
    if f is None:
        raise FieldError(f"{name or key}: expected a finite number, got {_shown(v)}")
    return f


def integer(
    obj: Mapping[str, Any], key: str, *, lo: int | None = None, name: str | None = None
) -> int:
    """A whole number, at least ``lo``."""
    v = _got(obj, key)
    if type(v) is not int or (lo is not None and v < lo):
        wanted = (
            "a positive integer"
            if lo == 1
            else "a whole number"
            if lo is None
            else f"an integer >= {lo}"
        )
        raise FieldError(f"{name or key}: expected {wanted}, got {v!r}")
    return v


def choice(obj: Mapping[str, Any], key: str, choices: Collection[str]) -> str:
    """One of ``choices``."""
    v = _got(obj, key)
    if type(v) is not str or v not in choices:
        raise FieldError(f"{key}: expected one of {', '.join(choices)}, got {v!r}")
    return v


def boolean(obj: Mapping[str, Any], key: str, *, name: str | None = None) -> bool:
    """true or false (not 0 or 1)."""
    v = _got(obj, key)
    if type(v) is not bool:
        raise FieldError(f"{name or key}: expected true or false, got {v!r}")
    return v


def listed(obj: Mapping[str, Any], key: str, *, name: str | None = None) -> list[Any]:
    """A list (its items are the caller's to check)."""
    v = _got(obj, key)
    if type(v) is not list:
        raise FieldError(f"{name or key}: expected a list, got {v!r}")
    return v


def strings(obj: Mapping[str, Any], key: str, *, name: str | None = None) -> list[str]:
    """A list of strings."""
    v = _got(obj, key)
    if type(v) is not list or not all(type(s) is str for s in v):
        raise FieldError(f"{name or key}: expected a list of strings")
    return list(v)


def mapping(
    obj: Mapping[str, Any], key: str, *, name: str | None = None, nullable: bool = False
) -> dict[str, Any] | None:
    """A JSON object (or, with ``nullable``, null)."""
    v = _got(obj, key)
    if v is None and nullable:
        return None
    if type(v) is not dict:
        raise FieldError(f"{name or key}: expected an object, got {type(v).__name__}")
    return v
