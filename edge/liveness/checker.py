"""Per-frame liveness samples for tracked faces: the score cue and every veto cue, on each frame.

In: a track id, a Frame, the Face and the time.  Out: a LivenessSample (edge.liveness).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from edge.liveness import LivenessSample, VetoCue
from edge.types import Face, Frame


class LivenessChecker:
    """Runs the score cue (a Frame, Face -> logit callable) and the veto cues on a tracked face."""

    def __init__(
        self,
        classifier: Callable[[Frame, Face], float],
        *,
        cues: Mapping[str, VetoCue] | None = None,
    ) -> None:
        self.classifier = classifier
        self.cues = dict(cues or {})  # log key -> cue
        self.seconds = 0.0  # time spent, for benchmarks
        self.calls = 0

    def sample(self, track_id: int, frame: Frame, face: Face, now: float) -> LivenessSample:
        t = time.perf_counter()
        z = self.classifier(frame, face)
        readings = tuple(
            (key, cue.check(track_id, frame, face, now)) for key, cue in self.cues.items()
        )
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return LivenessSample(z, readings)

    def forget(self, track_id: int) -> None:
        for cue in self.cues.values():
            cue.forget(track_id)
