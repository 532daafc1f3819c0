"""The decision policy: a tracked face's frames -> one Decision per attempt.

In: one :class:`Observation` per tracked face per frame (its Quality and, when
it passed the quality gates, its gallery Match), with the time passed in.
Out: at most one :class:`~edge.types.Decision` per attempt -- ACCEPTED (the
only ``unlock=True``) once ``min_matching_frames`` of the attempt's ``frames``
frames vote for one enrolled person and none votes for anybody else; otherwise
a denial whose reason says why; LOCKED_OUT while a lockout runs; ATTACK_DRILL
instead of ACCEPTED while an attack drill runs (every decision then has ``drill``).

A false accept is far worse than a false reject, so every doubt denies: a frame
votes only if it passes every gate, scores >= the threshold *and* leads the
runner-up by the margin; NaN anywhere fails its comparison.

The daemon's loop, roughly::

    for res, tid in zip(results, tracker.update([r.face for r in results], now)):
        bad = policy.gate(res.quality)              # skip embedding bad frames
        match = None if bad else matcher(res.embedding)
        decision = policy.observe(Observation(tid, now, match, res.quality, src), now)
    for tid in tracker.expired(now):
        decision = policy.end_track(tid, now)       # every attempt gets logged

Pure logic: no clock, no threads, no I/O but logging.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import statistics
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge.access import AccessRules
from edge.config import LivenessConfig, MatchConfig, PolicyConfig
from edge.jsonfields import as_finite
from edge.liveness import (
    LivenessSample,
    LivenessVerdict,
    enabled_vetoes,
    judge,
    operating_points,
)
from edge.quality import Quality, failed_gates
from edge.types import UNLOCKING, Decision, Match, Reason

log = logging.getLogger(__name__)

# Denials that look like someone trying to get in; quality failures and an empty
# gallery do not (a passer-by or a setup problem must not lock the household out).
COUNTED_DENIALS = frozenset({Reason.UNKNOWN_FACE, Reason.AMBIGUOUS, Reason.PRESENTATION_ATTACK})

# Wrong remote-unlock codes have a counter of their own, which only a right code resets (never
# time): after REMOTE_WRONG_IN_ROW in a row remote unlock is refused for REMOTE_LOCKOUT_S,
# doubling with each further run of them (at most REMOTE_LOCKOUT_MAX_S); after
# REMOTE_WRONG_PER_DAY in a calendar day (wall clock, local time) it is refused until the next
# day.  So a guesser gets at most REMOTE_WRONG_PER_DAY guesses a day.
REMOTE_WRONG_IN_ROW = 5
REMOTE_LOCKOUT_S = 60.0
REMOTE_LOCKOUT_MAX_S = 86400.0
REMOTE_WRONG_PER_DAY = 20

_QUALITY_FIELDS = tuple(f.name for f in dataclasses.fields(Quality))


@dataclass(frozen=True)
class Observation:
    """One tracked face in one frame.

    ``match`` is None when the frame failed the quality gates and was not
    matched.  It may also be carried for such frames: the policy re-applies
    the gates itself, so a match on a failing frame never votes.  A passing
    frame with ``match=None`` simply does not vote.
    """

    track_id: int
    time: float
    match: Match | None
    quality: Quality
    source: str = ""
    liveness: LivenessSample | None = None


def _random_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class _Track:
    window: list[Observation] = field(default_factory=list)
    decided_at: float | None = None
    accepted: bool = False


@dataclass
class _Summary:
    """What a window of observations says, computed in one place for every decision."""

    size: int
    failures: list[str]  # gate reasons of the frames that failed
    votes: Counter[str]  # person -> frames that voted for them
    vote_scores: dict[str, float]  # person -> their best voting score (tie-break only)
    top: Match | None  # the best-scoring match among frames that passed the gates
    no_gallery: bool  # frames were matched, and none had anybody to match against
    contenders: set[str] = field(default_factory=set)  # people any gated frame put above threshold

    @property
    def candidate(self) -> str | None:
        """Who this attempt was most likely to be: most votes, else the top match."""
        if self.votes:
            return max(self.votes, key=lambda p: (self.votes[p], self.vote_scores[p]))
        return self.top.best if self.top is not None else None


class Policy:
    """k-of-n voting per track, retry pause per track, and a global lockout.

    ``id_factory`` makes event ids (default: 16 random hex digits); inject a
    counter in tests.  With ``liveness`` (enabled), an accept also needs the
    attempt's liveness verdict (edge.liveness.judge over at least
    ``liveness.min_frames`` frames); a failed verdict turns an accept, an
    unknown face or an ambiguous one into PRESENTATION_ATTACK.
    """

    def __init__(
        self,
        policy: PolicyConfig,
        match: MatchConfig,
        *,
        liveness: LivenessConfig | None = None,
        model_sha256: str = "",
        camera: str = "",
        door: str = "",
        access: AccessRules | None = None,
        wall: Callable[[], float] = time.time,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        # The YAML loader checks these ranges, but a hand-built config is not
        # checked: refuse here rather than run a policy that needs zero votes.
        if policy.frames < 1 or policy.min_matching_frames < 1:
            raise ValueError(
                f"policy.frames and policy.min_matching_frames must be >= 1, "
                f"got {policy.frames} and {policy.min_matching_frames}"
            )
        if policy.min_matching_frames > policy.frames:
            log.warning(
                "policy.min_matching_frames (%d) > policy.frames (%d): nobody can ever be accepted",
                policy.min_matching_frames,
                policy.frames,
            )
        self.policy = policy
        self.match = match
        self.liveness = liveness if liveness is not None and liveness.enabled else None
        if self.liveness is not None and self.liveness.min_frames > policy.frames:
            raise ValueError(
                f"liveness.min_frames ({self.liveness.min_frames}) > policy.frames "
                f"({policy.frames}): nobody could be accepted"
            )
        self.model_sha256 = model_sha256
        self.camera = camera
        self.door = door
        # Off (from Home Assistant, say, when the house is empty): a face that would be let in
        # is refused with reason face_unlock_off.
        self.face_unlock = True
        # An attack drill (from the web app) runs until this wall-clock time, Unix seconds:
        # meanwhile a face that would be let in is refused with reason attack_drill, and every
        # decision is marked drill=True (see drilling()).
        self.drill_until: float | None = None
        # Who may come in when (edge.access), judged on the wall clock; guests' entries used.
        self.access = access
        self.wall = wall
        self.entries: dict[str, int] = {}
        self._new_id = id_factory or _random_id
        self._tracks: dict[int, _Track] = {}
        self._denials: deque[float] = deque()  # times of counted denials in the window
        self._last_denial = -math.inf  # time of the last counted denial
        self._locked_until = -math.inf
        self._level = 0  # consecutive lockouts so far: the next lasts lockout_s * 2**level
        # Wrong remote codes (see REMOTE_WRONG_IN_ROW): in a row since the last right code, the
        # remote lockout's end (monotonic), and the calendar day (ISO date) with its wrong codes.
        self._remote_wrong = 0
        self._remote_locked_until = -math.inf
        self._remote_day = ""
        self._remote_day_wrong = 0

    # -- gates and votes -----------------------------------------------------------

    def gate(self, quality: Quality) -> Reason | None:
        """None if the frame passes every quality gate (edge.quality.GATES), else the first failure's reason."""
        failed = failed_gates(quality, self.policy)
        return failed[0].reason if failed else None

    def _vote(self, obs: Observation, failed: str | None) -> str | None:
        """The person this frame votes for, if any (see the module docstring)."""
        m = obs.match
        if failed is not None or m is None or m.best is None:
            return None
        if not m.best_score >= self.match.min_cosine_similarity:
            return None
        if not m.margin >= self.match.min_margin:  # no epsilon: float error may only deny
            return None
        return m.best

    def _summarize(self, window: list[Observation]) -> _Summary:
        failures: list[str] = []
        votes: Counter[str] = Counter()
        vote_scores: dict[str, float] = {}
        matched: list[Match] = []
        contenders: set[str] = set()
        for obs in window:
            failed = self.gate(obs.quality)
            if failed is not None:
                failures.append(failed)
                continue
            if obs.match is not None:
                matched.append(obs.match)
                if (
                    obs.match.best is not None
                    and obs.match.best_score >= self.match.min_cosine_similarity
                ):
                    contenders.add(obs.match.best)
            person = self._vote(obs, failed)
            if person is not None and obs.match is not None:  # a vote is always for a match
                votes[person] += 1
                vote_scores[person] = max(vote_scores.get(person, -math.inf), obs.match.best_score)
        scored = [m for m in matched if math.isfinite(m.best_score)]
        top = max(scored, key=lambda m: m.best_score) if scored else None  # first of equals
        no_gallery = bool(matched) and all(m.best is None for m in matched)
        return _Summary(len(window), failures, votes, vote_scores, top, no_gallery, contenders)

    def _deny_reason(self, s: _Summary) -> Reason:
        """Why a window that did not accept was denied; checked most specific first."""
        if s.no_gallery:
            return Reason.NO_GALLERY
        if 2 * len(s.failures) > s.size:
            dark = s.failures.count(Reason.TOO_DARK)
            return Reason.TOO_DARK if dark > len(s.failures) - dark else Reason.LOW_QUALITY
        if len(s.votes) > 1 or len(s.contenders) > 1:
            return Reason.AMBIGUOUS
        top, m = s.top, self.match
        if (
            top is not None
            and top.best_score >= m.min_cosine_similarity
            and not top.margin >= m.min_margin
        ):
            return Reason.AMBIGUOUS
        return Reason.UNKNOWN_FACE

    # -- the public calls --------------------------------------------------------------

    def observe(self, obs: Observation, now: float) -> Decision | None:
        """Add a frame to its track's window; a Decision as soon as there is one, else None.

        A decided track ignores further frames: for good once accepted (a person
        standing in the doorway must not unlock it again and again, nor hand the
        track to whoever follows), and for retry_after_s once denied.
        """
        track = self._tracks.setdefault(obs.track_id, _Track())
        if track.decided_at is not None:
            if track.accepted or now - track.decided_at < self.policy.retry_after_s:
                return None
            track.window = []
            track.decided_at = None
        track.window.append(obs)
        s = self._summarize(track.window)
        if len(s.votes) == 1:
            ((person, n),) = s.votes.items()
            # A frame that put somebody else above the threshold (even without the
            # margin) is doubt about who this is: no accept from this window.
            if n >= self.policy.min_matching_frames and s.contenders <= {person}:
                if self.liveness is None:
                    return self._decide(
                        obs.track_id, track, s, now, reason=Reason.ACCEPTED, person=person
                    )
                # Liveness is judged over min_frames frames: wait for them, then decide.
                if len(track.window) >= self.liveness.min_frames:
                    verdict = self._verdict(track.window)
                    reason = Reason.ACCEPTED if verdict.live else Reason.PRESENTATION_ATTACK
                    return self._decide(
                        obs.track_id, track, s, now, reason=reason, person=person, verdict=verdict
                    )
        if len(track.window) >= self.policy.frames:
            return self._decide(
                obs.track_id, track, s, now, reason=self._deny_reason(s), person=s.candidate
            )
        return None

    def settled(self, track_id: int, now: float) -> bool:
        """True while observe() would ignore this track: the daemon skips embedding it."""
        track = self._tracks.get(track_id)
        if track is None or track.decided_at is None:
            return False
        return track.accepted or now - track.decided_at < self.policy.retry_after_s

    def end_track(self, track_id: int, now: float) -> Decision | None:
        """The track left: deny an undecided attempt (so every attempt is logged), and forget it.

        A glimpse shorter than min_matching_frames frames is not an attempt (it
        could never have been accepted): it is forgotten without a decision, so
        passers-by neither fill the log nor count towards a lockout.
        """
        track = self._tracks.pop(track_id, None)
        if (
            track is None
            or track.decided_at is not None
            or len(track.window) < self.policy.min_matching_frames
        ):
            if track is not None and track.decided_at is None and track.window:
                log.debug(
                    "track %d left after %d frame(s): a glimpse, not an attempt",
                    track_id,
                    len(track.window),
                )
            return None
        s = self._summarize(track.window)
        return self._decide(
            track_id, track, s, now, reason=self._deny_reason(s), person=s.candidate
        )

    def _verdict(self, window: list[Observation], min_frames: int | None = None) -> LivenessVerdict:
        """The window's liveness verdict; ``min_frames`` defaults to liveness.min_frames."""
        cfg = self.liveness
        assert cfg is not None
        return judge(
            [o.liveness for o in window],
            points=operating_points(cfg),
            min_frames=cfg.min_frames if min_frames is None else min_frames,
            vetoes=enabled_vetoes(cfg),
        )

    def locked_out_until(self, now: float) -> float | None:
        """When the current lockout ends, or None if there is none at ``now``."""
        return self._locked_until if now < self._locked_until else None

    def drilling(self) -> bool:
        """True while an attack drill runs (``drill_until`` is on the wall clock; NaN: none)."""
        return self.drill_until is not None and self.wall() < self.drill_until

    # -- decisions and lockout -------------------------------------------------------------

    def _decide(
        self,
        track_id: int,
        track: _Track,
        s: _Summary,
        now: float,
        *,
        reason: Reason,
        person: str | None,
        verdict: LivenessVerdict | None = None,
    ) -> Decision:
        drill = self.drilling()
        if self.liveness is not None:
            verdict = verdict or self._verdict(track.window)
            reason = self._liveness_reason(track_id, track, verdict, reason)
        if reason == Reason.ACCEPTED and not self.face_unlock:
            log.info("track %d: %s would be let in, but face unlock is off", track_id, person)
            reason = Reason.FACE_UNLOCK_OFF
        if reason == Reason.ACCEPTED and self.access is not None and person is not None:
            refusal = self.access.refusal(person, self.wall(), self.entries.get(person, 0))
            if refusal is not None:
                log.info(
                    "track %d: %s recognised, refused by the access rules: %s",
                    track_id,
                    person,
                    refusal,
                )
                reason = refusal
        if reason == Reason.ACCEPTED and drill:
            # Not accepted, so neither counted towards the lockout nor resetting its doubling,
            # and no guest's entry is used: the household tries its own photos at the door.
            log.info("track %d: %s would be let in, but an attack drill runs", track_id, person)
            reason = Reason.ATTACK_DRILL
        locked = now < self._locked_until
        reason = self._lockout_reason(track_id, reason, person, now, locked=locked)
        track.decided_at = now
        track.accepted = reason == Reason.ACCEPTED
        if (
            track.accepted
            and person is not None
            and self.access is not None
            and self.access.counts_entries(person)
        ):
            self.entries[person] = self.entries.get(person, 0) + 1
        decision = self._decision(
            track_id, track, s, now, reason=reason, person=person, verdict=verdict, drill=drill
        )
        if not locked:
            log.info(
                "track %d: %s person=%s score=%.3f votes=%d/%d",
                track_id,
                reason,
                person,
                decision.best_score,
                decision.frames_matched,
                decision.frames_used,
            )
        return decision

    def _liveness_reason(
        self, track_id: int, track: _Track, verdict: LivenessVerdict, reason: Reason
    ) -> Reason:
        """A face that is not live is an attack whoever it resembles.

        Quality and gallery problems keep their own reason (they are what to fix).  A track
        that left before min_frames is judged on the frames it had.
        """
        assert self.liveness is not None
        if verdict.live or reason not in (Reason.ACCEPTED, Reason.UNKNOWN_FACE, Reason.AMBIGUOUS):
            return reason
        seen = (
            verdict
            if verdict.frames >= self.liveness.min_frames
            else self._verdict(track.window, 1)
        )
        if reason == Reason.ACCEPTED or not seen.live:
            log.info("track %d: not live (%s)", track_id, seen.why or verdict.why)
            return Reason.PRESENTATION_ATTACK
        return reason

    def _lockout_reason(
        self, track_id: int, reason: Reason, person: str | None, now: float, *, locked: bool
    ) -> Reason:
        """LOCKED_OUT while a lockout runs; otherwise count the denial (or reset on an accept)."""
        if locked:
            # Not counted: the quiet period that resets the doubling starts at the
            # lockout's end anyway, and a lockout must not extend itself forever.
            log.info(
                "track %d: %s (would have been %s, candidate %s)",
                track_id,
                Reason.LOCKED_OUT,
                reason,
                person,
            )
            return Reason.LOCKED_OUT
        if reason == Reason.ACCEPTED:
            self._level = 0
        elif reason in COUNTED_DENIALS:
            self._count_denial(now)
        return reason

    def _decision(
        self,
        track_id: int,
        track: _Track,
        s: _Summary,
        now: float,
        *,
        reason: Reason,
        person: str | None,
        verdict: LivenessVerdict | None,
        drill: bool,
    ) -> Decision:
        top = s.top
        return self._new_decision(
            now,
            reason,
            person,
            best=top.best if top is not None else None,
            best_score=float(top.best_score) if top is not None else -1.0,
            second=top.second if top is not None else None,
            second_score=float(top.second_score) if top is not None else -1.0,
            frames_used=len(track.window),
            frames_matched=s.votes.get(person, 0) if person is not None else 0,
            track_id=track_id,
            quality=_median_quality(track.window),
            liveness=verdict.as_dict()
            if verdict is not None and self.liveness is not None
            else None,
            sources=tuple(o.source for o in track.window),
            drill=drill,
        )

    def _new_decision(
        self,
        now: float,
        reason: Reason,
        person: str | None,
        *,
        best: str | None = None,
        best_score: float = -1.0,
        second: str | None = None,
        second_score: float = -1.0,
        frames_used: int = 0,
        frames_matched: int = 0,
        track_id: int = -1,
        quality: dict[str, float] | None = None,
        liveness: dict[str, float | int | bool | None] | None = None,
        sources: tuple[str, ...] = (),
        drill: bool = False,
    ) -> Decision:
        """A Decision with this door's settings; the rest is what the attempt's frames said
        (a remote command has none: no score, no frames, track -1)."""
        return Decision(
            event_id=self._new_id(),
            at=now,
            unlock=reason in UNLOCKING,
            reason=reason,
            person=person,
            best=best,
            best_score=best_score,
            second=second,
            second_score=second_score,
            threshold=self.match.min_cosine_similarity,
            min_margin=self.match.min_margin,
            frames_used=frames_used,
            frames_matched=frames_matched,
            track_id=track_id,
            quality=quality or {},
            liveness=liveness,
            model_sha256=self.model_sha256,
            camera=self.camera,
            sources=sources,
            door=self.door,
            drill=drill,
        )

    def remote(self, now: float, *, sender: str, code_ok: bool) -> Decision:
        """A remote unlock command's decision.

        Refused, whatever the code, while the face lockout runs (LOCKED_OUT), once the day's
        wrong codes reached REMOTE_WRONG_PER_DAY (REMOTE_DAILY_CAP) and while the remote lockout
        runs (REMOTE_LOCKED_OUT); these refusals are not counted, and do not tell whether the
        code was right.  Otherwise a wrong code is WRONG_CODE, counted on the remote counter
        (not the face lockout's), and a right one REMOTE_UNLOCK, which resets the wrong codes in
        a row (not the day's count).
        """
        today = self._today()
        if self._remote_day != today:
            self._remote_day, self._remote_day_wrong = today, 0
        if now < self._locked_until:
            reason = Reason.LOCKED_OUT
        elif self._remote_day_wrong >= REMOTE_WRONG_PER_DAY:
            reason = Reason.REMOTE_DAILY_CAP
        elif now < self._remote_locked_until:
            reason = Reason.REMOTE_LOCKED_OUT
        elif not code_ok:
            reason = Reason.WRONG_CODE
            self._count_wrong_code(now)
        else:
            reason = Reason.REMOTE_UNLOCK
            self._remote_wrong = 0
        log.info("remote unlock from %s: %s", sender, reason)
        # A command with the right code is not an attempt at the door: a drill leaves it alone.
        return self._new_decision(now, reason, sender, drill=self.drilling())

    def _today(self) -> str:
        return datetime.date.fromtimestamp(self.wall()).isoformat()

    def _count_wrong_code(self, now: float) -> None:
        self._remote_wrong += 1
        self._remote_day_wrong += 1
        if self._remote_day_wrong >= REMOTE_WRONG_PER_DAY:
            log.warning(
                "%d wrong remote-unlock codes today: remote unlock is refused until tomorrow",
                self._remote_day_wrong,
            )
        elif self._remote_wrong % REMOTE_WRONG_IN_ROW == 0:
            runs = self._remote_wrong // REMOTE_WRONG_IN_ROW
            duration = min(REMOTE_LOCKOUT_S * 2.0 ** min(runs - 1, 64), REMOTE_LOCKOUT_MAX_S)
            self._remote_locked_until = now + duration
            log.warning(
                "%d wrong remote-unlock codes in a row: remote unlock is refused for %.0f s",
                self._remote_wrong,
                duration,
            )

    def remote_locked_out(self, now: float) -> bool:
        """True while remote unlock is refused whatever the code (its lockout or the daily cap)."""
        return now < self._remote_locked_until or (
            self._remote_day == self._today() and self._remote_day_wrong >= REMOTE_WRONG_PER_DAY
        )

    def remote_state(self, now: float, wall: float) -> dict[str, Any]:
        """The wrong remote codes' counters, in Unix time, for the state directory: a restart
        must not give a guesser a fresh count."""
        return {
            "schema": 1,
            "wrong_in_row": self._remote_wrong,
            "locked_until": _unix(self._remote_locked_until, now, wall),
            "day": self._remote_day,
            "day_wrong": self._remote_day_wrong,
        }

    def restore_remote(self, state: Any, now: float, wall: float) -> None:
        """Take back a saved remote_state; ValueError naming the field if it is not one."""
        if not isinstance(state, dict) or state.get("schema") != 1:
            raise ValueError("schema: expected 1")
        for key in ("wrong_in_row", "day_wrong"):
            value = state.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1 << 30:
                raise ValueError(f"{key}: expected a whole number >= 0, got {value!r}")
        until = _monotonic("locked_until", state.get("locked_until"), now, wall)
        day = state.get("day")
        if not isinstance(day, str) or len(day) > 10:
            raise ValueError(f"day: expected a date (YYYY-MM-DD), got {day!r}")
        self._remote_wrong = state["wrong_in_row"]
        self._remote_day_wrong = state["day_wrong"]
        self._remote_day = day
        self._remote_locked_until = until

    def remote_cap_reached(self) -> None:
        """Refuse every remote unlock until tomorrow (the saved counters could not be read)."""
        self._remote_day = self._today()
        self._remote_day_wrong = max(self._remote_day_wrong, REMOTE_WRONG_PER_DAY)

    def lockout_state(self, now: float, wall: float) -> dict[str, Any]:
        """The lockout's state in Unix time (the policy's clock is monotonic), for the state directory.

        A power cut must not reset an attacker's doubling lockout: the daemon
        saves this after every decision and restores it at start.
        """
        return {
            "schema": 1,
            "level": self._level,
            "last_denial": _unix(self._last_denial, now, wall),
            "locked_until": _unix(self._locked_until, now, wall),
            "denials": [_unix(t, now, wall) for t in self._denials],
        }

    def restore_lockout(self, state: Any, now: float, wall: float) -> None:
        """Take back a saved lockout_state; ValueError naming the field if it is not one."""
        if not isinstance(state, dict) or state.get("schema") != 1:
            raise ValueError("schema: expected 1")
        level = state.get("level")
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 64:
            raise ValueError(f"level: expected a whole number 0-64, got {level!r}")

        denials = state.get("denials")
        if not isinstance(denials, list) or len(denials) > 10_000:
            raise ValueError("denials: expected a list of Unix seconds")
        times = [_monotonic("denials", t, now, wall) for t in denials]
        self._level = level
        self._last_denial = _monotonic("last_denial", state.get("last_denial"), now, wall)
        self._locked_until = _monotonic("locked_until", state.get("locked_until"), now, wall)
        self._denials = deque(sorted(t for t in times if math.isfinite(t)))

    def _count_denial(self, now: float) -> None:
        """Record a counted denial; start a lockout when there are lockout_attempts in the window.

        The quiet period that resets the doubling is measured from the later of
        the last denial and the end of the last lockout -- else any lockout
        longer than the window would reset itself and never double.  A lockout
        clears the count: after it, the next lockout_attempts denials start the
        next (doubled) one.
        """
        p = self.policy
        if now - max(self._last_denial, self._locked_until) >= p.lockout_window_s:
            self._level = 0
        self._last_denial = now
        self._denials.append(now)
        while self._denials and now - self._denials[0] >= p.lockout_window_s:
            self._denials.popleft()
        if len(self._denials) >= p.lockout_attempts and p.lockout_s > 0 and p.lockout_max_s > 0:
            duration = min(p.lockout_s * 2.0 ** min(self._level, 64), p.lockout_max_s)
            self._locked_until = now + duration
            self._level += 1
            self._denials.clear()
            log.warning(
                "lockout #%d: %d denials within %.0f s; nobody is let in for %.0f s",
                self._level,
                p.lockout_attempts,
                p.lockout_window_s,
                duration,
            )


def _unix(t: float, now: float, wall: float) -> float | None:
    """A time on the policy's monotonic clock as Unix seconds for a state file (None: never)."""
    return None if not math.isfinite(t) else round(t + (wall - now), 3)


def _monotonic(key: str, value: Any, now: float, wall: float) -> float:
    """Unix seconds (null: never) from a state file back on the monotonic clock; ValueError
    naming ``key`` for anything else (a huge integer included)."""
    if value is None:
        return -math.inf
    t = as_finite(value)
    if t is None:
        raise ValueError(f"{key}: expected Unix seconds or null, got {value!r}")
    return t - wall + now


def _median_quality(window: list[Observation]) -> dict[str, float]:
    """Median of each Quality field over the window, rounded like Quality.as_dict; NaNs left out."""
    out: dict[str, float] = {}
    for name in _QUALITY_FIELDS:
        values = [float(getattr(o.quality, name)) for o in window]
        values = [v for v in values if math.isfinite(v)]
        if values:
            out[name] = round(float(statistics.median(values)), 3)
    return out
