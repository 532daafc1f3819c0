"""edge.lock against gpiozero's MockFactory: the relay must end de-energised on every path."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gpiozero import GPIODeviceClosed, GPIOPinInUse
from gpiozero.pins.mock import MockFactory, MockPin

import edge.lock
from edge.config import LockConfig
from edge.lock import Door, DoorContact, ExitButton, Relay, StatusIndicator

RELAY, CONTACT, EXIT, LED_PIN, BUZZER = 17, 27, 22, 23, 24


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FlakyPin(MockPin):
    """A mock pin whose writes of ``fail_level`` raise after (optionally) taking effect.

    ``before_write``, if set, runs once just before the next write.
    """

    fail_level: bool | None = None
    apply_first = True
    before_write: Callable[[bool], None] | None = None

    def _set_state(self, value: bool) -> None:
        hook, self.before_write = self.before_write, None
        if hook is not None:
            hook(bool(value))
        if self.fail_level is not None and bool(value) == self.fail_level:
            if self.apply_first:
                super()._set_state(value)
            raise OSError("GPIO write failed")
        super()._set_state(value)


class Broken:
    """Stands in for an LED/Buzzer whose every call raises."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        def fail(*args: object, **kwargs: object) -> None:
            raise OSError(f"{name}: device gone")

        return fail


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll until predicate() holds; a deadline, not a timing assertion."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def level(factory: MockFactory, pin: int) -> bool:
    return bool(factory.pin(pin).state)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_door(
    factory: MockFactory, events: list[str], clock: FakeClock
) -> Iterator[Callable[..., Door]]:
    doors: list[Door] = []

    def make(**overrides: Any) -> Door:
        cfg = LockConfig(**{"unlock_s": 0.1, "held_open_s": 30.0, **overrides})
        door = Door.from_config(cfg, pin_factory=factory, on_event=events.append, clock=clock)
        doors.append(door)
        return door

    yield make
    for door in doors:
        door.close()


# --------------------------------------------------------------------------- Relay


@pytest.mark.parametrize("active_high", [True, False])
def test_relay_is_off_at_start_for_both_polarities(factory, active_high):
    with Relay(RELAY, active_high=active_high, pin_factory=factory) as relay:
        assert not relay.is_energised
        assert level(factory, RELAY) is (not active_high)  # active-low: off is a HIGH pin


@pytest.mark.parametrize("active_high", [True, False])
def test_pulse_energises_then_relocks(factory, active_high):
    with Relay(RELAY, active_high=active_high, pin_factory=factory) as relay:
        relay.pulse(0.05)
        assert relay.is_energised
        assert level(factory, RELAY) is active_high
        assert wait_for(lambda: not relay.is_energised)
        assert level(factory, RELAY) is (not active_high)
        assert relay.deadline is None


def test_a_new_pulse_only_ever_extends(factory, clock):
    with Relay(RELAY, pin_factory=factory, clock=clock) as relay:
        relay.pulse(3.0)
        assert relay.deadline == 1003.0
        clock.now = 1001.0
        relay.pulse(1.0)  # would end at 1002: must not shorten
        assert relay.deadline == 1003.0
        relay.pulse(5.0)
        assert relay.deadline == 1006.0
        assert relay.is_energised


def test_extended_pulse_outlives_the_first_timer(factory):
    with Relay(RELAY, pin_factory=factory) as relay:
        relay.pulse(0.02)
        relay.pulse(30.0)
        time.sleep(0.15)  # well past the first pulse's end
        assert relay.is_energised


def timer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()}


def test_lock_cancels_a_pulse_and_is_idempotent(factory):
    before = timer_threads()
    with Relay(RELAY, pin_factory=factory) as relay:
        relay.pulse(30.0)
        ours = timer_threads() - before
        assert len(ours) == 1
        relay.lock()
        assert not relay.is_energised and not level(factory, RELAY)
        assert relay.deadline is None
        assert wait_for(
            lambda: not any(t.is_alive() for t in ours)
        )  # cancelled, not merely ignored
        relay.lock()
        assert not relay.is_energised


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("inf"), float("nan")])
def test_pulse_refuses_lengths_that_could_hold_the_door_open(factory, seconds):
    with Relay(RELAY, pin_factory=factory) as relay:
        with pytest.raises(ValueError):
            relay.pulse(seconds)
        assert not relay.is_energised


def test_lock_from_other_threads_while_pulsing_never_deadlocks(factory):
    with Relay(RELAY, pin_factory=factory) as relay:

        def hammer(action: Callable[[], None]) -> None:
            for _ in range(200):
                action()

        threads = [
            threading.Thread(target=hammer, args=(lambda: relay.pulse(0.001),), daemon=True),
            threading.Thread(target=hammer, args=(relay.lock,), daemon=True),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert not any(t.is_alive() for t in threads), "deadlock"
        relay.lock()
        assert not relay.is_energised


def test_lock_reentered_during_pulse_wins(factory):
    """A signal handler calling lock() while pulse() holds the lock must not deadlock nor lose."""
    pin = factory.pin(RELAY, pin_class=FlakyPin)
    relay = Relay(RELAY, pin_factory=factory)
    pin.before_write = lambda value: relay.lock()  # what a SIGTERM handler would do, same thread
    worker = threading.Thread(target=relay.pulse, args=(30.0,), daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), "deadlock"
    assert not relay.is_energised and not level(factory, RELAY)
    assert relay.deadline is None
    relay.close()


def test_with_block_relocks_even_when_the_body_raises(factory):
    with pytest.raises(RuntimeError, match="boom"), Relay(RELAY, pin_factory=factory) as relay:
        relay.pulse(30.0)
        raise RuntimeError("boom")
    assert not level(factory, RELAY)
    assert relay.closed and relay.deadline is None


@pytest.mark.parametrize("active_high", [True, False])
def test_close_is_idempotent_and_refuses_later_pulses(factory, active_high):
    relay = Relay(RELAY, active_high=active_high, pin_factory=factory)
    relay.pulse(30.0)
    relay.close()
    relay.close()
    assert level(factory, RELAY) is (not active_high)
    assert not relay.is_energised
    with pytest.raises(GPIODeviceClosed):
        relay.pulse(1.0)
    relay.lock()  # still safe after close


@pytest.mark.parametrize("apply_first", [True, False])
def test_error_while_energising_leaves_the_relay_off(factory, apply_first):
    pin = factory.pin(RELAY, pin_class=FlakyPin)
    with Relay(RELAY, pin_factory=factory) as relay:
        pin.fail_level, pin.apply_first = True, apply_first
        with pytest.raises(OSError, match="GPIO write failed"):
            relay.pulse(30.0)
        assert not level(factory, RELAY)
        assert relay.deadline is None
        pin.fail_level = None


def test_no_timer_thread_means_no_unlock(factory, monkeypatch):
    class NoThreads(threading.Timer):
        def start(self) -> None:
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr(edge.lock.threading, "Timer", NoThreads)
    with Relay(RELAY, pin_factory=factory) as relay:
        with pytest.raises(RuntimeError, match="new thread"):
            relay.pulse(30.0)
        assert not level(factory, RELAY) and relay.deadline is None
        assert not any(s.state for s in factory.pin(RELAY).states)  # never switched on at all


def test_failure_to_switch_off_is_critical_and_raised(factory, caplog):
    pin = factory.pin(RELAY, pin_class=FlakyPin)
    relay = Relay(RELAY, pin_factory=factory)
    relay.pulse(30.0)
    pin.fail_level, pin.apply_first = False, False
    with caplog.at_level(logging.CRITICAL, logger="edge.lock"), pytest.raises(OSError):
        relay.lock()
    assert any(
        r.levelno == logging.CRITICAL and "NOT be switched off" in r.message for r in caplog.records
    )
    pin.fail_level = None
    relay.close()
    assert not level(factory, RELAY)


def test_overdue_pulse_is_relocked_by_poll(make_door, factory, clock):
    door = make_door(unlock_s=3.0)
    door.unlock("test")
    clock.now += 2.9
    door.poll()
    assert door.is_unlocked
    clock.now += 0.2  # the real timer has not fired yet (3 s of wall time)
    door.poll()
    assert not door.is_unlocked and not level(factory, RELAY)


# --------------------------------------------------------------------------- door contact


@pytest.fixture
def closed_door(make_door, factory, events):
    """A door with a contact, closed, events cleared."""
    door = make_door(door_contact_pin=CONTACT, unlock_s=30.0)
    factory.pin(CONTACT).drive_low()  # pull_up wiring: LOW = switch closed = door closed
    events.clear()
    return door


def test_pull_up_contact_reads_low_as_closed(closed_door, factory):
    assert closed_door.is_open is False
    factory.pin(CONTACT).drive_high()
    assert closed_door.is_open is True


def test_closing_the_door_relocks_at_once(closed_door, factory, events):
    closed_door.unlock("alice")
    factory.pin(CONTACT).drive_high()
    assert closed_door.is_unlocked  # opening does not relock
    factory.pin(CONTACT).drive_low()
    assert not closed_door.is_unlocked and not level(factory, RELAY)
    assert events == ["door_opened", "door_closed"]


def test_held_open_fires_once_per_opening(closed_door, factory, events, clock):
    factory.pin(CONTACT).drive_high()  # opened at 1000
    closed_door.poll(1029.9)
    assert "door_held_open" not in events
    closed_door.poll(1030.0)
    closed_door.poll(1100.0)
    assert events == ["door_opened", "door_held_open"]
    factory.pin(CONTACT).drive_low()
    clock.now = 2000.0
    factory.pin(CONTACT).drive_high()
    closed_door.poll(2010.0)
    assert events.count("door_held_open") == 1
    closed_door.poll(2030.0)
    assert events.count("door_held_open") == 2


def test_door_open_at_start_counts_as_opened(make_door, events, clock):
    door = make_door(door_contact_pin=CONTACT)  # mock pull-up: the pin floats high = open
    assert door.is_open
    door.poll(clock.now + 30.0)
    assert events == ["door_held_open"]


def test_poll_repairs_a_missed_closing_edge(closed_door, factory, events):
    closed_door.unlock()
    factory.pin(CONTACT).drive_high()
    factory.pin(CONTACT).edges = "none"  # the next edge is lost
    factory.pin(CONTACT).drive_low()
    assert closed_door.is_unlocked and events == ["door_opened"]
    closed_door.poll()
    assert not closed_door.is_unlocked
    assert events == ["door_opened", "door_closed"]


def test_poll_repairs_a_missed_opening_edge(closed_door, factory, events, clock):
    factory.pin(CONTACT).edges = "none"
    factory.pin(CONTACT).drive_high()  # opened, edge lost
    assert events == []
    closed_door.poll()
    assert events == ["door_opened"]
    closed_door.poll(clock.now + 30.0)
    assert events == ["door_opened", "door_held_open"]


def test_broken_event_callback_does_not_stop_the_relock(factory, caplog):
    def explode(event: str) -> None:
        raise RuntimeError("callback bug")

    with Relay(RELAY, pin_factory=factory) as relay:
        contact = DoorContact(
            CONTACT, relay=relay, held_open_s=5.0, on_event=explode, pin_factory=factory
        )
        relay.pulse(30.0)
        with caplog.at_level(logging.ERROR, logger="edge.lock"):
            factory.pin(CONTACT).drive_low()
        assert not relay.is_energised
        assert "callback bug" in caplog.text
        contact.close()


def test_pull_down_contact_reads_high_as_closed(factory):
    with Relay(RELAY, pin_factory=factory) as relay:
        contact = DoorContact(
            CONTACT, relay=relay, held_open_s=5.0, pull_up=False, pin_factory=factory
        )
        assert contact.is_open  # pulled down, switch open
        relay.pulse(30.0)
        factory.pin(CONTACT).drive_high()
        assert not contact.is_open and not relay.is_energised
        contact.close()


# --------------------------------------------------------------------------- exit button


def test_exit_button_pulses_the_relay(make_door, factory, events):
    door = make_door(exit_button_pin=EXIT, unlock_s=0.1)
    factory.pin(EXIT).drive_low()  # pressed
    assert door.is_unlocked and level(factory, RELAY)
    assert events == ["exit_button"]
    factory.pin(EXIT).drive_high()
    assert wait_for(lambda: not door.is_unlocked)


def test_exit_button_survives_a_closed_relay(factory, events, caplog):
    relay = Relay(RELAY, pin_factory=factory)
    button = ExitButton(
        EXIT, relay=relay, unlock_s=1.0, on_event=events.append, pin_factory=factory
    )
    relay.close()
    with caplog.at_level(logging.ERROR, logger="edge.lock"):
        factory.pin(EXIT).drive_low()
    assert events == ["exit_button"] and "could not be pulsed" in caplog.text
    button.close()


# --------------------------------------------------------------------------- indicator


def test_indicator_failures_are_logged_not_raised(caplog):
    indicator = StatusIndicator(led=Broken(), buzzer=Broken())
    with caplog.at_level(logging.WARNING, logger="edge.lock"):
        indicator.granted(3.0)
        indicator.denied()
        indicator.idle()
        indicator.close()
    # granted, denied and idle on each of the two devices; close() as well.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 8, warnings


def test_broken_indicator_does_not_block_unlock_or_lock(factory):
    relay = Relay(RELAY, pin_factory=factory)
    with Door(
        relay, unlock_s=30.0, indicator=StatusIndicator(led=Broken(), buzzer=Broken())
    ) as door:
        door.unlock("bob")
        assert door.is_unlocked
        door.deny()
        door.lock()
        assert not door.is_unlocked
    assert not level(factory, RELAY)


def test_indicator_lights_during_grant_and_idles(make_door, factory):
    door = make_door(led_pin=LED_PIN, buzzer_pin=BUZZER, unlock_s=30.0)
    door.unlock()
    assert wait_for(lambda: level(factory, LED_PIN))
    door.lock()
    assert not level(factory, LED_PIN) and not level(factory, BUZZER)


# --------------------------------------------------------------------------- Door


def test_door_from_default_config_has_no_optional_devices(make_door, factory):
    door = make_door()
    assert door.contact is None and door.exit_button is None and door.is_open is None
    assert door.indicator.led is None and door.indicator.buzzer is None
    door.deny()
    door.poll()
    door.unlock("carol")
    assert level(factory, RELAY)
    door.close()
    door.close()
    assert not level(factory, RELAY)


def test_door_with_every_pin(make_door, factory):
    door = make_door(
        door_contact_pin=CONTACT,
        exit_button_pin=EXIT,
        led_pin=LED_PIN,
        buzzer_pin=BUZZER,
        active_high=False,
    )
    assert level(factory, RELAY)  # active-low: locked = HIGH
    door.unlock()
    assert not level(factory, RELAY)
    door.close()
    assert level(factory, RELAY)


def test_door_with_block_relocks_when_the_body_raises(factory, clock):
    cfg = LockConfig(door_contact_pin=CONTACT, exit_button_pin=EXIT)
    with (
        pytest.raises(RuntimeError),
        Door.from_config(cfg, pin_factory=factory, clock=clock) as door,
    ):
        door.unlock("dave")
        raise RuntimeError("pipeline crashed")
    assert not level(factory, RELAY)
    assert door.relay.closed


def test_failed_set_up_releases_every_pin_relay_off(factory, monkeypatch):
    relays: list[Relay] = []

    class KeptRelay(Relay):  # keep a reference, so the garbage collector cannot close it for us
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            relays.append(self)

    monkeypatch.setattr(edge.lock, "Relay", KeptRelay)
    cfg = LockConfig(door_contact_pin=CONTACT, exit_button_pin=CONTACT)  # a pin clash
    with pytest.raises(GPIOPinInUse):
        Door.from_config(cfg, pin_factory=factory)
    assert len(relays) == 1 and relays[0].closed
    assert not level(factory, RELAY)
    monkeypatch.undo()
    # Every pin was released: building again on them works.
    with Relay(RELAY, pin_factory=factory) as relay:
        DoorContact(CONTACT, relay=relay, held_open_s=1.0, pin_factory=factory).close()


def test_a_disarmed_relay_never_energises_again(factory):
    """Once the daemon is stopping, a pulse the interrupted step was about to start is refused."""
    with Relay(RELAY, pin_factory=factory) as relay:
        relay.pulse(5.0)
        assert level(factory, RELAY)
        relay.disarm()
        assert not level(factory, RELAY) and relay.deadline is None
        relay.pulse(5.0)
        assert not level(factory, RELAY) and relay.deadline is None
        assert [s.state for s in factory.pin(RELAY).states].count(True) == 1


def test_a_stop_that_lands_while_the_relay_switches_on_wins(factory, monkeypatch):
    """SIGTERM's handler runs in the pulsing thread, between the pin going on and pulse() returning."""
    with Relay(RELAY, pin_factory=factory) as relay:
        device = relay._device
        original_on = device.on

        def on_then_signal() -> None:
            original_on()
            relay.disarm()  # what Service.stop does from the signal handler, re-entrantly

        monkeypatch.setattr(device, "on", on_then_signal)
        relay.pulse(5.0)
        assert not level(factory, RELAY) and relay.deadline is None
        monkeypatch.setattr(device, "on", original_on)
        relay.pulse(5.0)  # and nothing after it energises
        assert not level(factory, RELAY)


def test_the_service_stop_disarms_the_door(make_door, factory):
    door = make_door()
    door.disarm()
    door.unlock("late decision")
    assert not level(factory, door.relay.pin)
