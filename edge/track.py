"""Face tracking: which face in this frame is which face from the last frames.

In: each frame's detected Faces and the time.  Out: one integer track id per
face, and (on request) the ids of tracks that have left the view.  A track id
stands for one person's attempt at the door, so the decision policy can vote
over frames of the *same* face.  Matching is greedy by box overlap (IoU),
highest first; ids only ever increase and are never reused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge.detect import iou
from edge.types import Face

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]


@dataclass
class _Track:
    box: Box
    last_seen: float


class Tracker:
    """Greedy IoU tracker.

    A track not seen for more than ``timeout_s`` can no longer be matched: a
    face that comes back after that is a new attempt with a new id (so a
    stranger cannot inherit a decided track by stepping into its old box).
    """

    def __init__(self, *, iou_threshold: float = 0.3, timeout_s: float) -> None:
        if not 0.0 <= iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be between 0 and 1, got {iou_threshold!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        self.iou_threshold = iou_threshold
        self.timeout_s = timeout_s
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1

    def update(self, faces: Sequence[Face], now: float) -> list[int]:
        """A track id for each face, in the order given; unmatched faces start new tracks."""
        live = {tid: t for tid, t in self._tracks.items() if now - t.last_seen <= self.timeout_s}
        pairs = []
        for fi, face in enumerate(faces):
            for tid, track in live.items():
                overlap = float(iou(np.asarray(face.box), np.asarray([track.box]))[0])
                # > 0 as well: a threshold of 0 must not pair boxes that do not touch.
                if overlap > 0 and overlap >= self.iou_threshold:
                    pairs.append((overlap, fi, tid))
        # Highest overlap first; ties go to the earlier face and the older track, so
        # the result does not depend on dict order.
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        ids: list[int | None] = [None] * len(faces)
        taken: set[int] = set()
        for _, fi, tid in pairs:
            if ids[fi] is None and tid not in taken:
                ids[fi] = tid
                taken.add(tid)
        for fi, face in enumerate(faces):
            found = ids[fi]
            if found is None:
                found = ids[fi] = self._next_id
                self._next_id += 1
                log.debug("track %d started at %s", found, face.box)
            self._tracks[found] = _Track(face.box, now)
        return [int(i) for i in ids if i is not None]

    def expired(self, now: float) -> list[int]:
        """Ids of tracks not seen for more than timeout_s, oldest id first; they are forgotten."""
        gone = sorted(tid for tid, t in self._tracks.items() if now - t.last_seen > self.timeout_s)
        for tid in gone:
            del self._tracks[tid]
            log.debug("track %d expired", tid)
        return gone

    def __len__(self) -> int:
        return len(self._tracks)
