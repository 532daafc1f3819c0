"""Access rules: who may come in when, judged by the policy on virtual time."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest
from test_policy import ALICE, BOB, feed, make, only

from edge.access import AccessRules, AccessWatcher, load_rules, parse_rules
from edge.errors import ConfigError, ExitCode
from edge.types import Reason

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, tz: dt.tzinfo = BERLIN) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


class Wall:
    """The policy's wall clock, set by the test (virtual time: nothing waits)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


RULES = """
timezone: Europe/Berlin
people:
  alice:
    windows: [Mon-Fri 07:00-19:00, Sat 22:00-02:00]
  bob:
    disabled: true
  carol:
    valid_from: 2026-12-01 00:00
    valid_to: 2026-12-07 23:59
    max_entries: 2
"""


def policy_with(rules: str, wall: Wall, **kw):
    p = make(**kw)
    p.access = parse_rules(rules, "access.yaml")
    p.wall = wall
    return p


def attempt(p, match, track: int, t0: float):
    return only(feed(p, [match, match, match], track=track, t0=t0))


def test_inside_the_window_in_its_time_zone_and_outside_it_refused_with_its_reason():
    wall = Wall(at("2026-12-02 08:30"))  # a Wednesday, Berlin
    p = policy_with(RULES, wall)
    assert attempt(p, ALICE, 1, 0.0).reason == Reason.ACCEPTED
    wall.t = at("2026-12-02 19:00")  # the window's end is not in it
    d = attempt(p, ALICE, 2, 10.0)
    assert (d.reason, d.unlock, d.person) == (Reason.OUTSIDE_HOURS, False, "alice")
    wall.t = at("2026-12-02 07:30", dt.UTC)  # 08:30 in Berlin: the rules' zone decides, not UTC
    assert attempt(p, ALICE, 3, 20.0).reason == Reason.ACCEPTED


def test_a_window_across_midnight_runs_into_the_next_day():
    wall = Wall(at("2026-12-05 23:30"))  # Saturday night
    p = policy_with(RULES, wall)
    assert attempt(p, ALICE, 1, 0.0).reason == Reason.ACCEPTED
    wall.t = at("2026-12-06 01:59")  # Sunday, still Saturday's window
    assert attempt(p, ALICE, 2, 10.0).reason == Reason.ACCEPTED
    wall.t = at("2026-12-06 02:00")
    assert attempt(p, ALICE, 3, 20.0).reason == Reason.OUTSIDE_HOURS
    wall.t = at("2026-12-06 23:30")  # Sunday night: not a Saturday
    assert attempt(p, ALICE, 4, 30.0).reason == Reason.OUTSIDE_HOURS


def test_a_disabled_person_is_refused_and_someone_without_rules_is_not():
    p = policy_with(RULES, Wall(at("2026-12-02 12:00")))
    assert attempt(p, BOB, 1, 0.0).reason == Reason.PERSON_DISABLED
    p = policy_with("people: {}\n", Wall(at("2026-12-02 03:00")))
    assert attempt(p, ALICE, 1, 0.0).reason == Reason.ACCEPTED  # no rule: any time


def test_a_guests_validity_and_last_entry():
    carol = ALICE.__class__("carol", 0.8, "bob", 0.3)
    wall = Wall(at("2026-11-30 12:00"))
    p = policy_with(RULES, wall, retry_after_s=0.0)
    assert attempt(p, carol, 1, 0.0).reason == Reason.NOT_YET_VALID
    wall.t = at("2026-12-03 12:00")
    assert attempt(p, carol, 2, 10.0).reason == Reason.ACCEPTED
    assert attempt(p, carol, 3, 20.0).reason == Reason.ACCEPTED  # her last entry
    assert p.entries == {"carol": 2}
    assert attempt(p, carol, 4, 30.0).reason == Reason.NO_ENTRIES_LEFT
    wall.t = at("2026-12-08 00:00")
    p.entries.clear()
    assert attempt(p, carol, 5, 40.0).reason == Reason.EXPIRED


def test_rule_refusals_never_count_towards_the_lockout():
    p = policy_with(RULES, Wall(at("2026-12-02 12:00")), lockout_attempts=2)
    for i in range(4):
        assert attempt(p, BOB, i + 1, 10.0 * i).reason == Reason.PERSON_DISABLED
    assert p.locked_out_until(100.0) is None


def test_every_problem_in_the_rules_file_at_once():
    with pytest.raises(ConfigError) as info:
        parse_rules(
            """timezone: Mars/Olympus
people:
  alice: {windows: [Mon-Fri 7-19, Fun 07:00-08:00, Mon 25:00-26:00], disabld: true}
  carol: {valid_from: 2026-12-07 00:00, valid_to: 2026-12-01 00:00, max_entries: 0}
""",
            "access.yaml",
        )
    lines = str(info.value).splitlines()
    assert lines == [
        "access.yaml: timezone: unknown time zone 'Mars/Olympus' (an IANA name, e.g. Europe/Berlin)",
        "access.yaml: people.alice.disabld: unknown key; did you mean people.alice.disabled?",
        "access.yaml: people.alice.windows[0]: expected like 'Mon-Fri 07:00-19:00' or "
        "'Sat 09:00-13:00', got 'Mon-Fri 7-19'",
        "access.yaml: people.alice.windows[1]: days are Mon, Tue, Wed, Thu, Fri, Sat, Sun, got 'Fun 07:00-08:00'",
        "access.yaml: people.alice.windows[2]: times are 00:00-24:00, got 'Mon 25:00-26:00'",
        "access.yaml: people.carol.valid_to: must be after valid_from",
        "access.yaml: people.carol.max_entries: must be a whole number of at least 1, got 0",
    ]


def test_a_changed_rules_file_reaches_the_running_policy_and_a_broken_one_refuses_everyone(
    tmp_path,
):
    path = tmp_path / "access.yaml"
    path.write_text("people: {}\n")
    watcher = AccessWatcher(path, load_rules(path))
    p = make(retry_after_s=0.0)
    p.wall = Wall(at("2026-12-02 12:00"))
    p.access = watcher.poll(0.0)
    assert attempt(p, BOB, 1, 0.0).reason == Reason.ACCEPTED
    path.write_text("people: {bob: {disabled: true}}\n")
    p.access = watcher.poll(0.1)  # within the interval: not looked at yet
    assert not p.access.people
    p.access = watcher.poll(1.0)
    assert attempt(p, BOB, 2, 10.0).reason == Reason.PERSON_DISABLED
    path.write_text("people: {bob: {disabled: maybe}}\n")
    p.access = watcher.poll(2.0)
    assert isinstance(p.access, AccessRules) and p.access.broken
    assert attempt(p, ALICE, 3, 20.0).reason == Reason.ERROR  # fail secure: nobody, until fixed


def test_check_config_validates_the_rules_file(tmp_path):
    rules = tmp_path / "access.yaml"
    rules.write_text("people: {alice: {windows: [Mon 9-17]}}\n")
    cfg = tmp_path / "door.yaml"
    cfg.write_text(f"access: {{rules: {rules}}}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "-c", str(cfg), "check-config"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == ExitCode.CONFIG
    assert proc.stderr.strip().splitlines() == [
        f"facegate: error: {rules}: people.alice.windows[0]: expected like 'Mon-Fri 07:00-19:00' or "
        "'Sat 09:00-13:00', got 'Mon 9-17'"
    ]
    rules.write_text("people: {alice: {windows: [Mon 09:00-17:00]}}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "-c", str(cfg), "check-config"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "1 people with rules" in proc.stdout
