"""The door's GPIO: the strike relay, door contact, exit button and status LED/buzzer.

In: an :class:`edge.config.LockConfig` (BCM pin numbers, polarity, timings) and
optionally a gpiozero pin factory (``MockFactory`` in tests).  Out: a
:class:`Door` whose ``unlock()`` energises the relay for ``unlock_s`` and whose
``close()`` always leaves it de-energised, plus door events ("door_opened",
"door_closed", "door_held_open", "exit_button") passed to an ``on_event``
callback.

Fail secure is the rule: the strike is locked when unpowered, so every error,
stop or unknown state must end with the relay *off*.  Every path that turns the
relay on has a matching path that turns it off even when something raises; a
poll-time deadline check backs up the pulse timer.  After ``close()`` the pin
is released to an input, so the relay board's own pull resistor must hold the
relay off (true of the common opto-isolated boards; check yours).

Callbacks (``on_event``) run on gpiozero's pin-event thread or the caller's
thread: keep them short and thread-safe.  Their exceptions are logged, never
allowed to stop a relock.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gpiozero import LED, Button, Buzzer, GPIODeviceClosed, OutputDevice

from edge.closeable import Closeable
from edge.config import LockConfig

if TYPE_CHECKING:
    from gpiozero import Factory

log = logging.getLogger(__name__)

EventCallback = Callable[[str], None]
Clock = Callable[[], float]

DOOR_OPENED = "door_opened"
DOOR_CLOSED = "door_closed"
DOOR_HELD_OPEN = "door_held_open"
EXIT_BUTTON = "exit_button"
EVENTS = (DOOR_OPENED, DOOR_CLOSED, DOOR_HELD_OPEN, EXIT_BUTTON)

# We never use Button.when_held, but its hold thread waits up to hold_time on
# close() while the button is pressed (a closed door): keep that wait short.
_HOLD_S = 0.1


def _emit(on_event: EventCallback | None, event: str) -> None:
    """Call the event callback; its failure must never stop the caller relocking."""
    if on_event is None:
        return
    try:
        on_event(event)
    except Exception:
        log.exception("on_event(%r) callback failed", event)


class Relay(Closeable):
    """The strike relay: off unless a pulse is running.

    ``pulse()`` energises and arms a timer that de-energises; ``lock()`` wins
    over everything (a pending timer, a pulse it interrupts from a signal
    handler).  All state changes hold one re-entrant lock, so ``lock()`` may be
    called from signal handlers, finally-blocks, the timer thread and other
    threads without deadlock.
    """

    def __init__(
        self,
        pin: int,
        *,
        active_high: bool = True,
        pin_factory: Factory | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.pin = pin
        self._clock = clock
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._deadline: float | None = None
        self._generation = 0  # bumped by every pulse/lock: stale timers do nothing
        self._closed = False
        self._disarmed = False  # set by disarm(): no pulse may energise the relay again
        self._device = OutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
        )

    # -- state -------------------------------------------------------------------------

    @property
    def is_energised(self) -> bool:
        """The level read back from the pin (False once closed: close() locked it)."""
        with self._lock:
            if self._closed:
                return False
            return bool(self._device.value)

    @property
    def deadline(self) -> float | None:
        """When the running pulse ends, on this relay's clock; None when locked."""
        return self._deadline

    @property
    def closed(self) -> bool:
        return self._closed

    # -- actions -----------------------------------------------------------------------

    def pulse(self, seconds: float) -> None:
        """Energise now and de-energise after ``seconds``; a running pulse is only ever extended."""
        seconds = float(seconds)
        if not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError(f"pulse length must be a positive number of seconds, got {seconds!r}")
        with self._lock:
            if self._closed:
                raise GPIODeviceClosed(f"relay on pin {self.pin} is closed")
            if self._disarmed:
                log.warning("relay pin %d: stopping, so this unlock is not carried out", self.pin)
                return
            now = self._clock()
            deadline = now + seconds
            if self._deadline is not None:
                deadline = max(deadline, self._deadline)
            self._cancel_timer()
            self._generation += 1
            generation = self._generation
            try:
                # Arm the timer before energising: if no thread can start, we never turn on.
                timer = threading.Timer(deadline - now, self._expire, args=(generation,))
                timer.daemon = True
                self._timer = timer
                self._deadline = deadline
                timer.start()
                self._device.on()
            except BaseException:
                self._cancel_timer()
                self._deadline = None
                # _off logs a failure as critical; the caller needs the original error.
                with contextlib.suppress(BaseException):
                    self._off("pulse failed")
                raise
            if self._disarmed or (self._generation != generation and self._deadline is None):
                # lock() or disarm() ran re-entrantly while we were switching on (a
                # signal handler): the pin may now be on again behind its back.  It wins.
                self._cancel_timer()
                self._deadline = None
                self._off("locked during pulse")
                return
        log.debug("relay pin %d energised until %.3f (%.2f s)", self.pin, deadline, deadline - now)

    def lock(self) -> None:
        """De-energise now and cancel any pending pulse; idempotent and safe from any thread."""
        with self._lock:
            self._generation += 1
            self._cancel_timer()
            self._deadline = None
            if not self._closed:
                self._off("lock()")

    def disarm(self) -> None:
        """Relock now and refuse every later pulse: the daemon is stopping.

        A stop (SIGTERM) can arrive between a decision and its pulse; relocking
        alone would let that pulse energise the relay after the relock.  Checked
        under the relay's lock, before and after energising.
        """
        with self._lock:
            self._disarmed = True
            self.lock()

    def enforce_deadline(self, now: float | None = None) -> bool:
        """Relock if the pulse is overdue (a backstop should the timer thread not run); True if it did."""
        with self._lock:
            if self._deadline is None or self._closed:
                return False
            late = (self._clock() if now is None else now) - self._deadline
            if late < 0:
                return False
            # The timer is normally a few ms behind a busy loop's poll; only a real
            # delay (a stuck timer thread) is worth a warning.
            (log.warning if late > 0.5 else log.debug)(
                "relay pin %d: pulse overdue by %.3f s, relocking from poll", self.pin, late
            )
            self.lock()
            return True

    def close(self) -> None:
        """Lock, then release the pin; idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                self.lock()
            finally:
                self._closed = True
                self._device.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("energised" if self.is_energised else "locked")
        return f"Relay(pin={self.pin}, {state})"

    # -- internals ---------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        # Timer.cancel never joins, so this is safe from the timer thread itself.
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _off(self, why: str) -> None:
        """Drive the relay off; a failure here is the one thing that may leave a door open."""
        try:
            was_on = bool(self._device.value)
        except Exception:
            was_on = True  # cannot read back: assume the worst, still try to switch off
        try:
            self._device.off()
        except BaseException as exc:
            log.critical("relay pin %d could NOT be switched off (%s): %s", self.pin, why, exc)
            raise
        if was_on:
            log.info("relay pin %d de-energised: door locked (%s)", self.pin, why)

    def _expire(self, generation: int) -> None:
        """Timer thread: end the pulse it was armed for, unless a newer pulse or lock() superseded it."""
        with self._lock:
            if generation != self._generation or self._closed:
                return
            self._timer = None
            self._deadline = None
            self._off("pulse ended")


class DoorContact:
    """A reed switch on the door, read through a gpiozero Button.

    Convention: Button *pressed* means door CLOSED (magnet at the switch).  With
    ``pull_up=True`` wire a normally-open reed switch between the pin and GND
    (closed door pulls the pin low); with ``pull_up=False`` wire it between the
    pin and 3V3.  A cut wire therefore reads as an open door, which relocks
    nothing by itself but does raise "door_held_open" after ``held_open_s``.

    Edges come from gpiozero callbacks; the held-open timer is evaluated by
    :meth:`poll` (called by the daemon each frame) against an injectable clock,
    and poll also repairs a missed edge by re-reading the pin.
    """

    def __init__(
        self,
        pin: int,
        *,
        relay: Relay,
        held_open_s: float,
        pull_up: bool = True,
        on_event: EventCallback | None = None,
        clock: Clock = time.monotonic,
        bounce_s: float | None = None,
        pin_factory: Factory | None = None,
    ) -> None:
        self.pin = pin
        self.held_open_s = float(held_open_s)
        self._relay = relay
        self._on_event = on_event
        self._clock = clock
        self._state_lock = threading.Lock()
        self._button = Button(
            pin, pull_up=pull_up, bounce_time=bounce_s, hold_time=_HOLD_S, pin_factory=pin_factory
        )
        # An open door at start-up counts as opened now, so held-open still fires.
        self._opened_at: float | None = None if self._button.is_pressed else clock()
        self._held_reported = False
        self._button.when_pressed = self._closed_edge
        self._button.when_released = self._opened_edge

    @property
    def is_open(self) -> bool:
        """The switch as read now (not the last edge seen)."""
        return not self._button.is_pressed

    @property
    def held_open(self) -> bool:
        """Open for longer than held_open_s (reported), and not yet closed."""
        return self._opened_at is not None and self._held_reported

    def poll(self, now: float | None = None) -> None:
        """Fire "door_held_open" once per opening, and repair edges the callbacks missed."""
        now = self._clock() if now is None else now
        closed = self._button.is_pressed
        if closed and self._opened_at is not None:
            log.warning(
                "door contact pin %d: missed the closing edge; relocking from poll", self.pin
            )
            self._closed_edge()
        elif not closed and self._opened_at is None:
            log.warning("door contact pin %d: missed the opening edge", self.pin)
            self._opened_edge(now)
        with self._state_lock:
            fire = (
                self._opened_at is not None
                and not self._held_reported
                and now - self._opened_at >= self.held_open_s
            )
            if fire:
                self._held_reported = True
        if fire:
            log.warning("door held open for more than %.0f s", self.held_open_s)
            _emit(self._on_event, DOOR_HELD_OPEN)

    def close(self) -> None:
        self._button.close()

    def _closed_edge(self) -> None:
        """Relock first, then tell: the callback may be slow or broken."""
        try:
            self._relay.lock()
        except Exception:
            log.exception("door closed but the relay could not be locked")
        with self._state_lock:
            self._opened_at = None
            self._held_reported = False
        log.info("door closed")
        _emit(self._on_event, DOOR_CLOSED)

    def _opened_edge(self, now: float | None = None) -> None:
        with self._state_lock:
            self._opened_at = self._clock() if now is None else now
            self._held_reported = False
        log.info("door opened")
        _emit(self._on_event, DOOR_OPENED)


class ExitButton:
    """Request-to-exit button (pressed = pin pulled to GND with ``pull_up=True``): unlocks for ``unlock_s``.

    Egress never depends on the face pipeline or a lockout.
    """

    def __init__(
        self,
        pin: int,
        *,
        relay: Relay,
        unlock_s: float,
        pull_up: bool = True,
        on_event: EventCallback | None = None,
        bounce_s: float | None = None,
        pin_factory: Factory | None = None,
    ) -> None:
        self.pin = pin
        self.unlock_s = float(unlock_s)
        self._relay = relay
        self._on_event = on_event
        self._button = Button(
            pin, pull_up=pull_up, bounce_time=bounce_s, hold_time=_HOLD_S, pin_factory=pin_factory
        )
        self._button.when_pressed = self._pressed

    def close(self) -> None:
        self._button.close()

    def _pressed(self) -> None:
        log.info("exit button: unlocking for %.1f s", self.unlock_s)
        try:
            self._relay.pulse(self.unlock_s)
        except Exception:
            log.exception("exit button: the relay could not be pulsed")
        _emit(self._on_event, EXIT_BUTTON)


class StatusIndicator:
    """Optional LED and buzzer feedback; every method swallows (and logs) its own errors.

    An indicator is a convenience: its failure must never block a lock or unlock.
    """

    def __init__(self, *, led: Any | None = None, buzzer: Any | None = None) -> None:
        self.led = led
        self.buzzer = buzzer

    @classmethod
    def from_pins(
        cls,
        led_pin: int | None = None,
        buzzer_pin: int | None = None,
        *,
        pin_factory: Factory | None = None,
    ) -> StatusIndicator:
        led = LED(led_pin, pin_factory=pin_factory) if led_pin is not None else None
        try:
            buzzer = Buzzer(buzzer_pin, pin_factory=pin_factory) if buzzer_pin is not None else None
        except BaseException:
            if led is not None:
                led.close()
            raise
        return cls(led=led, buzzer=buzzer)

    def granted(self, seconds: float) -> None:
        """LED steady for the unlock, one short beep."""
        self._do("granted", self.led, lambda d: d.blink(on_time=seconds, off_time=0, n=1))
        self._do("granted", self.buzzer, lambda d: d.beep(on_time=0.1, off_time=0, n=1))

    def denied(self) -> None:
        """Fast LED blinks, one long beep."""
        self._do("denied", self.led, lambda d: d.blink(on_time=0.1, off_time=0.1, n=5))
        self._do("denied", self.buzzer, lambda d: d.beep(on_time=0.5, off_time=0, n=1))

    def idle(self) -> None:
        self._do("idle", self.led, lambda d: d.off())
        self._do("idle", self.buzzer, lambda d: d.off())

    def close(self) -> None:
        self._do("close", self.led, lambda d: d.close())
        self._do("close", self.buzzer, lambda d: d.close())

    @staticmethod
    def _do(what: str, device: Any | None, action: Callable[[Any], object]) -> None:
        if device is None:
            return
        try:
            action(device)
        except Exception as exc:
            log.warning("status indicator %s failed on %r: %s", what, device, exc)


class Door(Closeable):
    """The relay plus its optional contact, exit button and indicator, built from a LockConfig."""

    def __init__(
        self,
        relay: Relay,
        *,
        unlock_s: float,
        contact: DoorContact | None = None,
        exit_button: ExitButton | None = None,
        indicator: StatusIndicator | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.relay = relay
        self.unlock_s = float(unlock_s)
        self.contact = contact
        self.exit_button = exit_button
        self.indicator = indicator if indicator is not None else StatusIndicator()
        self._clock = clock
        self._closed = False

    @classmethod
    def from_config(
        cls,
        cfg: LockConfig,
        *,
        pin_factory: Factory | None = None,
        on_event: EventCallback | None = None,
        clock: Clock = time.monotonic,
    ) -> Door:
        """Build every configured device; if one fails (say a pin clash) close the rest, relay off."""
        relay = Relay(
            cfg.relay_pin, active_high=cfg.active_high, pin_factory=pin_factory, clock=clock
        )
        built: list[Any] = []
        try:
            contact = None
            if cfg.door_contact_pin is not None:
                contact = DoorContact(
                    cfg.door_contact_pin,
                    relay=relay,
                    held_open_s=cfg.held_open_s,
                    pull_up=cfg.door_contact_pull_up,
                    on_event=on_event,
                    clock=clock,
                    pin_factory=pin_factory,
                )
                built.append(contact)
            exit_button = None
            if cfg.exit_button_pin is not None:
                exit_button = ExitButton(
                    cfg.exit_button_pin,
                    relay=relay,
                    unlock_s=cfg.unlock_s,
                    on_event=on_event,
                    pin_factory=pin_factory,
                )
                built.append(exit_button)
            indicator = StatusIndicator.from_pins(
                cfg.led_pin, cfg.buzzer_pin, pin_factory=pin_factory
            )
        except BaseException:
            for device in reversed(built):
                try:
                    device.close()
                except Exception:
                    log.exception("closing %r after a failed set-up", device)
            relay.close()
            raise
        return cls(
            relay,
            unlock_s=cfg.unlock_s,
            contact=contact,
            exit_button=exit_button,
            indicator=indicator,
            clock=clock,
        )

    @property
    def is_unlocked(self) -> bool:
        return self.relay.is_energised

    @property
    def is_open(self) -> bool | None:
        """None when there is no door contact to ask."""
        return None if self.contact is None else self.contact.is_open

    def unlock(self, reason: str = "") -> None:
        """Pulse the strike for unlock_s; the relay is armed before the indicator is touched."""
        log.info("unlock for %.1f s%s", self.unlock_s, f": {reason}" if reason else "")
        self.relay.pulse(self.unlock_s)
        self.indicator.granted(self.unlock_s)

    def deny(self) -> None:
        """Signal a denial; leaves a running pulse (someone else's grant) alone."""
        self.indicator.denied()

    def lock(self) -> None:
        """Relock now, whatever is running (the relay logs the relock at INFO if it was on)."""
        log.debug("lock requested")
        try:
            self.relay.lock()
        finally:
            self.indicator.idle()

    def disarm(self) -> None:
        """Relock now and refuse every later unlock (the daemon is stopping); safe from a signal handler."""
        try:
            self.relay.disarm()
        finally:
            self.indicator.idle()

    def poll(self, now: float | None = None) -> None:
        """Call every frame: relock an overdue pulse, evaluate the door contact.

        ``now`` must come from the Door's own clock (the one given to from_config).
        """
        now = self._clock() if now is None else now
        self.relay.enforce_deadline(now)
        if self.contact is not None:
            self.contact.poll(now)

    def close(self) -> None:
        """Relay off first, then release every pin; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.relay.lock()
        finally:
            try:
                for device in (self.exit_button, self.contact, self.indicator):
                    if device is not None:
                        try:
                            device.close()
                        except Exception:
                            log.exception("closing %r", device)
            finally:
                self.relay.close()
