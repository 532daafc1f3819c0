"""edge.throttle: one line per kind per interval, the rest counted into the next."""

from __future__ import annotations

from fakes import FakeClock

from edge.throttle import Throttle


def test_the_first_of_a_kind_passes_the_rest_are_counted_into_the_next_line():
    clock = FakeClock()
    t = Throttle(60.0, clock)
    assert t.allow("a") == 0
    assert [t.allow("a") for _ in range(3)] == [None, None, None]
    assert t.allow("b") == 0  # kinds are apart
    clock.sleep(59.9)
    assert t.allow("a") is None
    clock.sleep(0.1)
    assert t.allow("a") == 4  # a line again, and the four held back since
    assert t.allow("a") is None and t.held("a") == 1 and t.held("a") == 0
    t.reset()
    assert t.allow("a") == 0
