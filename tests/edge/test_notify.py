"""edge.notify against real AF_UNIX datagram sockets, and the frame watchdog on a fake clock."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import ServiceConfig
from edge.notify import FrameWatchdog, Notifier, watchdog_period


class Listener:
    """The systemd end: a bound datagram socket that receives with a timeout."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2.0)

    def recv(self) -> bytes:
        return self.sock.recv(4096)

    def assert_empty(self) -> None:
        self.sock.settimeout(0.0)
        with pytest.raises(BlockingIOError):
            self.sock.recv(4096)
        self.sock.settimeout(2.0)


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingNotifier:
    """Counts the pings a FrameWatchdog sends."""

    def __init__(self) -> None:
        self.pings = 0

    def watchdog(self) -> bool:
        self.pings += 1
        return True


@pytest.fixture
def sock_path(tmp_path: Path) -> str:
    path = str(tmp_path / "n.sock")
    assert len(path) < 100, "AF_UNIX paths are limited to 107 bytes; shorten the test name"
    return path


@pytest.fixture
def listener(sock_path: str) -> Iterator[Listener]:
    lis = Listener(sock_path)
    yield lis
    lis.sock.close()


@pytest.fixture
def notifier(sock_path: str, listener: Listener) -> Iterator[Notifier]:
    n = Notifier(sock_path)
    yield n
    n.close()


# --------------------------------------------------------------------------- Notifier


def test_messages_reach_the_socket_exactly(notifier, listener):
    assert notifier.enabled
    assert notifier.ready()
    assert listener.recv() == b"READY=1"
    notifier.ready("watching the door")
    assert listener.recv() == b"READY=1\nSTATUS=watching the door"
    notifier.watchdog()
    assert listener.recv() == b"WATCHDOG=1"
    notifier.status("3 people enrolled")
    assert listener.recv() == b"STATUS=3 people enrolled"
    notifier.stopping()
    assert listener.recv() == b"STOPPING=1"
    listener.assert_empty()


def test_status_cannot_inject_other_assignments(notifier, listener):
    notifier.status("bad\nREADY=1")
    assert listener.recv() == b"STATUS=bad READY=1"


def test_socket_comes_from_notify_socket_env(sock_path, listener):
    with Notifier(env={"NOTIFY_SOCKET": sock_path}) as n:
        assert n.enabled and n.socket_path == sock_path
        n.watchdog()
    assert listener.recv() == b"WATCHDOG=1"
    assert not n.enabled  # closed


def test_abstract_namespace_address():
    name = f"facegate-test-{uuid.uuid4().hex}"
    lis = Listener("\0" + name)
    try:
        with Notifier(f"@{name}", env={}) as n:
            assert n.ready("up")
        assert lis.recv() == b"READY=1\nSTATUS=up"
    finally:
        lis.sock.close()


def test_no_socket_is_a_silent_no_op(caplog):
    with caplog.at_level(logging.DEBUG, logger="edge.notify"):
        n = Notifier(env={})
        assert not n.enabled and n.socket_path is None
        assert n.ready("x") is False
        assert n.watchdog() is False
        n.stopping()
        n.close()
    assert caplog.records == []


def test_unreachable_socket_warns_once_and_never_raises(tmp_path, caplog):
    missing = str(tmp_path / "gone.sock")
    with caplog.at_level(logging.DEBUG, logger="edge.notify"):
        n = Notifier(missing)
        assert n.enabled
        assert n.ready() is False
        assert n.watchdog() is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and missing in warnings[0].getMessage()
    # systemd comes back: sending works again, and the next failure warns again.
    lis = Listener(missing)
    assert n.watchdog() and lis.recv() == b"WATCHDOG=1"
    lis.sock.close()
    os.unlink(missing)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge.notify"):
        assert n.watchdog() is False
    assert len(caplog.records) == 1
    n.close()


def test_non_unix_address_disables_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="edge.notify"):
        n = Notifier("vsock:2:1234")
    assert not n.enabled and n.ready() is False
    assert "vsock:2:1234" in caplog.text


def test_full_socket_queue_does_not_block(notifier, listener):
    listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    results = [notifier.status("x" * 512) for _ in range(2000)]
    assert results[0] is True and results[-1] is False  # EAGAIN, not a hang


# --------------------------------------------------------------------------- watchdog_period


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "4242"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "4243"}, None),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": ""}, 1.5),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "me"}, None),
        ({"WATCHDOG_PID": "4242"}, None),
    ],
)
def test_watchdog_period(env, expected):
    assert watchdog_period(env, pid=4242) == expected


def test_watchdog_period_defaults_to_our_own_pid():
    env = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_period(env) == 0.5
    assert watchdog_period({**env, "WATCHDOG_PID": str(os.getpid() + 1)}) is None


# --------------------------------------------------------------------------- FrameWatchdog


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(0.0)


@pytest.fixture
def recorder() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def watchdog(recorder, clock) -> FrameWatchdog:
    return FrameWatchdog(recorder, period=5.0, stall_after=10.0, clock=clock)


def run(
    watchdog: FrameWatchdog, clock: FakeClock, until: float, *, frames: bool, step: float = 0.5
) -> None:
    """Advance the fake clock like the daemon's loop: one (optional) frame and a tick per step."""
    while clock.now + step <= until + 1e-9:
        clock.now += step
        if frames:
            watchdog.frame_done()
        watchdog.tick()


def test_pings_at_most_once_per_period_while_frames_flow(watchdog, recorder, clock):
    assert watchdog.tick() and recorder.pings == 1  # first tick pings at once
    run(watchdog, clock, 4.5, frames=True)
    assert recorder.pings == 1
    run(watchdog, clock, 5.0, frames=True)
    assert recorder.pings == 2
    run(watchdog, clock, 30.0, frames=True)
    assert recorder.pings == 7  # at 0, 5, 10, 15, 20, 25, 30


def test_pings_stop_when_frames_stall_and_resume_with_them(watchdog, recorder, clock, caplog):
    watchdog.tick()
    run(watchdog, clock, 20.0, frames=True)  # pings at 0, 5, ... 20; last frame at 20
    pings = recorder.pings
    with caplog.at_level(logging.WARNING, logger="edge.notify"):
        run(watchdog, clock, 29.5, frames=False)
        assert recorder.pings == pings + 1  # t=25: the last frame is 5 s old, still fine
        assert not watchdog.stalled()
        run(watchdog, clock, 60.0, frames=False)
    assert watchdog.stalled() and watchdog.stalled(30.0) and not watchdog.stalled(29.9)
    assert recorder.pings == pings + 1  # none from t=30 on: systemd will restart us
    assert len(caplog.records) == 1 and "no frame" in caplog.records[0].getMessage()
    watchdog.frame_done(60.5)
    clock.now = 60.5
    assert watchdog.tick()  # the last ping is long past: ping at once
    run(watchdog, clock, 70.5, frames=True)
    assert recorder.pings == pings + 4  # 60.5, 65.5, 70.5


def test_construction_counts_as_the_first_frame(recorder, clock):
    clock.now = 100.0
    dog = FrameWatchdog(recorder, period=1.0, stall_after=10.0, clock=clock)
    assert dog.tick(109.9)
    assert not dog.tick(110.0) and dog.stalled(110.0)
    assert recorder.pings == 1


def test_no_period_means_no_pings(recorder, clock):
    dog = FrameWatchdog(recorder, period=None, stall_after=10.0, clock=clock)
    dog.frame_done()
    assert not dog.tick() and recorder.pings == 0


@pytest.mark.parametrize(("period", "stall_after"), [(0.0, 10.0), (-1.0, 10.0), (5.0, 0.0)])
def test_nonsense_timings_are_refused(recorder, period, stall_after):
    with pytest.raises(ValueError):
        FrameWatchdog(recorder, period=period, stall_after=stall_after)


def test_from_config_pings_a_real_socket(notifier, listener, clock):
    env = {"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    dog = FrameWatchdog.from_config(
        ServiceConfig(watchdog_stall_s=3.0), notifier, env=env, clock=clock
    )
    assert dog.period == 2.0 and dog.stall_after == 3.0
    assert dog.tick()
    assert listener.recv() == b"WATCHDOG=1"
    assert not dog.tick(1.0) and not dog.tick(3.0)  # too soon, then stalled
    listener.assert_empty()
