"""The daemon <-> bridge wire format: one JSON object per line on a UNIX stream socket.

In: dicts.  Out: bytes (``encode``), and back (:class:`LineReader`), refusing a line longer
than MAX_LINE (a snapshot rides base64-encoded in its decision event) or one that is not a
JSON object.

Daemon -> bridge: ``{"type": "state", ...}``, ``{"type": "decision", "record": {...},
"snapshot_jpeg_b64": "..."}``, ``{"type": "door_event", "event": "door_held_open"}``,
``{"type": "result", "id": ..., "ok": bool, "why": "...", "data": {...}}``.
Bridge -> daemon: ``{"type": "command", "id": ..., "action": "lock" | "unlock" | "open" |
"face_unlock", ...}``; an unlock carries ``code``, ``nonce``, ``ts`` (Unix seconds) and
``sender``, a face_unlock ``value`` (bool).  The web app's requests (HOUSEHOLD_ACTIONS: their
fields and answers typed and checked in :mod:`edge.bridge.contract`, carried out by
:mod:`edge.bridge.household`) answer with their ``data``: e.g. ``drill`` with ``minutes``
(0 stops it) answers ``drill_until``; ``liveness_set`` takes ``points`` (score cue -> live
probability).
"""

from __future__ import annotations

import json
import socket
from typing import Any

from edge.bridge.contract import HOUSEHOLD

MAX_LINE = 4 << 20  # a 640x480 face crop as JPEG, base64, fits many times over
DOOR_ACTIONS = ("lock", "unlock", "open", "face_unlock")
HOUSEHOLD_ACTIONS = tuple(HOUSEHOLD)  # the one list: edge.bridge.contract
ACTIONS = DOOR_ACTIONS + HOUSEHOLD_ACTIONS


class ProtocolError(ValueError):
    """A line the other side should never have sent."""


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":"), allow_nan=False).encode() + b"\n"


class LineReader:
    """Whole lines from a socket, as dicts; ``None`` at end of stream."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""

    def read(self) -> dict[str, Any] | None:
        while b"\n" not in self._buf:
            if len(self._buf) > MAX_LINE:
                raise ProtocolError(f"a line longer than {MAX_LINE} bytes")
            chunk = self._sock.recv(65536)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        if len(line) > MAX_LINE:
            raise ProtocolError(f"a line longer than {MAX_LINE} bytes")
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError):
            raise ProtocolError("a line that is not JSON") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise ProtocolError("a line that is not a JSON object with a type")
        return msg
