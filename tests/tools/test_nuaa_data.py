"""The daemon on NUAA door-camera replays (needs ../shared/data; skipped without it)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tools import nuaa, replay


def test_split_enrolls_one_session_and_labels_the_rest(samples):
    people, attempts = nuaa.split(samples / "nuaa", ["0005", "0009"])
    assert sorted(people) == ["subject0005", "subject0009"]
    assert all(p.name.split("_")[3] == "01" for p in people["subject0009"])  # session 01 enrolls
    labels = sorted(a.label for a in attempts)
    assert labels == ["attack", "impostor", "subject0005", "subject0009"]
    enrolled_frames = {p for v in people.values() for p in v}
    assert not enrolled_frames & {
        f for a in attempts for f in a.frames
    }  # never attempt with an enrollment frame


@pytest.mark.data
def test_daemon_on_nuaa_lets_no_stranger_in(shared_data, config, tmp_path):
    """One fold, every attempt, the door config (tools/demo.yaml): zero false accepts among impostors."""
    from edge.config import load_config
    from tools.demo import DEMO_CONFIG

    door = load_config(DEMO_CONFIG)
    people, attempts = nuaa.split(shared_data / "nuaa", ["0001", "0002", "0003", "0004", "0005"])
    attempts = [a for a in attempts if a.label != "attack"]
    config = replace(
        config,
        models=replace(config.models, embedder=door.models.embedder),
        match=door.match,
        policy=replace(config.policy, lockout_attempts=1000),
    )  # see tools/bench/nuaa.py
    result = replay.run(config, people, attempts, tmp_path)
    o = replay.score(result)
    assert o.impostor >= 20 and o.genuine >= 10
    assert o.false_accepts == 0, [
        (a.subject, [d["person"] for d in ds if d["decision"] == "unlock"])
        for a, ds in result.labelled
        if a.label == "impostor"
    ]
    assert (
        o.frr < 0.3
    )  # 18.8% on this fold when measured (tools/bench/nuaa.py); a guard against collapse
