"""Who may come in when: per-person time windows, guests, and people disabled without deletion.

In: the rules file (``access.rules``, YAML; edited by hand or by the household app) and, per
decision, the accepted person and the wall-clock time.  Out: :class:`AccessRules`, whose
``refusal(person, unix_time, entries_used)`` is None (let in) or the Reason that refuses them;
every problem in the file at once, as ``file: people.<name>.<key>: ...`` lines.

    timezone: Europe/Berlin              # the windows' clock (IANA name; default UTC)
    people:
      alice:
        windows: [Mon-Fri 07:00-19:00, Sat 09:00-13:00]   # outside them: outside_hours
      bob:
        disabled: true                   # templates kept, never let in: person_disabled
      carol:                             # a guest
        valid_from: 2026-12-01 00:00     # before: not_yet_valid; after valid_to: expired
        valid_to: 2026-12-07 23:59
        max_entries: 3                   # then: no_entries_left (counted across restarts)

A person the file does not name may enter at any time, as without rules.  A window may cross
midnight (``Fri 22:00-02:00`` runs into Saturday).  Only a face the policy would let in is
checked: a refusal by the rules is logged with its reason, never counted towards the lockout.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge.config import load_yaml, unknown_keys
from edge.errors import ConfigError
from edge.files import file_identity, read_regular
from edge.types import Reason

log = logging.getLogger(__name__)

MAX_RULES_BYTES = 1 << 20
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PERSON_KEYS = ("windows", "disabled", "valid_from", "valid_to", "max_entries")
_WINDOW = re.compile(
    r"^(?P<d0>[A-Za-z]{3})(?:-(?P<d1>[A-Za-z]{3}))?\s+(?P<h0>\d\d):(?P<m0>\d\d)-(?P<h1>\d\d):(?P<m1>\d\d)$"
)


@dataclass(frozen=True)
class Window:
    """Days of the week (0 = Monday) on which [start, end) minutes after midnight are allowed."""

    days: frozenset[int]
    start: int
    end: int  # <= start: the window runs past midnight into the next day

    def contains(self, t: dt.datetime) -> bool:
        minute = t.hour * 60 + t.minute
        if self.start < self.end:
            return t.weekday() in self.days and self.start <= minute < self.end
        # Past midnight: the evening part on its own day, the morning part on the day after.
        return (t.weekday() in self.days and minute >= self.start) or (
            (t.weekday() - 1) % 7 in self.days and minute < self.end
        )


@dataclass(frozen=True)
class PersonRule:
    windows: tuple[Window, ...] = ()  # empty: any time
    disabled: bool = False
    valid_from: float | None = None  # Unix seconds
    valid_to: float | None = None
    max_entries: int | None = None


@dataclass(frozen=True)
class AccessRules:
    tz: dt.tzinfo = dt.UTC
    people: dict[str, PersonRule] = field(default_factory=dict)
    broken: str = ""  # the rules file stopped loading: every face is refused until it is fixed

    def refusal(self, person: str, unix_time: float, entries_used: int = 0) -> Reason | None:
        """Why ``person`` may not come in at ``unix_time`` (None: they may)."""
        if self.broken:
            return Reason.ERROR
        rule = self.people.get(person)
        if rule is None:
            return None
        if rule.disabled:
            return Reason.PERSON_DISABLED
        if rule.valid_from is not None and unix_time < rule.valid_from:
            return Reason.NOT_YET_VALID
        if rule.valid_to is not None and unix_time > rule.valid_to:
            return Reason.EXPIRED
        if rule.max_entries is not None and entries_used >= rule.max_entries:
            return Reason.NO_ENTRIES_LEFT
        if rule.windows:
            local = dt.datetime.fromtimestamp(unix_time, self.tz)
            if not any(w.contains(local) for w in rule.windows):
                return Reason.OUTSIDE_HOURS
        return None

    def counts_entries(self, person: str) -> bool:
        rule = self.people.get(person)
        return rule is not None and rule.max_entries is not None


# --------------------------------------------------------------------------- parsing


def _window(text: Any, where: str, errors: list[str]) -> Window | None:
    m = _WINDOW.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        errors.append(
            f"{where}: expected like 'Mon-Fri 07:00-19:00' or 'Sat 09:00-13:00', got {text!r}"
        )
        return None
    try:
        d0 = DAYS.index(m["d0"].lower())
        d1 = DAYS.index((m["d1"] or m["d0"]).lower())
    except ValueError:
        errors.append(f"{where}: days are Mon, Tue, Wed, Thu, Fri, Sat, Sun, got {text!r}")
        return None
    h0, m0, h1, m1 = (int(m[k]) for k in ("h0", "m0", "h1", "m1"))
    if not (h0 < 24 and m0 < 60 and (h1 < 24 or (h1 == 24 and m1 == 0)) and m1 < 60):
        errors.append(f"{where}: times are 00:00-24:00, got {text!r}")
        return None
    start, end = h0 * 60 + m0, h1 * 60 + m1
    if start == end:
        errors.append(f"{where}: an empty window (start equals end), got {text!r}")
        return None
    days = frozenset(range(d0, d1 + 1)) if d0 <= d1 else frozenset([*range(d0, 7), *range(d1 + 1)])
    return Window(days, start, end)


def _instant(value: Any, tz: dt.tzinfo, where: str, errors: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        t = value
    elif isinstance(value, dt.date):
        t = dt.datetime.combine(value, dt.time())
    elif isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            errors.append(f"{where}: expected a date and time like 2026-12-01 18:00, got {value!r}")
            return None
    else:
        errors.append(f"{where}: expected a date and time like 2026-12-01 18:00, got {value!r}")
        return None
    return (t if t.tzinfo else t.replace(tzinfo=tz)).timestamp()


def _person(name: str, raw: Any, tz: dt.tzinfo, errors: list[str]) -> PersonRule | None:
    where = f"people.{name}"
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping of {', '.join(_PERSON_KEYS)}, got {raw!r}")
        return None
    errors += unknown_keys(raw, list(_PERSON_KEYS), f"{where}.")
    windows_raw = raw.get("windows", [])
    if not isinstance(windows_raw, list):
        errors.append(f"{where}.windows: expected a list, got {windows_raw!r}")
        windows_raw = []
    windows = [_window(w, f"{where}.windows[{i}]", errors) for i, w in enumerate(windows_raw)]
    disabled = raw.get("disabled", False)
    if not isinstance(disabled, bool):
        errors.append(f"{where}.disabled: must be true or false, got {disabled!r}")
    valid_from = _instant(raw.get("valid_from"), tz, f"{where}.valid_from", errors)
    valid_to = _instant(raw.get("valid_to"), tz, f"{where}.valid_to", errors)
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        errors.append(f"{where}.valid_to: must be after valid_from")
    max_entries = raw.get("max_entries")
    if max_entries is not None and (type(max_entries) is not int or max_entries < 1):
        errors.append(
            f"{where}.max_entries: must be a whole number of at least 1, got {max_entries!r}"
        )
    return PersonRule(
        tuple(w for w in windows if w is not None),
        disabled is True,
        valid_from,
        valid_to,
        max_entries if type(max_entries) is int else None,
    )


def parse_rules(text: str, source: str) -> AccessRules:
    """The rules, or one ConfigError listing every problem (``source: key: why`` lines)."""
    raw = load_yaml(text, source) or {}
    errors: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with timezone and people")
    errors += unknown_keys(raw, ["timezone", "people"], "")
    tz: dt.tzinfo = dt.UTC
    zone = raw.get("timezone", "UTC")
    try:
        tz = ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f"timezone: unknown time zone {zone!r} (an IANA name, e.g. Europe/Berlin)")
    people_raw = raw.get("people") or {}
    if not isinstance(people_raw, dict):
        errors.append(f"people: expected a mapping of name -> rule, got {people_raw!r}")
        people_raw = {}
    people = {}
    for name, rule in people_raw.items():
        parsed = _person(str(name), rule, tz, errors)
        if parsed is not None:
            people[str(name)] = parsed
    if errors:
        raise ConfigError("\n".join(f"{source}: {e}" for e in errors))
    return AccessRules(tz, people)


def load_rules(path: str | Path) -> AccessRules:
    try:
        data, _ = read_regular(
            path, what="access rules", error=ConfigError, max_bytes=MAX_RULES_BYTES
        )
    except FileNotFoundError:
        raise ConfigError(f"{path}: access.rules: no such file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_rules(text, str(path))


class AccessWatcher:
    """The running daemon's rules, reloaded when the file changes (at most every ``interval_s``)."""

    def __init__(self, path: str | Path, rules: AccessRules, *, interval_s: float = 0.25) -> None:
        self.path = Path(path)
        self.rules = rules
        self.interval_s = interval_s
        self._identity = file_identity(self.path)
        self._next = 0.0

    def poll(self, now: float) -> AccessRules:
        if now < self._next:
            return self.rules
        self._next = now + self.interval_s
        identity = file_identity(self.path)
        if identity == self._identity:
            return self.rules
        self._identity = identity
        try:
            self.rules = load_rules(self.path)
            log.warning("%s: access rules reloaded (%d people)", self.path, len(self.rules.people))
        except ConfigError as exc:
            first = str(exc).splitlines()[0]
            log.error("%s; every face is refused until the access rules load again", first)
            self.rules = AccessRules(broken=first)
        return self.rules
