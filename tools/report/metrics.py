"""Columns -> the numbers of the report, assembled into one frozen :class:`Report`.

In: :class:`tools.report.collect.Columns`, who is enrolled, the FAR target.
Out: a :class:`Report` holding every number the renderers show (every rate a
:class:`~tools.report.stats.Rate` whose value is None when undefined), computed
with numpy over whole columns by:

- tools.report.confusion: who each attempt is, and the confusion matrix;
- tools.report.sweep: the threshold sweep and the recommended threshold;
- tools.report.breakdowns: per person, reason code, ISO week and exposure band;
- tools.report.door_liveness: each liveness cue at this door, and its recommended point.

No sentences here: tools.report.wording and tools.report.sections put the numbers into words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.types import Reason
from tools.report.breakdowns import (
    ExposureRow,
    PersonRow,
    ReasonRow,
    WeekRow,
    liveness_rates,
    mean_finite,
    per_door,
    per_exposure,
    per_person,
    per_reason,
    per_week,
)
from tools.report.collect import REASON_CODE, Columns, Example
from tools.report.confusion import Classes, Confusion, classify, logged_confusion
from tools.report.door_liveness import DoorLiveness, door_liveness
from tools.report.stats import Rate
from tools.report.sweep import Recommendation, Sweep, build_sweep, recommend


@dataclass(frozen=True, eq=False)
class Report:
    files: tuple[str, ...]
    records: int
    skipped_bad: int
    label_source: str
    enrolled: tuple[str, ...]
    enrolled_inferred: (
        bool  # no --enrolled: every name the log shows as person, best or second match
    )
    unlabelled: int
    unlabelled_why: dict[str, int]
    label_notes: tuple[str, ...]  # the labeller's own notes
    strangers: tuple[str, ...]  # names in the truth nobody enrolled, counted as impostors (sorted)
    settings: dict[tuple[float, float], int]
    min_margin_override: float | None
    confusion: Confusion
    mean_genuine_score: float | None
    mean_impostor_score: float | None
    mean_attack_score: float | None
    locked_out: dict[str, int]
    liveness: dict[str, Rate]  # denials with reason presentation_attack, by truth
    exposure: list[ExposureRow]  # by face-metered exposure band; empty when nothing was metered
    false_accept_examples: tuple[Example, ...]
    locked_out_examples: tuple[Example, ...]
    redecide: dict[str, int]
    sweep: Sweep
    recommendation: Recommendation
    people: list[PersonRow]
    reasons: list[ReasonRow]
    weeks: list[WeekRow]
    doors: list[WeekRow]
    remote: dict[str, int]  # remote-unlock decisions by reason, apart from the face attempts
    scores: dict[str, np.ndarray]  # genuine / impostor / attack best_scores, for the histograms
    door_liveness: DoorLiveness | None  # liveness cues at this door; None without liveness verdicts

    @property
    def logged_threshold(self) -> float | None:
        """The threshold most records were decided at (None for an empty log)."""
        if not self.settings:
            return None
        return max(self.settings.items(), key=lambda kv: kv[1])[0][0]

    @property
    def labelled(self) -> int:
        return self.records - self.unlabelled


def _strangers(cols: Columns, cls: Classes) -> tuple[str, ...]:
    """Names in the truth that nobody enrolled, counted as impostors.

    Listed in the report because a typo in a label would otherwise quietly make
    an impostor of a genuine attempt.
    """
    return tuple(
        sorted({cols.names[i] for i in np.unique(cols.truth[cls.impostor & (cols.truth >= 0)])})
    )


def _locked_out(cols: Columns, cls: Classes) -> dict[str, int]:
    locked = cols.reason == REASON_CODE[Reason.LOCKED_OUT]
    return {
        "total": int(np.count_nonzero(locked)),
        "genuine": int(np.count_nonzero(locked & cls.genuine)),
        "impostor": int(np.count_nonzero(locked & cls.impostor)),
        "attack": int(np.count_nonzero(locked & cls.attack)),
        "unlabelled": int(np.count_nonzero(locked & cls.unlabelled)),
    }


def _scores(cols: Columns, cls: Classes) -> dict[str, np.ndarray]:
    finite = np.isfinite(cols.score)
    return {
        "genuine": cols.score[cls.genuine & finite],
        "impostor": cols.score[cls.impostor & finite],
        "attack": cols.score[cls.attack & finite],
    }


def build_report(
    cols: Columns,
    *,
    label_source: str,
    enrolled: tuple[str, ...] | None = None,
    target_far: float = 1e-3,
    safety_margin: float = 0.01,
    attacks: bool = True,
) -> Report:
    """Every number of the report from the collected columns."""
    enrolled_names = tuple(sorted(cols.gallery)) if enrolled is None else tuple(enrolled)
    cls = classify(cols, enrolled_names)
    sweep = build_sweep(cols, cls)
    floor = max((t for t, _ in cols.settings), default=None)
    return Report(
        files=cols.files,
        records=cols.n,
        skipped_bad=cols.skipped_bad,
        label_source=label_source,
        enrolled=enrolled_names,
        enrolled_inferred=enrolled is None,
        unlabelled=int(np.count_nonzero(cls.unlabelled)),
        unlabelled_why=cols.unlabelled_why,
        label_notes=cols.label_notes,
        strangers=_strangers(cols, cls),
        settings=cols.settings,
        min_margin_override=cols.min_margin_override,
        confusion=logged_confusion(cols, cls),
        mean_genuine_score=mean_finite(cols.score[cls.genuine]),
        mean_impostor_score=mean_finite(cols.score[cls.negative]),
        mean_attack_score=mean_finite(cols.score[cls.attack]),
        locked_out=_locked_out(cols, cls),
        liveness=liveness_rates(cols, cls),
        exposure=per_exposure(cols, cls),
        false_accept_examples=cols.false_accept_examples,
        locked_out_examples=cols.locked_out_examples,
        redecide={
            "agree": cols.redecide_agree,
            "logged_unlock_replay_deny": cols.redecide_unlock_only_logged,
            "logged_deny_replay_accept": cols.redecide_unlock_only_replayed,
        },
        sweep=sweep,
        recommendation=recommend(
            sweep, target_far, safety_margin=safety_margin, floor=floor, attacks=attacks
        ),
        people=per_person(cols, cls),
        reasons=per_reason(cols, cls),
        weeks=per_week(cols, cls),
        doors=per_door(cols, cls),
        remote=cols.remote,
        scores=_scores(cols, cls),
        door_liveness=door_liveness(cols.liveness),
    )
