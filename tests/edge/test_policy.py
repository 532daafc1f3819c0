from __future__ import annotations

import itertools
import logging
import math
import re
from dataclasses import replace

import numpy as np
import pytest

from edge.config import MatchConfig, PolicyConfig
from edge.policy import Observation, Policy
from edge.quality import Quality
from edge.types import Decision, Match, Reason

# Defaults: frames=5, min_matching_frames=3, min_face_px=80, min_sharpness=20,
# min_brightness=40, max pose 30 degrees, retry_after_s=3, lockout 5 in 60 s for 30 s.
PC = PolicyConfig()
MC = MatchConfig(
    min_cosine_similarity=0.6, min_margin=0.1
)  # fixed here: the tests count in these units

GOOD = Quality(
    face_px=120.0, sharpness=100.0, brightness=120.0, contrast=40.0, yaw=0.0, pitch=0.0, roll=0.0
)
DARK = replace(GOOD, brightness=10.0)
BLURRY = replace(GOOD, sharpness=5.0)
SMALL = replace(GOOD, face_px=50.0)

ALICE = Match("alice", 0.8, "bob", 0.3)  # a vote for alice
BOB = Match("bob", 0.8, "alice", 0.3)  # a vote for bob
WEAK = Match("alice", 0.4, "bob", 0.2)  # below the threshold: no vote
EMPTY = Match(None, -1.0)  # nobody enrolled


def make(match: MatchConfig = MC, **policy) -> Policy:
    counter = itertools.count(1)
    return Policy(
        replace(PC, **policy),
        match,
        model_sha256="cafe",
        camera="door",
        id_factory=lambda: f"ev{next(counter)}",
    )


def feed(
    p: Policy, frames, *, track: int = 1, t0: float = 0.0, dt: float = 0.1
) -> list[Decision | None]:
    """Observe (match, quality) pairs (or bare matches, GOOD quality) at t0, t0+dt, ..."""
    out = []
    for i, f in enumerate(frames):
        match, quality = f if isinstance(f, tuple) else (f, GOOD)
        t = t0 + i * dt
        out.append(p.observe(Observation(track, t, match, quality, f"t{track}f{i}@{t:g}"), t))
    return out


def only(results: list[Decision | None]) -> Decision:
    """The one decision, which must come from the last frame fed."""
    assert all(r is None for r in results[:-1]), results
    assert results[-1] is not None
    return results[-1]


# -- gates -------------------------------------------------------------------------


def test_gate_boundaries_pass_and_just_beyond_fails():
    p = make()
    edge = Quality(face_px=80, sharpness=20, brightness=40, contrast=0, yaw=-30, pitch=30, roll=-30)
    assert p.gate(edge) is None
    assert p.gate(GOOD) is None
    for name, value in [
        ("face_px", 79.9),
        ("sharpness", 19.9),
        ("yaw", 30.1),
        ("pitch", -30.1),
        ("roll", 30.1),
    ]:
        assert p.gate(replace(edge, **{name: value})) == Reason.LOW_QUALITY, name
    assert p.gate(replace(edge, brightness=39.9)) == Reason.TOO_DARK


def test_gate_reports_darkness_before_blur_and_nan_fails():
    p = make()
    assert p.gate(replace(DARK, sharpness=1.0, face_px=10.0)) == Reason.TOO_DARK
    assert p.gate(replace(GOOD, sharpness=math.nan)) == Reason.LOW_QUALITY
    assert p.gate(replace(GOOD, yaw=math.nan)) == Reason.LOW_QUALITY
    assert p.gate(replace(GOOD, brightness=math.nan)) == Reason.TOO_DARK


# -- accept and deny -----------------------------------------------------------------------


def test_accept_at_exactly_k_of_n():
    d = only(feed(make(), [ALICE, WEAK, ALICE, WEAK, ALICE]))
    assert d.unlock and d.reason == Reason.ACCEPTED and d.person == "alice"
    assert (d.frames_used, d.frames_matched) == (5, 3)


def test_accept_as_soon_as_k_votes_arrive():
    d = only(feed(make(), [ALICE, ALICE, ALICE]))
    assert d.unlock and (d.frames_used, d.frames_matched) == (3, 3)


def test_k_minus_one_votes_is_unknown_face_after_n_frames():
    d = only(feed(make(), [ALICE, ALICE, WEAK, WEAK, WEAK]))
    assert not d.unlock and d.reason == Reason.UNKNOWN_FACE
    assert d.person == "alice" and (d.frames_used, d.frames_matched) == (5, 2)


def test_one_frame_voting_for_someone_else_blocks_the_accept():
    d = only(
        feed(make(), [ALICE, BOB, ALICE, ALICE, ALICE])
    )  # 3 alice votes by frame 4: not enough
    assert not d.unlock and d.reason == Reason.AMBIGUOUS
    assert d.person == "alice" and d.frames_matched == 4


def test_score_exactly_at_the_threshold_counts_and_just_below_does_not():
    at = Match("alice", 0.6, "bob", 0.3)
    below = Match("alice", float(np.nextafter(0.6, -1.0)), "bob", 0.3)
    assert only(feed(make(frames=3, min_matching_frames=3), [at, at, at])).reason == Reason.ACCEPTED
    d = only(feed(make(frames=3, min_matching_frames=3), [below, below, below]))
    assert d.reason == Reason.UNKNOWN_FACE and d.frames_matched == 0


def test_margin_failure_is_ambiguous_and_exact_margin_or_no_runner_up_passes():
    close = Match("alice", 0.8, "bob", 0.75)
    d = only(feed(make(), [close] * 5))
    assert d.reason == Reason.AMBIGUOUS and not d.unlock
    assert (d.best, d.best_score, d.second, d.second_score) == ("alice", 0.8, "bob", 0.75)
    exact = Match("alice", 0.75, "bob", 0.5)  # margin 0.25, exact in binary
    assert only(feed(make(MatchConfig(0.6, 0.25)), [exact] * 3)).unlock
    alone = Match("alice", 0.61)  # nobody else enrolled: margin 2.0
    assert only(feed(make(MatchConfig(0.6, 1.0)), [alone] * 3)).unlock


def test_below_threshold_margin_failure_is_unknown_not_ambiguous():
    d = only(feed(make(), [Match("alice", 0.5, "bob", 0.48)] * 5))
    assert d.reason == Reason.UNKNOWN_FACE


@pytest.mark.parametrize(
    "qualities, reason",
    [
        ([DARK, DARK, DARK, GOOD, GOOD], Reason.TOO_DARK),
        ([BLURRY, SMALL, BLURRY, GOOD, GOOD], Reason.LOW_QUALITY),
        ([DARK, BLURRY, SMALL, GOOD, GOOD], Reason.LOW_QUALITY),  # dark is not the most common
        ([DARK, DARK, GOOD, GOOD, GOOD], Reason.UNKNOWN_FACE),  # 2 of 5 is not more than half
    ],
)
def test_quality_failures_deny_with_the_most_common_cause(qualities, reason):
    # Gated frames carry a strong alice match, which must not vote; the two good ones are WEAK.
    frames = [(ALICE if q is not GOOD else WEAK, q) for q in qualities]
    d = only(feed(make(), frames))
    assert d.reason == reason and not d.unlock and d.frames_used == 5


def test_gated_frames_never_vote_even_with_a_perfect_match():
    d = only(feed(make(), [(Match("alice", 0.99), BLURRY)] * 4 + [(ALICE, GOOD)]))
    assert d.reason == Reason.LOW_QUALITY and d.frames_matched == 1
    assert d.best_score == 0.8  # the only gated frame's match: failing frames are not "best"


def test_no_gallery():
    p = make(lockout_attempts=1)
    d = only(feed(p, [EMPTY] * 5))
    assert d.reason == Reason.NO_GALLERY and d.person is None and d.best is None and not d.unlock
    assert p.locked_out_until(1.0) is None  # a setup problem is not an attack


def test_frames_1_k_1_works():
    assert only(feed(make(frames=1, min_matching_frames=1), [ALICE])).unlock
    assert only(feed(make(frames=1, min_matching_frames=1), [WEAK])).reason == Reason.UNKNOWN_FACE


def test_k_above_frames_never_accepts(caplog):
    with caplog.at_level(logging.WARNING, logger="edge.policy"):
        p = make(frames=2, min_matching_frames=3)
    assert "nobody can ever be accepted" in caplog.text
    d = only(feed(p, [ALICE, ALICE]))
    assert d.reason == Reason.UNKNOWN_FACE and d.frames_matched == 2


def test_nan_scores_never_vote():
    d = only(
        feed(make(), [Match("alice", math.nan)] * 2 + [Match("alice", 0.9, "bob", math.nan)] * 3)
    )
    assert not d.unlock and d.frames_matched == 0


@pytest.mark.parametrize("frames, k", [(0, 1), (5, 0)])
def test_configs_that_need_no_votes_are_refused(frames, k):
    with pytest.raises(ValueError):
        Policy(replace(PC, frames=frames, min_matching_frames=k), MC)


# -- the Decision's fields ---------------------------------------------------------------


def test_decision_fields_medians_and_sources():
    p = make(frames=3, min_matching_frames=3)
    qs = [
        replace(GOOD, face_px=100, brightness=50.5, yaw=-10.0, sharpness=30.0),
        replace(GOOD, face_px=300, brightness=200.0, yaw=5.0, sharpness=1000.0),
        replace(GOOD, face_px=120, brightness=100.0, yaw=0.0, sharpness=21.1234),
    ]
    ms = [
        Match("alice", 0.7, "bob", 0.2),
        Match("alice", 0.9, "carol", 0.4),
        Match("alice", 0.8, "bob", 0.1),
    ]
    obs = [Observation(7, 10.0 + i, ms[i], qs[i], f"img{i}.jpg") for i in range(3)]
    assert p.observe(obs[0], 10.0) is None and p.observe(obs[1], 11.0) is None
    d = p.observe(obs[2], 12.5)
    assert d == Decision(
        event_id="ev1",
        at=12.5,
        unlock=True,
        reason=Reason.ACCEPTED,
        person="alice",
        best="alice",
        best_score=0.9,
        second="carol",
        second_score=0.4,
        threshold=0.6,
        min_margin=0.1,
        frames_used=3,
        frames_matched=3,
        track_id=7,
        quality={
            "face_px": 120.0,
            "sharpness": 30.0,
            "brightness": 100.0,
            "contrast": 40.0,
            "yaw": 0.0,
            "pitch": 0.0,
            "roll": 0.0,
            "landmarks": 1.0,
        },
        liveness=None,
        model_sha256="cafe",
        camera="door",
        sources=("img0.jpg", "img1.jpg", "img2.jpg"),
    )


def test_medians_are_rounded_and_even_windows_average_the_middle_pair():
    frames = [(WEAK, replace(GOOD, sharpness=s)) for s in (20.00011, 30.0)]
    d = only(feed(make(frames=2, min_matching_frames=3), frames))
    assert d.quality["sharpness"] == 25.0
    d = only(feed(make(frames=1, min_matching_frames=1), [(ALICE, replace(GOOD, roll=1.23456))]))
    assert d.quality["roll"] == 1.235


def test_no_match_at_all_gives_minus_one_scores():
    d = only(feed(make(), [(None, DARK)] * 5))
    assert (d.person, d.best, d.best_score, d.second, d.second_score) == (
        None,
        None,
        -1.0,
        None,
        -1.0,
    )


# -- decided tracks and end_track ----------------------------------------------------------


def test_denied_track_is_ignored_until_retry_after_s_then_starts_fresh():
    p = make()  # retry_after_s=3
    d = only(feed(p, [WEAK] * 5))  # decided at t=0.4
    assert d.reason == Reason.UNKNOWN_FACE
    assert feed(p, [ALICE] * 5, t0=0.5, dt=0.5) == [None] * 5  # up to t=2.5: ignored
    assert p.observe(Observation(1, 3.39, ALICE, GOOD, "early"), 3.39) is None
    d = only(feed(p, [ALICE] * 3, t0=3.5))
    assert d.unlock and d.sources == ("t1f0@3.5", "t1f1@3.6", "t1f2@3.7")


def test_accepted_track_never_retriggers():
    p = make()
    assert only(feed(p, [ALICE] * 3)).unlock
    assert feed(p, [ALICE] * 10, t0=1.0, dt=10.0) == [None] * 10
    assert p.end_track(1, 200.0) is None


def test_other_tracks_decide_independently():
    p = make()
    feed(p, [ALICE, ALICE], track=1)
    assert only(feed(p, [BOB] * 3, track=2)).person == "bob"
    assert only(feed(p, [ALICE], track=1, t0=1.0)).person == "alice"


def test_end_track_denies_an_undecided_attempt_with_its_window_reason():
    p = make()
    feed(p, [ALICE, (ALICE, BLURRY), WEAK])
    d = p.end_track(1, 5.0)
    assert (
        d is not None and d.reason == Reason.UNKNOWN_FACE and not d.unlock
    )  # 1 of 3 failed: not more than half
    assert (d.at, d.frames_used, d.frames_matched, d.person) == (5.0, 3, 1, "alice")
    assert p.end_track(1, 5.0) is None  # forgotten

    feed(p, [(ALICE, DARK), (ALICE, DARK), (ALICE, BLURRY)], track=2)
    assert p.end_track(2, 6.0).reason == Reason.TOO_DARK
    feed(p, [(None, BLURRY)] * 3, track=3)
    assert p.end_track(3, 6.0).reason == Reason.LOW_QUALITY
    feed(p, [ALICE, BOB, WEAK], track=4)
    assert p.end_track(4, 6.0).reason == Reason.AMBIGUOUS


def test_a_glimpse_shorter_than_k_frames_is_not_an_attempt():
    p = make()
    feed(p, [ALICE, ALICE])  # two votes, but k = 3 could never be reached
    assert p.end_track(1, 5.0) is None
    feed(p, [WEAK], track=2)
    assert p.end_track(2, 5.0) is None


def test_end_track_of_decided_or_unknown_tracks_is_none_and_the_id_starts_fresh():
    p = make()
    only(feed(p, [WEAK] * 5))
    assert p.end_track(1, 1.0) is None
    assert p.end_track(99, 1.0) is None
    # Same id again (a tracker restart): not "decided" any more.
    assert only(feed(p, [ALICE] * 3, t0=1.1)).unlock


# -- lockout ---------------------------------------------------------------------------


def deny(p: Policy, t: float, match: Match = WEAK, quality: Quality = GOOD) -> Decision:
    """One single-frame attempt on a fresh track (policy built with frames=1)."""
    d = p.observe(Observation(int(t * 1000), t, match, quality, ""), t)
    assert d is not None
    return d


def test_lockout_after_n_denials_overrides_a_would_be_accept(caplog):
    p = make(
        frames=1, min_matching_frames=1, lockout_attempts=3, lockout_window_s=60.0, lockout_s=10.0
    )
    with caplog.at_level(logging.WARNING, logger="edge.policy"):
        assert [deny(p, t).reason for t in (0.0, 1.0)] == [Reason.UNKNOWN_FACE] * 2
        assert p.locked_out_until(1.0) is None
        assert (
            deny(p, 2.0).reason == Reason.UNKNOWN_FACE
        )  # the third denial itself, then the lockout
    assert p.locked_out_until(2.0) == 12.0 and "lockout" in caplog.text
    d = deny(p, 5.0, ALICE)
    assert not d.unlock and d.reason == Reason.LOCKED_OUT
    assert (d.person, d.best, d.best_score, d.frames_matched) == ("alice", "alice", 0.8, 1)
    assert deny(p, 6.0, EMPTY).reason == Reason.LOCKED_OUT  # every decision
    assert p.locked_out_until(11.99) == 12.0 and p.locked_out_until(12.0) is None
    assert deny(p, 12.0, ALICE).unlock


def test_quality_and_no_gallery_denials_do_not_count_toward_lockout():
    p = make(frames=1, min_matching_frames=1, lockout_attempts=2)
    for i in range(5):
        deny(p, float(i), ALICE, DARK)
        deny(p, i + 0.5, EMPTY)
    assert p.locked_out_until(5.0) is None
    assert deny(p, 6.0, ALICE).unlock


def test_ambiguous_denials_count_and_old_denials_slide_out():
    p = make(
        frames=1, min_matching_frames=1, lockout_attempts=2, lockout_window_s=60.0, lockout_s=10.0
    )
    close = Match("alice", 0.8, "bob", 0.79)
    assert deny(p, 0.0, close).reason == Reason.AMBIGUOUS
    assert (
        deny(p, 60.0, close).reason == Reason.AMBIGUOUS
    )  # the first is exactly a window old: gone
    assert p.locked_out_until(60.0) is None
    deny(p, 119.0)
    assert p.locked_out_until(119.0) == 129.0


def test_lockout_doubles_is_capped_and_resets_after_a_quiet_window():
    p = make(
        frames=1,
        min_matching_frames=1,
        lockout_attempts=2,
        lockout_window_s=60.0,
        lockout_s=10.0,
        lockout_max_s=25.0,
    )
    deny(p, 0.0), deny(p, 1.0)
    assert p.locked_out_until(1.0) == 11.0
    deny(p, 12.0), deny(p, 13.0)
    assert p.locked_out_until(13.0) == 33.0  # 20 s
    deny(p, 34.0), deny(p, 35.0)
    assert p.locked_out_until(35.0) == 60.0  # 40 s, capped at 25
    # Quiet from the end of the lockout (60) for a full window (60 s): back to 10 s.
    deny(p, 120.0), deny(p, 121.0)
    assert p.locked_out_until(121.0) == 131.0


def test_a_lockout_longer_than_the_window_still_doubles():
    # The quiet period starts when the lockout ends (101), not at the last denial (1).
    p = make(
        frames=1, min_matching_frames=1, lockout_attempts=2, lockout_window_s=60.0, lockout_s=100.0
    )
    deny(p, 0.0), deny(p, 1.0)
    assert p.locked_out_until(1.0) == 101.0
    deny(p, 120.0), deny(p, 121.0)
    assert p.locked_out_until(121.0) == 321.0


def test_zero_lockout_s_disables_the_lockout(caplog):
    p = make(frames=1, min_matching_frames=1, lockout_attempts=1, lockout_s=0.0)
    with caplog.at_level(logging.WARNING, logger="edge.policy"):
        deny(p, 0.0)
    assert p.locked_out_until(0.0) is None and "lockout" not in caplog.text  # no false alarm
    assert deny(p, 0.5, ALICE).unlock


def test_an_accept_resets_the_doubling():
    p = make(
        frames=1, min_matching_frames=1, lockout_attempts=2, lockout_window_s=60.0, lockout_s=10.0
    )
    deny(p, 0.0), deny(p, 1.0)
    assert p.locked_out_until(1.0) == 11.0
    assert deny(p, 12.0, ALICE).unlock
    deny(p, 13.0), deny(p, 14.0)
    assert p.locked_out_until(14.0) == 24.0  # 10 s again, not 20


# -- randomized property -------------------------------------------------------------------


def _passes(q: Quality, pc: PolicyConfig) -> bool:
    return bool(
        q.face_px >= pc.min_face_px
        and q.sharpness >= pc.min_sharpness
        and q.brightness >= pc.min_brightness
        and abs(q.yaw) <= pc.max_yaw_deg
        and abs(q.pitch) <= pc.max_pitch_deg
        and abs(q.roll) <= pc.max_roll_deg
    )


def _votes_for(o: Observation, pc: PolicyConfig, mc: MatchConfig) -> str | None:
    m = o.match
    if not _passes(o.quality, pc) or m is None or m.best is None:
        return None
    margin = m.best_score - m.second_score if m.second is not None else 2.0
    return m.best if m.best_score >= mc.min_cosine_similarity and margin >= mc.min_margin else None


RANDOM_PEOPLE = ["alice", "bob", "carol"]
# Each quality figure at, just past and well inside its gate (PC's limits), and NaN.
EDGE_VALUES = {
    "face_px": [79.0, 80.0, 200.0],
    "sharpness": [19.99, 20.0, 300.0],
    "brightness": [39.99, 40.0, 150.0],
    "yaw": [-30.01, -30.0, 0.0, 30.0, 30.01, math.nan],
    "pitch": [-30.0, 0.0, 30.01],
    "roll": [-30.01, 0.0, 30.0],
}


class RandomStream:
    """A random policy fed one random stream of frames, every decision it makes checked."""

    def __init__(self, draws: list[float]) -> None:
        # One numpy draw per stream, consumed in Python: per-call numpy is slow.
        self._draws = iter(draws)
        self.accepts = self.denials = 0
        frames = self.pick(range(1, 7))
        self.pc = replace(
            PC,
            frames=frames,
            min_matching_frames=self.pick(range(1, frames + 2)),
            retry_after_s=self.pick([0.0, 0.5]),
            lockout_attempts=self.pick(range(1, 6)),
            lockout_s=self.pick([0.0, 1.0]),
        )
        self.mc = MatchConfig(self.pick([0.5, 0.6]), self.pick([0.0, 0.1, 0.25]))
        self.policy = Policy(self.pc, self.mc)
        self.seen: dict[str, Observation] = {}
        self.used: set[str] = set()

    def rand(self) -> float:
        return next(self._draws)

    def pick(self, seq):
        return seq[int(self.rand() * len(seq))]

    def run(self) -> None:
        t = 0.0
        for i in range(self.pick(range(1, 30))):
            t += self.pick([0.0, 0.1, 0.3])
            tid = self.pick([1, 2, 3])
            if self.rand() < 0.05:
                self.check(self.policy.end_track(tid, t), None)
                continue
            q = self.quality()
            o = Observation(tid, t, self.match(), q, f"s{i}")
            self.seen[o.source] = o
            self.check(self.policy.observe(o, t), o)

    def quality(self) -> Quality:
        if self.rand() < 0.7:
            return replace(GOOD, **{k: v[1] for k, v in EDGE_VALUES.items() if self.rand() < 0.3})
        return replace(GOOD, **{k: self.pick(v) for k, v in EDGE_VALUES.items()})

    def match(self) -> Match | None:
        if not self.rand() < 0.9:
            return None
        thr, margin = self.mc.min_cosine_similarity, self.mc.min_margin
        best = self.pick(RANDOM_PEOPLE) if self.rand() < 0.97 else None
        score = self.pick(
            [thr - 0.05, float(np.nextafter(thr, -1.0)), thr, thr + 0.1, thr + 0.3, math.nan]
        )
        if self.rand() < 0.3:
            return Match(best, score)
        other = self.pick(RANDOM_PEOPLE)
        gap = self.pick([0.0, margin / 2, margin, margin + 0.05, 0.5])
        return Match(best, score, other if other != best else "dave", score - gap)

    def check(self, d: Decision | None, last: Observation | None) -> None:
        if d is None:
            return
        assert d.unlock == (d.reason == Reason.ACCEPTED)
        assert len(d.sources) == d.frames_used <= self.pc.frames
        window = [self.seen[s] for s in d.sources]
        assert all(o.track_id == d.track_id for o in window)
        assert self.used.isdisjoint(d.sources)  # no frame is counted in two attempts
        self.used.update(d.sources)
        if not d.unlock:
            self.denials += 1
            return
        self.accepts += 1
        assert last is not None and d.sources[-1] == last.source  # end_track never accepts
        votes = [_votes_for(o, self.pc, self.mc) for o in window]
        assert votes.count(d.person) >= self.pc.min_matching_frames
        assert all(v in (None, d.person) for v in votes)
        assert self.policy.locked_out_until(d.at) is None


def test_random_streams_never_accept_without_k_clean_votes():
    rng = np.random.default_rng(20240611)
    accepts = denials = 0
    for _ in range(3000):
        stream = RandomStream(rng.random(1000).tolist())
        stream.run()
        accepts += stream.accepts
        denials += stream.denials
    assert accepts > 300 and denials > 300, (accepts, denials)


def test_a_near_miss_for_someone_else_blocks_the_accept():
    # bob above the threshold but without the margin: no vote, yet doubt about who this is
    near_bob = Match("bob", 0.7, "alice", 0.65)
    d = only(feed(make(), [ALICE, near_bob, ALICE, ALICE, ALICE]))
    assert not d.unlock and d.reason == Reason.AMBIGUOUS


def test_settled_tracks_are_skipped_until_retry():
    p = make()
    feed(p, [ALICE, ALICE, ALICE])
    assert p.settled(1, 0.5)  # accepted: settled for good
    assert p.settled(1, 100.0)
    q = make()
    feed(q, [WEAK] * 5)
    assert q.settled(1, 0.5) and not q.settled(1, 0.4 + PC.retry_after_s + 0.01)
    assert not q.settled(2, 0.0)


# -- liveness --------------------------------------------------------------------------------

from edge.config import LivenessConfig  # noqa: E402
from edge.liveness import LivenessSample  # noqa: E402

LC = LivenessConfig(min_live_probability=0.5, min_frames=5, minifasnet=False)
LIVE_S = LivenessSample((("texture", 2.0),))  # logits
PHOTO_S = LivenessSample((("texture", -2.0),))


def make_live(live: LivenessConfig = LC, **policy) -> Policy:
    counter = itertools.count(1)
    return Policy(replace(PC, **policy), MC, liveness=live, id_factory=lambda: f"ev{next(counter)}")


def feed_live(p: Policy, frames, *, track: int = 1, t0: float = 0.0) -> list[Decision | None]:
    """Observe (match, liveness sample) pairs, GOOD quality, 0.1 s apart."""
    return [
        p.observe(Observation(track, t0 + i * 0.1, m, GOOD, f"f{i}", s), t0 + i * 0.1)
        for i, (m, s) in enumerate(frames)
    ]


def test_with_liveness_an_accept_waits_for_min_frames_and_logs_the_verdict():
    p = make_live()
    d = only(feed_live(p, [(ALICE, LIVE_S)] * 5))
    assert d.unlock and d.reason == Reason.ACCEPTED and d.frames_used == 5
    assert d.liveness == {
        "live": True,
        "refused_by": None,
        "live_probability": 0.8808,
        "min_live_probability": 0.5,
        "frames": 5,
        "cues": {"texture": {"live_probability": 0.8808, "min_live_probability": 0.5, "frames": 5}},
        "planar_pairs": 0,
    }


def test_a_photo_of_an_enrolled_person_is_a_presentation_attack():
    p = make_live()
    d = only(feed_live(p, [(ALICE, PHOTO_S)] * 5))
    assert not d.unlock and d.reason == Reason.PRESENTATION_ATTACK and d.person == "alice"
    assert d.liveness["live"] is False and d.liveness["live_probability"] == 0.1192
    assert d.liveness["refused_by"] == "texture"


def test_the_cross_domain_cue_refuses_what_the_texture_cue_would_let_in():
    both = replace(LC, minifasnet=True, minifasnet_min_live_probability=0.5)
    p = make_live(both)
    frame = LivenessSample((("texture", 4.0), ("minifasnet", -3.0)))
    d = only(feed_live(p, [(ALICE, frame)] * 5))
    assert d.reason == Reason.PRESENTATION_ATTACK and d.liveness["refused_by"] == "minifasnet"
    assert set(d.liveness["cues"]) == {"texture", "minifasnet"}


def test_one_rigid_planar_pair_refuses_an_otherwise_live_attempt():
    p = make_live()
    frames = [(ALICE, LIVE_S)] * 4 + [
        (ALICE, LivenessSample((("texture", 2.0),), (("planar_pairs", True),)))
    ]
    d = only(feed_live(p, frames))
    assert d.reason == Reason.PRESENTATION_ATTACK and d.liveness["planar_pairs"] == 1
    assert d.liveness["refused_by"] == "planar_motion"


def test_a_missing_liveness_sample_can_never_help_an_accept():
    p = make_live()
    d = only(feed_live(p, [(ALICE, LIVE_S)] * 4 + [(ALICE, None)]))
    assert not d.unlock and d.reason == Reason.PRESENTATION_ATTACK and d.liveness["frames"] == 4


def test_unknown_face_that_is_not_live_is_logged_as_an_attack_but_quality_keeps_its_reason():
    p = make_live()
    assert only(feed_live(p, [(WEAK, PHOTO_S)] * 5)).reason == Reason.PRESENTATION_ATTACK
    p = make_live()
    dark = [p.observe(Observation(1, i * 0.1, ALICE, DARK, "", PHOTO_S), i * 0.1) for i in range(5)]
    assert only(dark).reason == Reason.TOO_DARK
    p = make_live()
    assert only(feed_live(p, [(WEAK, LIVE_S)] * 5)).reason == Reason.UNKNOWN_FACE


def test_presentation_attacks_count_towards_the_lockout():
    p = make_live(lockout_attempts=2, retry_after_s=0.0)
    feed_live(p, [(ALICE, PHOTO_S)] * 5, track=1)
    feed_live(p, [(ALICE, PHOTO_S)] * 5, track=2, t0=1.0)
    d = only(feed_live(p, [(ALICE, LIVE_S)] * 5, track=3, t0=2.0))
    assert d.reason == Reason.LOCKED_OUT and not d.unlock


def test_liveness_off_accepts_at_k_frames_and_logs_no_liveness():
    p = make_live(LivenessConfig(enabled=False))
    d = only(feed_live(p, [(ALICE, PHOTO_S)] * 3))
    assert d.unlock and d.liveness is None


def test_liveness_frames_beyond_the_window_are_refused():
    with pytest.raises(ValueError, match=re.escape("liveness.min_frames")):
        make_live(LivenessConfig(min_frames=6))


def test_a_track_that_leaves_before_liveness_was_judged_is_judged_on_the_frames_it_had():
    p = make_live()
    feed_live(p, [(ALICE, PHOTO_S)] * 3)  # a photo swung out of view after three frames
    d = p.end_track(1, 5.0)
    assert (
        d is not None
        and not d.unlock
        and d.reason == Reason.PRESENTATION_ATTACK
        and d.liveness["frames"] == 3
    )
    p = make_live()
    feed_live(p, [(WEAK, LIVE_S)] * 3)  # a live stranger who walked off
    d = p.end_track(1, 5.0)
    assert d is not None and d.reason == Reason.UNKNOWN_FACE and d.liveness["live"] is False


def test_a_stand_in_crop_never_votes():
    """A frame whose landmark pass missed the face has a stand-in crop: it may not decide anything."""
    p = make()
    assert p.gate(replace(GOOD, landmarks=0.0)) == Reason.LOW_QUALITY
    d = only(feed(p, [(ALICE, replace(GOOD, landmarks=0.0))] * 5))
    assert not d.unlock and d.frames_matched == 0


def test_the_lockout_survives_a_restart_in_unix_time():
    """Saved as Unix time (the policy's clock is monotonic and restarts at boot), restored into a new policy."""
    p = make(
        frames=1, min_matching_frames=1, lockout_attempts=2, lockout_window_s=60.0, lockout_s=30.0
    )
    deny(p, 100.0), deny(p, 101.0)
    assert p.locked_out_until(101.0) == 131.0
    state = p.lockout_state(now=101.0, wall=1_700_000_000.0)
    assert state["level"] == 1 and state["locked_until"] == pytest.approx(1_700_000_030.0)
    fresh = make(
        frames=1, min_matching_frames=1, lockout_attempts=2, lockout_window_s=60.0, lockout_s=30.0
    )
    fresh.restore_lockout(
        state, now=5.0, wall=1_700_000_010.0
    )  # 10 s later, after a reboot: monotonic restarted
    assert fresh.locked_out_until(5.0) == pytest.approx(25.0)  # 20 s of the lockout left
    assert deny(fresh, 6.0, ALICE).reason == Reason.LOCKED_OUT
    deny(fresh, 30.0), deny(fresh, 31.0)  # the next lockout doubles: the level came back too
    assert fresh.locked_out_until(31.0) == pytest.approx(91.0)
    for bad in (
        {"schema": 2},
        {"schema": 1, "level": -1, "denials": []},
        {"schema": 1, "level": 0, "denials": ["x"]},
        {"schema": 1, "level": 0, "denials": [], "locked_until": "inf"},
    ):
        with pytest.raises(ValueError):
            make().restore_lockout(bad, now=0.0, wall=0.0)


# -- attack drill ------------------------------------------------------------------------------

from edge.types import UNLOCKING  # noqa: E402

T0 = 1_700_000_000.0  # the wall clock, Unix seconds


def make_drill(wall: list[float], **policy) -> Policy:
    """A policy on the wall clock ``wall[0]`` with a five-minute attack drill running."""
    counter = itertools.count(1)
    p = Policy(
        replace(PC, **policy),
        MC,
        wall=lambda: wall[0],
        id_factory=lambda: f"ev{next(counter)}",
    )
    p.drill_until = wall[0] + 300.0
    return p


def test_during_a_drill_a_would_be_accept_is_attack_drill_and_never_unlocks():
    assert Reason.ATTACK_DRILL not in UNLOCKING
    wall = [T0]
    p = make_drill(wall)
    d = only(feed(p, [ALICE] * 3))
    assert (d.reason, d.unlock, d.drill, d.person, d.frames_matched) == (
        Reason.ATTACK_DRILL,
        False,
        True,
        "alice",
        3,
    )
    assert not p.settled(1, 0.2 + PC.retry_after_s)  # not accepted: the track may try again
    wall[0] = T0 + 299.9
    assert only(feed(p, [ALICE] * 3, track=2)).reason == Reason.ATTACK_DRILL
    wall[0] = T0 + 300.0  # the drill is over: let in again, not marked
    d = only(feed(p, [ALICE] * 3, track=3))
    assert d.unlock and d.reason == Reason.ACCEPTED and not d.drill


def test_during_a_drill_every_other_reason_is_kept_and_marked():
    wall = [T0]
    p = make_drill(wall)
    unknown = only(feed(p, [WEAK] * 5, track=1))
    dark = only(feed(p, [(ALICE, DARK)] * 5, track=2))
    ambiguous = only(feed(p, [ALICE, ALICE, BOB, ALICE, ALICE], track=3))
    assert [(d.reason, d.drill) for d in (unknown, dark, ambiguous)] == [
        (Reason.UNKNOWN_FACE, True),
        (Reason.TOO_DARK, True),
        (Reason.AMBIGUOUS, True),
    ]
    p.face_unlock = False  # switched off: refused as before, whatever the drill
    assert only(feed(p, [ALICE] * 3, track=4)).reason == Reason.FACE_UNLOCK_OFF
    # A remote command with the right code is not an attempt at the door: kept, and marked.
    remote = p.remote(1.0, sender="alice", code_ok=True)
    assert remote.reason == Reason.REMOTE_UNLOCK and remote.unlock and remote.drill
    p.drill_until = None
    assert not only(feed(p, [WEAK] * 5, track=5)).drill
    p.drill_until = math.nan  # never a drill by accident
    assert not p.drilling()


def test_drill_refusals_do_not_count_towards_the_lockout_but_denials_during_it_do():
    wall = [T0]
    p = make_drill(wall, frames=1, min_matching_frames=1, lockout_attempts=2)
    for t in range(5):
        assert deny(p, float(t), ALICE).reason == Reason.ATTACK_DRILL
    assert p.locked_out_until(5.0) is None
    deny(p, 6.0), deny(p, 7.0)  # two strangers: the lockout works as ever
    assert deny(p, 8.0, ALICE).reason == Reason.LOCKED_OUT


# --------------------------------------------------------------------------- wrong remote codes


def remote_policy(wall: list[float], **policy) -> Policy:
    """A policy on the wall clock ``wall[0]``, no drill."""
    p = make_drill(wall, **policy)
    p.drill_until = None
    return p


def test_wrong_remote_codes_have_their_own_doubling_lockout_that_only_a_right_code_resets():
    from edge.policy import REMOTE_LOCKOUT_S, REMOTE_WRONG_IN_ROW

    wall = [T0]
    p = remote_policy(wall, lockout_attempts=2, lockout_window_s=60.0)
    for t in range(REMOTE_WRONG_IN_ROW):
        assert p.remote(float(t), sender="x via ha", code_ok=False).reason == Reason.WRONG_CODE
    assert p.locked_out_until(10.0) is None  # faces are not locked out by wrong codes
    t = float(REMOTE_WRONG_IN_ROW)
    right = p.remote(t, sender="alice via ha", code_ok=True)  # even the right code, for now
    assert right.reason == Reason.REMOTE_LOCKED_OUT and not right.unlock
    assert right.person == "alice via ha"
    # Time does not reset the count: after a quiet hour, one more wrong code is not a fresh start.
    t += REMOTE_LOCKOUT_S + 3600.0
    wall[0] += 3600.0
    for i in range(REMOTE_WRONG_IN_ROW):
        assert p.remote(t + i, sender="x", code_ok=False).reason == Reason.WRONG_CODE
    t += REMOTE_WRONG_IN_ROW - 1
    assert p.remote(t + REMOTE_LOCKOUT_S + 1, sender="x", code_ok=True).reason == (
        Reason.REMOTE_LOCKED_OUT  # the second run's lockout is twice the first
    )
    t += 2 * REMOTE_LOCKOUT_S + 1
    assert p.remote(t, sender="alice", code_ok=True).reason == Reason.REMOTE_UNLOCK
    # The right code reset the run: a wrong one now is the first of a new run.
    assert p.remote(t + 1, sender="x", code_ok=False).reason == Reason.WRONG_CODE
    assert p.remote(t + 2, sender="alice", code_ok=True).reason == Reason.REMOTE_UNLOCK


def test_a_day_of_wrong_remote_codes_refuses_remote_unlock_until_the_next_day():
    import datetime

    from edge.policy import REMOTE_LOCKOUT_MAX_S, REMOTE_WRONG_PER_DAY

    morning = datetime.datetime(2024, 3, 1, 0, 30).timestamp()  # local time, like the policy
    wall = [morning]
    p = remote_policy(wall)
    t, reasons = 0.0, []
    while len(reasons) < REMOTE_WRONG_PER_DAY:  # wait out every remote lockout
        d = p.remote(t, sender="x", code_ok=False)
        if d.reason == Reason.WRONG_CODE:
            reasons.append(d.reason)
        t += REMOTE_LOCKOUT_MAX_S / 100
    assert p.remote_locked_out(t)
    capped = p.remote(t + REMOTE_LOCKOUT_MAX_S, sender="alice", code_ok=True)
    assert capped.reason == Reason.REMOTE_DAILY_CAP and not capped.unlock
    assert p.remote_state(t, morning)["day_wrong"] == REMOTE_WRONG_PER_DAY
    wall[0] = datetime.datetime(2024, 3, 1, 23, 59).timestamp()
    assert p.remote(t + 1, sender="alice", code_ok=True).reason == Reason.REMOTE_DAILY_CAP
    wall[0] = datetime.datetime(2024, 3, 2, 0, 1).timestamp()  # the next calendar day
    ok = p.remote(t + 2 * REMOTE_LOCKOUT_MAX_S, sender="alice", code_ok=True)
    assert ok.reason == Reason.REMOTE_UNLOCK and ok.unlock


def test_remote_counters_survive_a_restart_and_bad_state_is_refused():
    from edge.policy import REMOTE_WRONG_IN_ROW

    wall = [T0]
    p = remote_policy(wall)
    for t in range(REMOTE_WRONG_IN_ROW):
        p.remote(float(t), sender="x", code_ok=False)
    state = p.remote_state(10.0, T0 + 10.0)
    assert state["wrong_in_row"] == REMOTE_WRONG_IN_ROW and state["locked_until"] is not None
    again = remote_policy(wall)
    again.restore_remote(state, 500.0, T0 + 10.0)  # a new monotonic clock
    assert again.remote(501.0, sender="a", code_ok=True).reason == Reason.REMOTE_LOCKED_OUT
    for bad in ({"schema": 2}, {**state, "wrong_in_row": -1}, {**state, "locked_until": "x"}):
        with pytest.raises(ValueError):
            again.restore_remote(bad, 0.0, T0)
    again.remote_cap_reached()  # what an unreadable file means
    assert again.remote(1e6, sender="a", code_ok=True).reason == Reason.REMOTE_DAILY_CAP


def test_remote_refusals_are_events_and_not_unlocking():
    from edge.bridge.mqtt import EVENT_TYPES, REASON_EVENTS
    from edge.types import REMOTE, UNLOCKING

    for reason in (Reason.REMOTE_LOCKED_OUT, Reason.REMOTE_DAILY_CAP):
        assert reason not in UNLOCKING and reason in REMOTE
        assert REASON_EVENTS[reason] in EVENT_TYPES
