"""Per-frame liveness samples for tracked faces: every score cue and every veto cue, on each frame.

In: a track id, a Frame, the Face and the time.  Out: a LivenessSample (edge.liveness).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from edge.liveness import LivenessSample, ScoreCue, VetoCue
from edge.types import Face, Frame


class LivenessChecker:
    """Runs the score cues (Frame, Face -> logit callables) and the veto cues on a tracked face."""

    def __init__(
        self,
        scores: Mapping[str, ScoreCue],
        *,
        cues: Mapping[str, VetoCue] | None = None,
    ) -> None:
        self.scores = dict(scores)  # log key -> score cue
        self.cues = dict(cues or {})  # log key -> veto cue
        self.seconds = 0.0  # time spent, for benchmarks
        self.calls = 0
        self.cue_seconds: dict[str, float] = dict.fromkeys([*self.scores, *self.cues], 0.0)

    def sample(self, track_id: int, frame: Frame, face: Face, now: float) -> LivenessSample:
        t0 = time.perf_counter()
        scores = []
        for key, cue in self.scores.items():
            t = time.perf_counter()
            scores.append((key, float(cue(frame, face))))
            self.cue_seconds[key] += time.perf_counter() - t
        readings = []
        for key, veto in self.cues.items():
            t = time.perf_counter()
            readings.append((key, veto.check(track_id, frame, face, now)))
            self.cue_seconds[key] += time.perf_counter() - t
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return LivenessSample(tuple(scores), tuple(readings))

    def forget(self, track_id: int) -> None:
        for cue in self.cues.values():
            cue.forget(track_id)
