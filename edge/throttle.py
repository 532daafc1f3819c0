"""At most one log line per kind of event per interval, the rest counted into the next line.

In: a kind (any string) each time the event happens, and a clock.  Out: whether to log it now,
and how many of that kind were held back since the last line.  Anything on the network can make
an event happen as often as it likes; a line per event would let it fill the journal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Throttle:
    """One line per kind every ``every_s``: the first at once, those within the interval after it
    counted, and the count handed to the next line of that kind (or to :meth:`held`)."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.clock = clock
        self._last: dict[str, float] = {}  # kind -> when its last line was allowed
        self._held: dict[str, int] = {}  # kind -> events held back since
        self._lock = threading.Lock()

    def allow(self, kind: str) -> int | None:
        """None: hold this one back (it is counted); else log it, with this many held before it."""
        now = self.clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.every_s:
                self._held[kind] = self._held.get(kind, 0) + 1
                return None
            self._last[kind] = now
            return self._held.pop(kind, 0)

    def held(self, kind: str) -> int:
        """The events of ``kind`` held back and not yet reported (reported now: the count is reset)."""
        with self._lock:
            return self._held.pop(kind, 0)

    def reset(self) -> None:
        with self._lock:
            self._last.clear()
            self._held.clear()
