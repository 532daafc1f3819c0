"""Run the real daemon (edge.service) on a labelled replay, in virtual time.

In: a config, people to enroll (image files), labelled attempts (tools.nuaa).
Out: the decision log records, each joined with its attempt's label, and the
relay's history as seen on gpiozero's MockFactory pin.

The replay camera is paced at ``fps`` on a virtual clock that the daemon also
reads, so policy timings (k of n frames, track timeout, retry pause, lockout)
behave as at a real door while the replay runs as fast as the CPU allows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from edge.camera.replay import ReplayCamera
from edge.config import Config
from edge.decisions import log_files, read_records
from edge.enroll import Attempt as EnrollAttempt
from edge.enroll import add_to_gallery, from_images
from edge.pipeline import build_pipeline
from edge.service import Service, build_service
from edge.types import Decision
from tools.nuaa import Attempt, playlist, write_blank


class VirtualClock:
    """Time that moves only when the replay camera 'sleeps' until its next frame."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


@dataclass
class ReplayResult:
    records: list[dict[str, Any]]
    labelled: list[tuple[Attempt, list[dict[str, Any]]]]  # each attempt with its decisions
    enrolled: dict[str, int]
    service: Service
    relay_on_events: int = 0
    log_path: Path = field(default_factory=Path)


def replay_config(config: Config, workdir: Path, *, snapshots: bool = False) -> Config:
    return replace(
        config,
        gallery=replace(config.gallery, path=str(workdir / "gallery.json")),
        log=replace(
            config.log,
            decisions=str(workdir / "decisions.jsonl"),
            snapshots_dir=str(workdir / "snapshots") if snapshots else None,
        ),
        camera=replace(config.camera, backend="replay", device=str(workdir)),
        # The relay pulse runs in real time while the replay runs faster: keep it short
        # so that each unlock shows as its own pulse on the mock pin.
        lock=replace(config.lock, unlock_s=min(config.lock.unlock_s, 0.2)),
    )


def enroll_all(
    config: Config,
    people: dict[str, list[Path]],
    report: Callable[[str, EnrollAttempt], None] = lambda n, a: None,
) -> dict[str, int]:
    pipeline = build_pipeline(config)
    counts = {}
    for name, images in people.items():
        good = from_images(pipeline, images, config.policy, partial(report, name))
        add_to_gallery(config, name, good, pipeline.embedder)
        counts[name] = len(good)
    return counts


def run(
    config: Config,
    people: dict[str, list[Path]],
    attempts: list[Attempt],
    workdir: Path,
    *,
    fps: float = 10.0,
    on_decision: Callable[[Decision, dict[str, Any]], None] | None = None,
    on_enroll: Callable[[str, EnrollAttempt], None] = lambda n, a: None,
    snapshots: bool = False,
) -> ReplayResult:
    from gpiozero.pins.mock import MockFactory

    workdir.mkdir(parents=True, exist_ok=True)
    config = replay_config(config, workdir, snapshots=snapshots)
    enrolled = enroll_all(config, people, on_enroll)
    blank = write_blank(workdir / "blank.jpg")
    gap = math.ceil((config.policy.track_timeout_s + 0.5) * fps)
    frames = playlist(attempts, blank, gap)
    clock = VirtualClock()
    camera = ReplayCamera(frames, fps=fps, clock=clock, sleep=clock.sleep)
    pins = MockFactory()
    service = build_service(
        config, pin_factory=pins, camera=camera, on_decision=on_decision, clock=clock
    )
    relay_pin = pins.pin(config.lock.relay_pin)
    service.run()
    records = list(read_records(log_files(config.log.decisions)))
    by_frame = {str(f): a for a in attempts for f in a.frames}
    per_attempt: dict[int, list[dict[str, Any]]] = {id(a): [] for a in attempts}
    for r in records:
        for s in r["sources"]:
            a = by_frame.get(s)
            if a is not None:
                per_attempt[id(a)].append(r)
                break
    energised = config.lock.active_high
    on_events = sum(1 for s in relay_pin.states[1:] if bool(s.state) == energised)
    return ReplayResult(
        records,
        [(a, per_attempt[id(a)]) for a in attempts],
        enrolled,
        service,
        on_events,
        Path(config.log.decisions),
    )


@dataclass
class Outcome:
    """Per-attempt outcome counts: the door's confusion matrix on a replay."""

    genuine: int = 0
    genuine_accepted: int = 0  # the right person let in
    wrong_person: int = 0  # a genuine attempt let in as somebody else: a false accept
    impostor: int = 0
    impostor_accepted: int = 0  # false accepts
    attack: int = 0
    attack_accepted: int = 0
    no_decision: int = 0  # attempts where no face ever reached the policy

    @property
    def false_accepts(self) -> int:
        return self.impostor_accepted + self.wrong_person

    @property
    def frr(self) -> float:
        return 1 - self.genuine_accepted / self.genuine if self.genuine else float("nan")


def score(result: ReplayResult) -> Outcome:
    o = Outcome()
    for attempt, decisions in result.labelled:
        unlocked = [d for d in decisions if d["decision"] == "unlock"]
        if not decisions:
            o.no_decision += 1
        if attempt.label == "impostor":
            o.impostor += 1
            o.impostor_accepted += bool(unlocked)
        elif attempt.label == "attack":
            o.attack += 1
            o.attack_accepted += bool(unlocked)
        else:
            o.genuine += 1
            right = any(d["person"] == attempt.label for d in unlocked)
            o.genuine_accepted += right
            o.wrong_person += any(d["person"] != attempt.label for d in unlocked)
    return o
