"""What the daemon checks in a remote command before it may touch the door.

In: a command from the bridge (action, code, ts, nonce, sender) and the daemon's wall clock.
Out: ``None`` (fresh and never seen) or why it is refused (stale, replayed, malformed), and
:meth:`RemoteCommands.code_ok`.  The code lives in ``mqtt.code_file``, readable by the daemon
alone; the bridge never sees it, and nothing about a face ever crosses the socket.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import stat
from pathlib import Path
from typing import Any

from edge.errors import ConfigError
from edge.files import read_secret

MAX_NONCE_LEN = 128
MIN_CODE_LEN = 6  # Home Assistant's code_format asks for as many (edge.bridge.mqtt.discovery)
SENDER_MAX = 64  # each part of a remote decision's person (edge.bridge.mqtt.command_sender)


def read_code(path: str | Path) -> str:
    """The remote-unlock code: the file's first line; refused if anyone else may read the file."""
    code = read_secret(
        path,
        field="mqtt.code_file",
        refuse_mode=stat.S_IRWXG | stat.S_IRWXO,
        who="others",
        chmod="600",
        error=ConfigError,
    ).strip()
    if len(code) < MIN_CODE_LEN:
        raise ConfigError(
            f"{path}: mqtt.code_file: the code must be at least {MIN_CODE_LEN} characters "
            f"(got {len(code)}): a short code is guessed within the wrong-code budget"
        )
    return code


class RemoteCommands:
    def __init__(self, *, code: str | None, max_age_s: float) -> None:
        self._digest = hashlib.sha256(code.encode()).digest() if code else None
        self.max_age_s = max_age_s
        self._seen: dict[str, float] = {}  # nonce -> its command's ts, kept while it could be fresh

    def code_ok(self, given: Any) -> bool:
        if self._digest is None or not isinstance(given, str):
            return False
        return hmac.compare_digest(self._digest, hashlib.sha256(given.encode()).digest())

    def refusal(self, cmd: dict[str, Any], now: float) -> str | None:
        """Why ``cmd`` must not be carried out (stale, from the future, replayed), or None."""
        raw_ts, nonce = cmd.get("ts"), cmd.get("nonce")
        if (
            not isinstance(raw_ts, (int, float))
            or isinstance(raw_ts, bool)
            or not math.isfinite(raw_ts)
        ):
            return "no timestamp (ts)"
        ts = float(raw_ts)
        if not isinstance(nonce, str) or not 1 <= len(nonce) <= MAX_NONCE_LEN:
            return "no nonce"
        if abs(now - ts) > self.max_age_s:
            return f"stale: sent {now - ts:+.0f} s from now (mqtt.command_max_age_s {self.max_age_s:g})"
        for old, t in list(self._seen.items()):
            if abs(now - t) > self.max_age_s:
                del self._seen[old]
        if nonce in self._seen:
            return "replayed: this nonce was already used"
        self._seen[nonce] = ts
        return None
