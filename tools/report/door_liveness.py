"""Liveness fitted to the door it guards: each score cue on this door's reviewed attempts.

In: every decision's ``liveness`` object (docs/decision-log.md: each score cue's attempt score
and operating point under ``cues``), its label and its ``drill`` flag, streamed in by
tools.report.collect through a :class:`LivenessCollector`.  Out: a :class:`LivenessTable` (one
entry per usable attempt) and, from it, :class:`DoorLiveness`: per cue its scores and its
APCER and BPCER at the point in force, the rule's, and a recommended point per cue
(:func:`recommend_points`: pure, numpy only).

The truth for liveness: **attack** when the attempt is labelled attack, or was made during an
attack drill (``drill`` true) and is not labelled as a person or a stranger; **live** when it is
labelled as a person or a stranger (a label always wins); otherwise it is not used.

A cue passes an attempt when the attempt's logged live probability for that cue is at or above
the cue's point (a cue that scored no frame, logged null, refuses at every point, as the daemon
does); the rule passes it when every score cue in force does (edge.liveness.judge).  APCER: the
share of attacks passed; BPCER: the share of live attempts refused.  The veto cues (planar
motion) and too few frames refuse whatever the points: they are left out here, which changes no
recommendation (they add the same attempts at every point).
"""

from __future__ import annotations

import itertools
import math
import re
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.jsonfields import FieldError, is_number
from edge.liveness import SCORE_CUES
from tools.report import ReportError
from tools.report.labels import ATTACK
from tools.report.stats import Rate

# The live probabilities a recommended point is chosen from.
GRID = (
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    0.95,
    0.98,
    0.99,
)
# Fewer reviewed attempts than these and no point is recommended.
MIN_ATTACKS = 10
MIN_LIVE = 20
MAX_CUES = 16  # distinct cue names in the logs (each is a column)
# Up to this many cues the recommendation searches every combination of grid points
# (19 ** 3 = 6,859 rules); beyond, one cue at a time.
MAX_JOINT_CUES = 3
_CUE_NAME = re.compile(r"[a-z0-9_]{1,40}")


def cue_title(cue: str) -> str:
    """How people call the cue ("MiniFASNet", "texture"): edge.liveness.SCORE_CUES's words."""
    spec = SCORE_CUES.get(cue)
    return spec.means if spec is not None else cue


def _order(cues: Sequence[str]) -> tuple[str, ...]:
    """SCORE_CUES order first, then any other cue by name."""
    known = [c for c in SCORE_CUES if c in cues]
    return (*known, *sorted(c for c in cues if c not in SCORE_CUES))


# --------------------------------------------------------------------------- reading the log


def _probability(cue: Mapping[str, Any], key: str, where: str, *, nullable: bool) -> float:
    v: Any = cue.get(key)
    if v is None and nullable and key in cue:
        return -math.inf  # scored no frame: refused at every point
    if is_number(v) and 0.0 <= v <= 1.0:
        return float(v)
    raise FieldError(
        f"{where}.{key}: expected a probability from 0 to 1{' or null' if nullable else ''}, "
        f"got {v!r}"
    )


def read_cues(liveness: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """cue -> (attempt score, operating point) from a record's liveness object; FieldError naming the field.

    An object without ``cues`` is from before the score cues were split: its own
    ``live_probability`` and ``min_live_probability`` are the texture cue's.  The score is
    -inf when the cue scored no frame (null).
    """
    cues = liveness.get("cues")
    if cues is None and "min_live_probability" in liveness:
        cues = {"texture": liveness}
    if cues is None:
        return {}
    if type(cues) is not dict:
        raise FieldError(f"liveness.cues: expected an object, got {type(cues).__name__}")
    out = {}
    for key, cue in cues.items():
        if not _CUE_NAME.fullmatch(key):
            raise FieldError(f"liveness.cues: {ascii(key)[:60]} is not a cue name")
        where = f"liveness.cues.{key}"
        if type(cue) is not dict:
            raise FieldError(f"{where}: expected an object, got {type(cue).__name__}")
        out[key] = (
            _probability(cue, "live_probability", where, nullable=True),
            _probability(cue, "min_live_probability", where, nullable=False),
        )
    return out


@dataclass(frozen=True, eq=False)
class LivenessTable:
    """The attempts liveness can be judged on, one array entry each, and the points in force."""

    decisions: int  # decisions with a liveness object
    unused: int  # of them, neither labelled nor made during a drill
    attack: np.ndarray  # bool per usable attempt: attack (else live)
    by_drill: np.ndarray  # bool: an attack only because it was made during a drill (no label)
    scores: dict[str, np.ndarray]  # cue -> live probability (NaN: not in its cues; -inf: null)
    points: dict[str, float]  # cue -> its point at the newest decision that had it
    in_force: tuple[str, ...]  # the cues of the newest decision with a liveness object

    @property
    def n(self) -> int:
        return int(self.attack.shape[0])


class LivenessCollector:
    """Streams decisions' liveness objects into a :class:`LivenessTable`.

    Only usable attempts (labelled, or made during a drill) are kept: 2 bytes each and 8 per cue.
    """

    def __init__(self) -> None:
        self.decisions = 0
        self.unused = 0
        self._attack = array("b")
        self._by_drill = array("b")
        self._scores: dict[str, array[float]] = {}
        self._newest: dict[str, tuple[str, float]] = {}  # cue -> (time, point)
        self._in_force: tuple[str, tuple[str, ...]] = ("", ())

    def add(
        self,
        cues: Mapping[str, tuple[float, float]] | None,
        *,
        drill: bool,
        truth: str | None,
        time: str,
    ) -> None:
        """One decision: its :func:`read_cues` (None: liveness was off), drill flag, label and time."""
        if cues is None:
            return
        if len(self._newest.keys() | cues.keys()) > MAX_CUES:
            raise ReportError(f"liveness.cues: more than {MAX_CUES} different cues in these logs")
        self.decisions += 1
        for cue, (_, point) in cues.items():
            if time >= self._newest.get(cue, ("", 0.0))[0]:
                self._newest[cue] = (time, point)
        if time >= self._in_force[0]:
            self._in_force = (time, tuple(cues))
        if truth == ATTACK or (truth is None and drill):
            attack = True
        elif truth is not None:
            attack = False  # a person or a stranger: live
        else:
            self.unused += 1
            return
        for cue in (c for c in cues if c not in self._scores):
            self._scores[cue] = array("d", [math.nan]) * len(self._attack)
        for cue, column in self._scores.items():
            column.append(cues[cue][0] if cue in cues else math.nan)
        self._attack.append(attack)
        self._by_drill.append(truth is None)

    def table(self) -> LivenessTable:
        order = _order(list(self._newest))  # every cue seen (a scored one too)
        return LivenessTable(
            decisions=self.decisions,
            unused=self.unused,
            attack=np.array(self._attack, dtype=bool),
            by_drill=np.array(self._by_drill, dtype=bool),
            scores={
                c: np.array(self._scores[c], dtype=np.float64) for c in order if c in self._scores
            },
            points={c: self._newest[c][1] for c in order},
            in_force=_order(self._in_force[1]),
        )


# --------------------------------------------------------------------------- the rule, and the points


@dataclass(frozen=True)
class RuleAt:
    """The rule (every cue at its point) on the reviewed attempts."""

    points: dict[str, float]
    live_refused: Rate  # BPCER
    attacks_accepted: Rate  # APCER

    def to_json(self) -> dict[str, Any]:
        return {
            "points": dict(self.points),
            "live_refused": self.live_refused.to_json(),
            "attacks_accepted": self.attacks_accepted.to_json(),
        }


def passes(scores: Mapping[str, np.ndarray], points: Mapping[str, float], n: int) -> np.ndarray:
    """Per attempt (of ``n``): every cue in ``points`` passes it (score >= point; NaN and -inf never do)."""
    ok = np.ones(n, dtype=bool)
    for cue, point in points.items():
        ok &= scores[cue] >= point
    return ok


def rule_at(
    scores: Mapping[str, np.ndarray], attack: np.ndarray, points: Mapping[str, float]
) -> RuleAt:
    """The rule's BPCER and APCER at ``points`` (one entry per cue of the rule)."""
    attack = np.asarray(attack, dtype=bool)
    ok = passes(scores, points, attack.shape[0])
    live = ~attack
    return RuleAt(
        dict(points),
        Rate(int(np.count_nonzero(live & ~ok)), int(np.count_nonzero(live))),
        Rate(int(np.count_nonzero(attack & ok)), int(np.count_nonzero(attack))),
    )


@dataclass(frozen=True)
class CuePoint:
    """One cue's recommendation: the rule with this cue at its point now and at the recommended one."""

    cue: str
    now: float
    recommended: float
    at_now: RuleAt
    at_recommended: RuleAt
    kept: bool  # no grid point does better than the point now: it is kept

    @property
    def changes(self) -> bool:
        return self.recommended != self.now

    def to_json(self) -> dict[str, Any]:
        return {
            "cue": self.cue,
            "now": self.now,
            "recommended": self.recommended,
            "kept": self.kept,
            "at_now": self.at_now.to_json(),
            "at_recommended": self.at_recommended.to_json(),
        }


@dataclass(frozen=True)
class PointsAdvice:
    """The recommended points, or why there are none."""

    now: RuleAt
    cues: tuple[CuePoint, ...] = ()  # empty when refused
    why_not: str = ""  # empty when there is a recommendation
    together: RuleAt | None = None  # the points to apply (every cue), and what they do
    only: str = ""  # the one cue changed when the changes together would let more attacks in

    @property
    def changes(self) -> bool:
        return self.together is not None and self.together.points != self.now.points

    def to_json(self) -> dict[str, Any]:
        return {
            "why_not": self.why_not or None,
            "now": self.now.to_json(),
            "cues": [c.to_json() for c in self.cues],
            "together": None if self.together is None else self.together.to_json(),
            "only": self.only or None,
        }


def _middle(values: np.ndarray) -> float:
    """The middle of the sorted ``values`` (the lower one of two)."""
    return float(values[(values.shape[0] - 1) // 2])


def recommend_points(
    scores: Mapping[str, np.ndarray],
    attack: np.ndarray,
    points: Mapping[str, float],
    *,
    grid: Sequence[float] = GRID,
    min_attacks: int = MIN_ATTACKS,
    min_live: int = MIN_LIVE,
    joint: bool = True,
) -> PointsAdvice:
    """A recommended operating point per cue of ``points`` (the points in force), from reviewed attempts.

    ``scores``: cue -> each attempt's live probability (-inf when the cue scored no frame);
    ``attack``: per attempt, an attack (else live).  For each cue in turn, the others at their
    points in force: the grid points where the rule accepts no more of these attacks than it
    does now, and of those the ones where it refuses the fewest live attempts; the middle of
    those (the lower of two middles).  When even that refuses more live attempts than the point
    now (or no grid point keeps the attacks out as well), the point now is kept.

    Each cue's choice leans on the others at their points now; when all the changes together
    would let in more attacks than now, only the cue whose change spares the most live attempts
    is changed (``only``).  No recommendation with fewer than ``min_attacks`` attacks or
    ``min_live`` live attempts.
    """
    attack = np.asarray(attack, dtype=bool)
    points = dict(points)
    now = rule_at(scores, attack, points)
    n_attack, n_live = now.attacks_accepted.n, now.live_refused.n
    short = []
    if n_attack < min_attacks:
        short.append(f"{n_attack} attack attempt(s), fewer than {min_attacks}")
    if n_live < min_live:
        short.append(f"{n_live} live attempt(s), fewer than {min_live}")
    if short or not points:
        why = (
            "no score cue is in force"
            if not points
            else "too few reviewed attempts to place a point: " + " and ".join(short)
        )
        return PointsAdvice(now, why_not=why)
    g = np.asarray(sorted(grid), dtype=np.float64)
    if joint and len(points) <= MAX_JOINT_CUES:
        return _joint(scores, attack, points, now, g)
    live = ~attack
    choices = []
    for cue, point in points.items():
        others = passes(scores, {c: p for c, p in points.items() if c != cue}, attack.shape[0])
        passed = others[:, None] & (scores[cue][:, None] >= g[None, :])
        accepted = np.count_nonzero(passed & attack[:, None], axis=0)
        refused = np.count_nonzero(~passed & live[:, None], axis=0)
        allowed = accepted <= now.attacks_accepted.k
        pick, kept = point, True
        if allowed.any():
            fewest = refused[allowed].min()
            if fewest <= now.live_refused.k:
                pick, kept = _middle(g[allowed & (refused == fewest)]), False
        at = rule_at(scores, attack, {**points, cue: pick})
        choices.append(CuePoint(cue, point, pick, now, at, kept))
    together = rule_at(scores, attack, {c.cue: c.recommended for c in choices})
    only = ""
    if together.attacks_accepted.k > now.attacks_accepted.k:
        best = max(choices, key=lambda c: now.live_refused.k - c.at_recommended.live_refused.k)
        only = best.cue
        together = best.at_recommended
    return PointsAdvice(now, tuple(choices), "", together, only)


def _joint(
    scores: Mapping[str, np.ndarray],
    attack: np.ndarray,
    points: dict[str, float],
    now: RuleAt,
    g: np.ndarray,
) -> PointsAdvice:
    """Every combination of grid points at once (a few cues): the veto can move from a cue that
    does not separate at this door to one that does, which no one-cue-at-a-time change finds.

    Of the combinations whose rule accepts no more of these attacks than now, those refusing
    the fewest live attempts; of them the middle one in sorted order (the lower of two middles).
    When none refuses fewer live attempts than the points now, they are kept.
    """
    cues = list(points)
    live = ~attack
    n = attack.shape[0]
    # per cue: the grid and its point now, and which attempts pass at each
    values = {c: np.unique(np.append(g, points[c])) for c in cues}
    grid_pass = {c: scores[c][:, None] >= values[c][None, :] for c in cues}
    best: list[tuple[float, ...]] = []
    fewest = now.live_refused.k
    for combo in itertools.product(*(range(values[c].shape[0]) for c in cues)):
        ok = np.ones(n, dtype=bool)
        for c, i in zip(cues, combo, strict=True):
            ok &= grid_pass[c][:, i]
        if np.count_nonzero(ok & attack) > now.attacks_accepted.k:
            continue
        refused = int(np.count_nonzero(live & ~ok))
        chosen = tuple(float(values[c][i]) for c, i in zip(cues, combo, strict=True))
        if refused < fewest:
            fewest, best = refused, [chosen]
        elif refused == fewest and refused < now.live_refused.k:
            best.append(chosen)
    pick = dict(points)
    if best:
        # Of the ties: the fewest cues changed (a change that spares nobody is no change),
        # then cue by cue the middle of the values left (the lower of two middles).
        changed = [sum(v != points[c] for c, v in zip(cues, b, strict=True)) for b in best]
        left = [b for b, k in zip(best, changed, strict=True) if k == min(changed)]
        for j, c in enumerate(cues):
            pick[c] = _middle(np.unique([b[j] for b in left]))
            left = [b for b in left if b[j] == pick[c]]
    together = rule_at(scores, attack, pick)
    # each cue's line shows the rule at every recommended point: the points go together
    choices = tuple(
        CuePoint(c, points[c], pick[c], now, together, pick[c] == points[c]) for c in cues
    )
    return PointsAdvice(now, choices, "", together, "")


# --------------------------------------------------------------------------- the door's figures


@dataclass(frozen=True, eq=False)
class CueFigures:
    """One score cue at this door: its scores, and its own APCER and BPCER at its point in force."""

    cue: str
    point: float
    in_force: bool  # on at the newest decision (part of the rule)
    live_scores: np.ndarray  # sorted; -inf: scored no frame
    attack_scores: np.ndarray
    apcer: Rate  # attacks at or above the point
    bpcer: Rate  # live attempts below it

    @property
    def title(self) -> str:
        return cue_title(self.cue)

    def to_json(self) -> dict[str, Any]:
        def listed(x: np.ndarray) -> list[float | None]:
            return [float(v) if math.isfinite(v) else None for v in x]

        return {
            "cue": self.cue,
            "point": self.point,
            "in_force": self.in_force,
            "live_scores": listed(self.live_scores),
            "attack_scores": listed(self.attack_scores),
            "apcer": self.apcer.to_json(),
            "bpcer": self.bpcer.to_json(),
        }


@dataclass(frozen=True, eq=False)
class DoorLiveness:
    """Liveness at this door: per cue, the rule, and the recommended points."""

    decisions: int  # with a liveness object
    unused: int  # neither labelled nor from a drill
    attacks: int
    attacks_by_drill: int  # of them, unlabelled attempts made during an attack drill
    live: int
    left_out: int  # usable attempts without a score from every cue in force: not in the rule
    cues: tuple[CueFigures, ...]
    advice: PointsAdvice  # .now: the rule at the points in force
    _scores: dict[str, np.ndarray] = field(repr=False)  # the rule's attempts (cues in force)
    _attack: np.ndarray = field(repr=False)

    @property
    def rule(self) -> RuleAt:
        return self.advice.now

    @property
    def points(self) -> dict[str, float]:
        """The points in force, for the cues of the rule."""
        return dict(self.rule.points)

    def at(self, points: Mapping[str, float]) -> RuleAt:
        """The rule at other points (each cue of the rule; a cue not named keeps its point now)."""
        return rule_at(self._scores, self._attack, {**self.points, **points})

    def to_json(self) -> dict[str, Any]:
        return {
            "decisions_with_liveness": self.decisions,
            "unused": self.unused,
            "attacks": self.attacks,
            "attacks_by_drill": self.attacks_by_drill,
            "live": self.live,
            "left_out_of_the_rule": self.left_out,
            "grid": list(GRID),
            "min_attacks": MIN_ATTACKS,
            "min_live": MIN_LIVE,
            "cues": [c.to_json() for c in self.cues],
            "rule": self.rule.to_json(),
            "recommendation": self.advice.to_json(),
        }


def door_liveness(table: LivenessTable) -> DoorLiveness | None:
    """The figures of :class:`DoorLiveness`; None when no decision had a liveness object."""
    if table.decisions == 0:
        return None
    attack = table.attack
    figures = []
    for cue, s in table.scores.items():
        has = ~np.isnan(s)
        point = table.points[cue]
        a, v = s[has & attack], s[has & ~attack]
        figures.append(
            CueFigures(
                cue,
                point,
                cue in table.in_force,
                np.sort(v),
                np.sort(a),
                Rate(int(np.count_nonzero(a >= point)), int(a.size)),
                Rate(int(np.count_nonzero(v < point)), int(v.size)),
            )
        )
    # The rule's attempts: those scored by every cue in force (a cue switched on later has
    # nothing to say about the attempts before it).
    complete = np.ones(table.n, dtype=bool)
    for c in table.in_force:
        col = table.scores.get(c)
        complete &= np.zeros(table.n, dtype=bool) if col is None else ~np.isnan(col)
    scores = {
        c: table.scores[c][complete] if c in table.scores else np.zeros(0) for c in table.in_force
    }
    points = {c: table.points[c] for c in table.in_force}
    advice = recommend_points(scores, attack[complete], points)
    return DoorLiveness(
        decisions=table.decisions,
        unused=table.unused,
        attacks=int(np.count_nonzero(attack)),
        attacks_by_drill=int(np.count_nonzero(attack & table.by_drill)),
        live=int(np.count_nonzero(~attack)),
        left_out=int(np.count_nonzero(~complete)),
        cues=tuple(figures),
        advice=advice,
        _scores=scores,
        _attack=attack[complete],
    )
