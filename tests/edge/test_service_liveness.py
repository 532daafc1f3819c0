"""The daemon with liveness on: a printed photo of an enrolled person never moves the relay."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fakes import FakeClock
from gpiozero.pins.mock import MockFactory

from edge.camera.replay import ReplayCamera
from edge.decisions import log_files, read_records
from edge.liveness import REFUSERS, operating_points
from edge.types import Reason
from tools import nuaa, replay


@pytest.fixture
def door(config):
    """The shipped embedder and threshold (the demo's too), lockout out of the way."""
    return replace(config, policy=replace(config.policy, lockout_attempts=100))


def test_photo_of_an_enrolled_person_is_refused_and_the_person_is_let_in(door, samples, tmp_path):
    people, attempts = nuaa.split(samples / "nuaa", ["0009"])
    chosen = [a for a in attempts if a.subject == "0009"]
    assert {a.label for a in chosen} == {"subject0009", "attack"}
    result = replay.run(door, people, chosen, tmp_path)
    o = replay.score(result)
    assert o.attack and o.attack_accepted == 0
    assert o.genuine and o.genuine_accepted == o.genuine
    assert result.relay_on_events == o.genuine_accepted
    for attempt, decisions in result.labelled:
        assert decisions, attempt
        for r in decisions:
            live = r["liveness"]
            assert set(live) == {
                "live",
                "refused_by",
                "live_probability",
                "min_live_probability",
                "frames",
                "cues",
                "planar_pairs",
            }
            points = operating_points(door.liveness)
            assert {k: c["min_live_probability"] for k, c in live["cues"].items()} == points
            if attempt.label == "attack":
                assert (
                    r["decision"] == "deny"
                    and r["reason"] == Reason.PRESENTATION_ATTACK
                    and live["live"] is False
                    and live["refused_by"] in REFUSERS
                )
            else:
                assert (
                    r["decision"] == "unlock"
                    and live["live"] is True
                    and live["frames"] == door.liveness.min_frames
                )
    checker = result.service.liveness
    assert checker is not None and checker.calls >= sum(len(a.frames) for a in chosen) // 2


def test_the_same_photo_opens_the_door_with_liveness_off(door, samples, tmp_path):
    """The check above is what stops it: with liveness off, the same replay lets the photo in."""
    people, attempts = nuaa.split(samples / "nuaa", ["0009"])
    chosen = [a for a in attempts if a.label == "attack"]
    off = replace(door, liveness=replace(door.liveness, enabled=False))
    o = replay.score(replay.run(off, people, chosen, tmp_path))
    assert o.attack_accepted >= 1
    assert all(
        r["liveness"] is None for r in read_records(log_files(str(tmp_path / "decisions.jsonl")))
    )


class BrokenChecker:
    calls = 0
    seconds = 0.0

    def sample(self, *a):
        raise RuntimeError("liveness model exploded")

    def forget(self, tid):
        pass


def test_a_failing_liveness_check_leaves_the_door_locked(door, samples, tmp_path, monkeypatch):
    from edge import service as service_mod

    people, attempts = nuaa.split(samples / "nuaa", ["0009"])
    genuine = [a for a in attempts if a.label == "subject0009"]
    cfg = replay.replay_config(door, tmp_path)
    replay.enroll_all(cfg, people)
    monkeypatch.setattr(service_mod, "build_liveness", lambda config: BrokenChecker())
    clock = FakeClock()
    frames = [f for a in genuine for f in a.frames]
    pins = MockFactory()
    svc = service_mod.build_service(
        cfg,
        pin_factory=pins,
        camera=ReplayCamera(frames, fps=10, clock=clock, sleep=clock.sleep),
        clock=clock,
    )
    svc.run()
    assert svc.stats.unlocks == 0 and svc.stats.errors >= 1
    assert not any(s.state for s in pins.pin(cfg.lock.relay_pin).states)
    assert not Path(cfg.log.decisions).exists() or not any(
        r["decision"] == "unlock" for r in read_records(log_files(cfg.log.decisions))
    )


def test_a_cue_that_raises_leaves_the_door_locked_whatever_the_other_cues_say(
    door, samples, tmp_path, monkeypatch
):
    """The texture cue and planar motion work; only the MiniFASNet cue fails, on every frame."""
    from edge import service as service_mod
    from edge.liveness import minifasnet

    def exploding(config):
        def cue(frame, face):
            raise RuntimeError("MiniFASNet exploded")

        return cue

    monkeypatch.setattr(minifasnet, "from_config", exploding)
    people, attempts = nuaa.split(samples / "nuaa", ["0009"])
    genuine = [a for a in attempts if a.label == "subject0009"]
    cfg = replay.replay_config(door, tmp_path)
    replay.enroll_all(cfg, people)
    clock = FakeClock()
    pins = MockFactory()
    svc = service_mod.build_service(
        cfg,
        pin_factory=pins,
        camera=ReplayCamera(
            [f for a in genuine for f in a.frames], fps=10, clock=clock, sleep=clock.sleep
        ),
        clock=clock,
    )
    svc.run()
    assert svc.stats.unlocks == 0 and svc.stats.errors >= 1
    assert not any(s.state for s in pins.pin(cfg.lock.relay_pin).states)
