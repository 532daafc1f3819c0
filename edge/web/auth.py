"""Who may use the web app: the password (argon2), sessions with CSRF tokens, the login limit.

In: the app's state directory, a clock, and each login attempt's address.  Out: a
:class:`Session` for a right password, or a refusal (wrong, or locked out); the CSRF token
every form and htmx request must carry back.

One household password, generated on first start (written once to a 0600 file there, never
printed) and kept only as its argon2 hash, 0600 in the state directory.  Sessions live in memory: a restart logs
everybody out, which for a door lock is the safe side.
"""

from __future__ import annotations

import hmac
import logging
import os
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
FIRST_PASSWORD_FILE = "first-password.txt"  # the first password, 0600, until a new one is set
MAX_PASSWORD_LEN = 256
MAX_FLASHES = 16  # a session's pending one-shot messages
MAX_ADDRESSES = 4096  # addresses the login limiter remembers (the oldest are forgotten first)


def password_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / PASSWORD_FILE


def new_password() -> str:
    """Sixteen characters from a 64-letter alphabet: 96 bits, beyond any online guessing."""
    return secrets.token_urlsafe(12)


def set_password(state_dir: str | Path, password: str) -> None:
    atomic_write_bytes(
        password_path(state_dir), (PasswordHasher().hash(password) + "\n").encode(), mode=0o600
    )
    # A first password written down before is no longer the password (unlink: never a link's target).
    Path(state_dir, FIRST_PASSWORD_FILE).unlink(missing_ok=True)


def write_first_password(state_dir: str | Path, password: str) -> Path:
    """The first password in a new 0600 file of the state directory (made 0700, refused if
    others may write it: edge.web.server.prepare_state_dir): never through a link, never into
    a file that was there (O_EXCL|O_NOFOLLOW after removing any)."""
    path = Path(state_dir, FIRST_PASSWORD_FILE)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # whatever the umask
        f.write(password + "\n")
        f.flush()
        os.fsync(f.fileno())
    return path


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
    # One-shot messages for the page a redirect leads to, by a random key the redirect's URL
    # carries (?flash=<key>): the text itself never comes from a URL.
    flashes: dict[str, str] = field(default_factory=dict)

    def put_flash(self, message: str) -> str:
        key = secrets.token_urlsafe(9)
        self.flashes[key] = message
        while len(self.flashes) > MAX_FLASHES:
            self.flashes.pop(next(iter(self.flashes)))
        return key

    def take_flash(self, key: str | None) -> str | None:
        return self.flashes.pop(key, None) if key else None


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
    addresses together) within ``lockout_s``; then every login is refused until it passes.

    Bounded whatever the addresses: each address keeps only its last ``max_failures`` times,
    expired addresses are pruned, at most MAX_ADDRESSES are kept (the stalest forgotten first:
    the limit from all addresses together, kept apart, still holds), and a lockout is
    reported (:meth:`lockout`) once, not once per address that tries during it."""

    max_failures: int
    lockout_s: float
    clock: Callable[[], float] = time.monotonic
    max_addresses: int = MAX_ADDRESSES
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _everyone: list[float] = field(default_factory=list)
    _reported: dict[str, float] = field(default_factory=dict)  # lockout key -> its end
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _prune(self, now: float) -> None:
        for a in [a for a, times in self._failures.items() if now - times[-1] >= self.lockout_s]:
            del self._failures[a]
        self._everyone = [t for t in self._everyone if now - t < self.lockout_s]
        for k in [k for k, end in self._reported.items() if end <= now]:
            del self._reported[k]

    def _wait(self, address: str, now: float) -> tuple[float, str] | None:
        mine = [t for t in self._failures.get(address, []) if now - t < self.lockout_s]
        for times, limit, key in (
            (mine, self.max_failures, "address:" + address),
            (self._everyone, 10 * self.max_failures, "everyone"),
        ):
            if len(times) >= limit:
                return max(1.0, sorted(times)[-limit] + self.lockout_s - now), key
        return None

    def locked(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None if it may now."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            found = self._wait(address, now)
        return None if found is None else found[0]

    def lockout(self, address: str) -> tuple[float, bool] | None:
        """Like :meth:`locked`, with whether this is the lockout's first refusal (to audit
        once: the address's own lockout, or the one of all addresses together)."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            found = self._wait(address, now)
            if found is None:
                return None
            wait, key = found
            first = key not in self._reported
            if first:
                self._reported[key] = now + wait
                while len(self._reported) > self.max_addresses:
                    self._reported.pop(next(iter(self._reported)))
        return wait, first

    def failed(self, address: str) -> None:
        now = self.clock()
        with self._lock:
            self._prune(now)
            times = self._failures.pop(address, [])  # re-inserted last: the freshest
            self._failures[address] = [*times, now][-self.max_failures :]
            while len(self._failures) > self.max_addresses:
                self._failures.pop(next(iter(self._failures)))
            self._everyone = [*self._everyone, now][-10 * self.max_failures :]

    def size(self) -> int:
        """How many addresses (and reported lockouts) it remembers now."""
        with self._lock:
            return len(self._failures) + len(self._reported)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
