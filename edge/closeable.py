"""The context-manager plumbing shared by everything that holds a device, a socket or a file.

A subclass defines ``close()`` (safe to call twice); ``with thing:`` then closes it on the
way out, exception or not -- for the relay, closing is relocking (edge.lock).
"""

from __future__ import annotations

from typing import Self


class Closeable:
    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
