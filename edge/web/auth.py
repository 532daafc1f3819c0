"""Who may use the web app: the password (argon2), sessions with CSRF tokens, the login limit.

In: the app's state directory, a clock, and each login attempt's address.  Out: a
:class:`Session` for a right password, or a refusal (wrong, or locked out); the CSRF token
every form and htmx request must carry back.

One household password, generated on first start (printed once) and kept only as its
argon2 hash, 0600 in the state directory.  Sessions live in memory: a restart logs
everybody out, which for a door lock is the safe side.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from edge.errors import ConfigError
from edge.files import atomic_write_bytes, read_regular

log = logging.getLogger(__name__)

PASSWORD_FILE = "password.argon2"
MAX_PASSWORD_LEN = 256


def password_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / PASSWORD_FILE


def new_password() -> str:
    """Sixteen characters from a 64-letter alphabet: 96 bits, beyond any online guessing."""
    return secrets.token_urlsafe(12)


def set_password(state_dir: str | Path, password: str) -> None:
    atomic_write_bytes(
        password_path(state_dir), (PasswordHasher().hash(password) + "\n").encode(), mode=0o600
    )


def first_password(state_dir: str | Path) -> str | None:
    """Make the first password if there is none; return it (to print once), else None."""
    if password_path(state_dir).exists():
        return None
    password = new_password()
    set_password(state_dir, password)
    return password


class Passwords:
    """The household's password hash, read once; refused if others may read or write it."""

    def __init__(self, state_dir: str | Path) -> None:
        path = password_path(state_dir)
        try:
            data, st = read_regular(
                path,
                what="the password hash",
                error=ConfigError,
                max_bytes=4096,
                follow_symlinks=False,
            )
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: web.state_dir: no password hash (run facegate web-password)"
            ) from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"{path}: web.state_dir: group or others may read it; chmod 600 it")
        self._hash = data.decode("ascii", "replace").strip()
        self._hasher = PasswordHasher()

    def check(self, given: str) -> bool:
        if not given or len(given) > MAX_PASSWORD_LEN:
            return False
        try:
            return self._hasher.verify(self._hash, given)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


@dataclass
class Session:
    token: str
    csrf: str
    address: str
    created: float
    seen: float


@dataclass
class Sessions:
    """Server-side sessions: a random token in the cookie, everything else here."""

    max_age_s: float
    idle_s: float
    clock: Callable[[], float] = time.monotonic
    _by_token: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def new(self, address: str) -> Session:
        now = self.clock()
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), address, now, now)
        with self._lock:
            self._by_token[s.token] = s
        return s

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        now = self.clock()
        with self._lock:
            s = self._by_token.get(token)
            if s is None:
                return None
            if now - s.created > self.max_age_s or now - s.seen > self.idle_s:
                del self._by_token[token]
                return None
            s.seen = now
            return s

    def end(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)


def csrf_ok(session: Session, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf.encode(), str(given).encode())


@dataclass
class LoginLimiter:
    """At most ``max_failures`` wrong passwords per address (ten times that from all
    addresses together) within ``lockout_s``; then every login is refused until it passes."""

    max_failures: int
    lockout_s: float
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, address: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(address, []) if now - t < self.lockout_s]
        if kept:
            self._failures[address] = kept
        else:
            self._failures.pop(address, None)
        return kept

    def locked(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None if it may now."""
        now = self.clock()
        with self._lock:
            mine = self._recent(address, now)
            everyone = [t for a in list(self._failures) for t in self._recent(a, now)]
        for times, limit in ((mine, self.max_failures), (everyone, 10 * self.max_failures)):
            if len(times) >= limit:
                return max(1.0, sorted(times)[-limit] + self.lockout_s - now)
        return None

    def failed(self, address: str) -> None:
        with self._lock:
            self._failures.setdefault(address, []).append(self.clock())

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
