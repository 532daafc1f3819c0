"""Presentation-attack detection (liveness): is the face at the door a live person?

In, per frame: the Frame, the tracked Face and its track id (:class:`LivenessChecker`, in
edge.liveness.checker).  Out: a :class:`LivenessSample`: the score cue's live logit for this
frame and each veto cue's reading.  Per attempt, :func:`judge` turns the samples of the frames
the policy used into a :class:`LivenessVerdict`.

This module is the seam: the verdict types and the rule, pure (numpy and the standard
library), which is all the policy imports.  The cues, which need OpenCV and a model, are one
module each and are loaded by :func:`build_liveness` only when liveness is on:

* the **score cue**, ``edge.liveness.passive``: a classifier's live logit per frame (the shipped
  ``models/liveness-nuaa.int8.tflite``); the attempt's score is sigmoid(mean logit);
* **veto cues** (:class:`VetoCue`), named in :data:`VETO_CUES`: a frame-level test that, when
  it fires on any frame of the attempt, refuses it.  ``edge.liveness.planar``: a printed photo
  tilted or swung before the camera moves as a rigid plane.

Fail secure: an attempt is live only when enough frames were scored, no veto fired, and the
mean score clears the operating point; a NaN anywhere fails its comparison.

A new veto cue is one module with a class meeting :class:`VetoCue`, one entry in
:data:`VETO_CUES`, and its on/off switch in ``LivenessConfig`` (edge/config.py) and
edge/default.yaml.
"""

from __future__ import annotations

import importlib
import importlib.resources
import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from edge.config import Config, LivenessConfig
    from edge.liveness.checker import LivenessChecker
    from edge.types import Face, Frame

log = logging.getLogger(__name__)

SHIPPED_MODEL = "liveness-nuaa.int8.tflite"


def shipped_model() -> Path:
    """The liveness model shipped in the ``models`` package."""
    return Path(str(importlib.resources.files("models").joinpath(SHIPPED_MODEL)))


def sigmoids(x: npt.ArrayLike) -> np.ndarray:
    """The logistic function elementwise (live probability from a logit): no overflow at large |x|, NaN stays NaN."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


def sigmoid(x: float) -> float:
    """:func:`sigmoids` of one logit."""
    return float(sigmoids(x))


def logit(p: float) -> float:
    """The inverse of sigmoid, for 0 < p < 1."""
    return math.log(p / (1.0 - p))


class VetoCue(Protocol):
    """A frame-level attack test (registered in VETO_CUES, which names its log key)."""

    def check(self, track_id: int, frame: Frame, face: Face, now: float) -> bool | None:
        """True: this frame shows an attack; False: it does not; None: cannot tell (no evidence)."""
        ...

    def forget(self, track_id: int) -> None:
        """The track ended: drop what was kept for it."""
        ...


@dataclass(frozen=True)
class VetoSpec:
    """A registered veto cue: where its class is, and how the log and a denial name what it saw."""

    target: str  # "module:class", imported when liveness is built
    key: str  # its count in the decision log's liveness object
    means: str  # "<n> <means>" explains a denial


# LivenessConfig switch -> the veto cue it turns on.
VETO_CUES: dict[str, VetoSpec] = {
    "planar_motion": VetoSpec(
        "edge.liveness.planar:PlanarMotion", "planar_pairs", "frame pair(s) moved as a rigid plane"
    ),
}
_MEANS = {spec.key: spec.means for spec in VETO_CUES.values()}


def enabled_vetoes(cfg: LivenessConfig) -> tuple[str, ...]:
    """The log keys of the veto cues ``cfg`` switches on: the ones :func:`judge` counts."""
    return tuple(spec.key for switch, spec in VETO_CUES.items() if getattr(cfg, switch))


@dataclass(frozen=True)
class LivenessSample:
    """One frame's liveness figures: the score cue's logit (NaN when not measured) and the veto readings."""

    logit: float  # the classifier's output: > 0 leans live
    vetoes: tuple[
        tuple[str, bool | None], ...
    ] = ()  # (cue key, fired on this frame; None: cannot tell)

    @property
    def live_probability(self) -> float:
        return sigmoid(self.logit)

    def fired(self, key: str) -> bool | None:
        """The reading of the veto cue ``key`` on this frame (None when not measured)."""
        return dict(self.vetoes).get(key)


@dataclass(frozen=True)
class LivenessVerdict:
    live: bool
    mean_logit: float  # over the scored frames (NaN if none)
    frames: int  # frames with a finite logit
    vetoes: tuple[tuple[str, int], ...] = ()  # (cue key, frames it fired on), for each cue counted
    why: str = ""  # empty when live

    @property
    def live_probability(self) -> float:
        return sigmoid(self.mean_logit)

    def count(self, key: str) -> int:
        """Frames on which the veto cue ``key`` fired (0 if it was not counted)."""
        return dict(self.vetoes).get(key, 0)

    def as_dict(self, min_live_probability: float) -> dict[str, float | int | bool | None]:
        """The decision log's ``liveness`` object."""
        p = self.live_probability
        return {
            "live": self.live,
            "live_probability": round(p, 4) if math.isfinite(p) else None,
            "min_live_probability": min_live_probability,
            "frames": self.frames,
            **dict(self.vetoes),
        }


def judge(
    samples: Sequence[LivenessSample | None],
    *,
    min_live_probability: float,
    min_frames: int,
    vetoes: Collection[str],
) -> LivenessVerdict:
    """The attempt's verdict from its frames' samples (missing samples score nothing).

    Live when at least ``min_frames`` frames were scored, their mean logit is at least
    logit(min_live_probability) -- the mean probability in logit space, so one confident
    frame cannot outvote the rest -- and none of the veto cues named in ``vetoes`` fired.
    """
    logits = [s.logit for s in samples if s is not None and math.isfinite(s.logit)]
    counts = tuple(
        (key, sum(1 for s in samples if s is not None and s.fired(key))) for key in vetoes
    )
    mean = float(np.mean(logits)) if logits else math.nan

    def verdict(live: bool, why: str = "") -> LivenessVerdict:
        return LivenessVerdict(live, mean, len(logits), counts, why)

    if len(logits) < min_frames:
        return verdict(False, f"only {len(logits)} of {min_frames} frames scored")
    for key, n in counts:
        if n:
            return verdict(False, f"{n} {_MEANS.get(key, key + ' frame(s)')}")
    if not sigmoid(mean) >= min_live_probability:
        return verdict(False, f"live probability {sigmoid(mean):.3f} < {min_live_probability:g}")
    return verdict(True)


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def build_liveness(
    config: Config, *, vetoes: Collection[str] | None = None
) -> LivenessChecker | None:
    """The liveness checker the config asks for (None when liveness.enabled is false).

    ``vetoes``: the switches (keys of VETO_CUES) of the veto cues to run; by default those
    the config turns on.
    """
    if not config.liveness.enabled:
        log.warning("liveness is off: a photo of an enrolled person may open the door")
        return None
    from edge.liveness.checker import LivenessChecker
    from edge.liveness.passive import PassiveClassifier

    classifier = PassiveClassifier(
        config.liveness_model_path(), runtime=config.runtime.backend, threads=config.runtime.threads
    )
    switches = (
        [s for s in VETO_CUES if getattr(config.liveness, s)] if vetoes is None else list(vetoes)
    )
    cues = {VETO_CUES[s].key: _load(VETO_CUES[s].target)() for s in switches}
    return LivenessChecker(classifier, cues=cues)
