"""Decision records with a liveness verdict, written the daemon's way, for report and web tests.

Each record's liveness object is edge.liveness.judge's verdict (LivenessVerdict.as_dict) on one
frame whose cue logits give the wanted live probabilities, through edge.decisions.decision_record.
"""

from __future__ import annotations

import math

from edge.decisions import decision_record
from edge.liveness import LivenessSample, judge, logit
from edge.types import Decision, Reason

POINTS = {"texture": 0.46, "minifasnet": 0.46}


def lv_record(
    event_id: str,
    cues: dict[str, float | None],
    *,
    points: dict[str, float] = POINTS,
    drill: bool = False,
    t: float,
    person: str = "alice",
) -> dict:
    """A decision whose liveness verdict saw one frame scoring ``cues`` (None: the cue scored nothing)."""
    frame = LivenessSample(
        scores=tuple((k, math.nan if p is None else logit(p)) for k, p in cues.items())
    )
    verdict = judge([frame], points={k: points[k] for k in cues}, min_frames=1, vetoes=())
    d = Decision(
        event_id=event_id,
        at=0.0,
        unlock=False,
        reason=Reason.UNKNOWN_FACE if verdict.live else Reason.PRESENTATION_ATTACK,
        person=person,
        best=person,
        best_score=0.5,
        second=None,
        second_score=-1.0,
        threshold=0.6,
        min_margin=0.1,
        frames_used=5,
        frames_matched=0,
        liveness=verdict.as_dict(),
        drill=drill,
    )
    return decision_record(d, unix_time=t)
