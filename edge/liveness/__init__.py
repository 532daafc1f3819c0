"""Presentation-attack detection (liveness): is the face at the door a live person?

In, per frame: the Frame, the tracked Face and its track id (:class:`LivenessChecker`, in
edge.liveness.checker).  Out: a :class:`LivenessSample`: each score cue's live logit for this
frame and each veto cue's reading.  Per attempt, :func:`judge` turns the samples of the frames
the policy used into a :class:`LivenessVerdict`.

This module is the seam: the verdict types and the rule, pure (numpy and the standard
library), which is all the policy imports.  The cues, which need OpenCV and a model, are one
module each and are loaded by :func:`build_liveness` only when liveness is on:

* **score cues**, named in :data:`SCORE_CUES`, each a model's live logit per frame with its
  own operating point: ``texture`` (``edge.liveness.passive``, the shipped
  ``models/liveness-nuaa.int8.tflite``: print texture around the face, fitted on NUAA's
  webcam) and ``minifasnet`` (``edge.liveness.minifasnet``: Minivision's two MiniFASNet
  networks, trained by their makers on prints, screens and masks from many cameras);
* **veto cues** (:class:`VetoCue`), named in :data:`VETO_CUES`: a frame-level test that, when
  it fires on any frame of the attempt, refuses it.  ``edge.liveness.planar``: a printed photo
  tilted or swung before the camera moves as a rigid plane.

The rule: **each cue vetoes on its own**.  An attempt is live only when every score cue that
is on scored at least ``min_frames`` frames and its mean logit over them reaches its own
operating point, and no veto cue fired.  The cues are not averaged: a cue at chance away
from its home camera would pull another cue's confident refusal back over the line
(docs/liveness.md, "The rule").  A NaN anywhere fails its comparison, so it refuses.

A new score cue is one module with a ``from_config(config) -> ScoreCue`` function, one entry
in :data:`SCORE_CUES`, and its switch and operating point in ``LivenessConfig``
(edge/config.py) and edge/default.yaml; a new veto cue is one module with a class meeting
:class:`VetoCue`, one entry in :data:`VETO_CUES`, and its switch there too.
"""

from __future__ import annotations

import importlib
import importlib.resources
import logging
import math
from collections.abc import Collection, Mapping, Sequence
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

SHIPPED_MODEL = "liveness-nuaa.int8.tflite"  # the texture cue's
# The MiniFASNet cue's two networks (tools/liveness/minifasnet.py converts them).
MINIFASNET_MODELS = ("minifasnet-v2-2.7.float32.tflite", "minifasnet-v1se-4.0.float32.tflite")


def shipped_model(name: str = SHIPPED_MODEL) -> Path:
    """A liveness model shipped in the ``models`` package (by default the texture cue's)."""
    return Path(str(importlib.resources.files("models").joinpath(name)))


def sigmoids(x: npt.ArrayLike) -> np.ndarray:
    """The logistic function elementwise (live probability from a logit): no overflow at large |x|, NaN stays NaN."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


def sigmoid(x: float) -> float:
    """:func:`sigmoids` of one logit."""
    return float(sigmoids(x))


def logit(p: float) -> float:
    """The inverse of sigmoid, for 0 < p < 1."""
    return math.log(p / (1.0 - p))


class ScoreCue(Protocol):
    """A per-frame live score (registered in SCORE_CUES, which names its log key)."""

    def __call__(self, frame: Frame, face: Face) -> float:
        """The frame's live logit (> 0 leans live)."""
        ...


class VetoCue(Protocol):
    """A frame-level attack test (registered in VETO_CUES, which names its log key)."""

    def check(self, track_id: int, frame: Frame, face: Face, now: float) -> bool | None:
        """True: this frame shows an attack; False: it does not; None: cannot tell (no evidence)."""
        ...

    def forget(self, track_id: int) -> None:
        """The track ended: drop what was kept for it."""
        ...


@dataclass(frozen=True)
class ScoreSpec:
    """A registered score cue: how it is built, switched and set, and what a denial calls it."""

    target: str  # "module:function" taking the Config, imported when liveness is built
    switch: str  # its LivenessConfig on/off field
    point: str  # its LivenessConfig operating point field (a live probability)
    means: str  # a denial says "<means> live probability p < point"


@dataclass(frozen=True)
class VetoSpec:
    """A registered veto cue: where its class is, and how the log and a denial name what it saw."""

    target: str  # "module:class", imported when liveness is built
    key: str  # its count in the decision log's liveness object
    means: str  # "<n> <means>" explains a denial


# Log key -> the score cue.  The key names the cue in the decision log (liveness.cues,
# liveness.refused_by), in tools/report and in the web app.
SCORE_CUES: dict[str, ScoreSpec] = {
    "texture": ScoreSpec(
        "edge.liveness.passive:from_config", "texture", "min_live_probability", "texture"
    ),
    "minifasnet": ScoreSpec(
        "edge.liveness.minifasnet:from_config",
        "minifasnet",
        "minifasnet_min_live_probability",
        "MiniFASNet",
    ),
}

# LivenessConfig switch -> the veto cue it turns on.
VETO_CUES: dict[str, VetoSpec] = {
    "planar_motion": VetoSpec(
        "edge.liveness.planar:PlanarMotion", "planar_pairs", "frame pair(s) moved as a rigid plane"
    ),
}
_MEANS = {spec.key: spec.means for spec in VETO_CUES.values()}
# The denial names what refused: a score cue's key, a veto cue's switch, or "frames".
REFUSERS = (*SCORE_CUES, *VETO_CUES, "frames")


def enabled_vetoes(cfg: LivenessConfig) -> tuple[str, ...]:
    """The log keys of the veto cues ``cfg`` switches on: the ones :func:`judge` counts."""
    return tuple(spec.key for switch, spec in VETO_CUES.items() if getattr(cfg, switch))


def operating_points(cfg: LivenessConfig) -> dict[str, float]:
    """Score cue key -> its operating point, for the score cues ``cfg`` switches on."""
    return {
        k: float(getattr(cfg, s.point)) for k, s in SCORE_CUES.items() if getattr(cfg, s.switch)
    }


def point_logit(p: float) -> float:
    """logit(p) with the ends kept: 0 lets every finite score pass, 1 none; NaN stays NaN."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return logit(p) if math.isfinite(p) else math.nan


@dataclass(frozen=True)
class LivenessSample:
    """One frame's liveness figures: each score cue's logit (NaN when not measured) and the veto readings."""

    scores: tuple[tuple[str, float], ...] = ()  # (score cue key, live logit: > 0 leans live)
    vetoes: tuple[tuple[str, bool | None], ...] = ()  # (veto key, fired; None: cannot tell)

    def score(self, key: str) -> float:
        """The score cue ``key``'s logit on this frame (NaN when not measured)."""
        return dict(self.scores).get(key, math.nan)

    def fired(self, key: str) -> bool | None:
        """The reading of the veto cue ``key`` on this frame (None when not measured)."""
        return dict(self.vetoes).get(key)


@dataclass(frozen=True)
class CueScore:
    """A score cue over the attempt: its mean logit, frames scored and operating point."""

    key: str
    mean_logit: float  # over its scored frames (NaN if none)
    frames: int  # frames with a finite logit
    point: float  # its operating point, a live probability

    @property
    def live_probability(self) -> float:
        return sigmoid(self.mean_logit)

    @property
    def margin(self) -> float:
        """Mean logit minus the operating point's logit: >= 0 passes (NaN: refuses)."""
        return self.mean_logit - point_logit(self.point)

    @property
    def passes(self) -> bool:
        # written so that NaN refuses
        return bool(self.margin >= 0.0)


@dataclass(frozen=True)
class LivenessVerdict:
    live: bool
    frames: int  # frames every score cue scored (the fewest of any cue)
    cues: tuple[CueScore, ...] = ()
    vetoes: tuple[tuple[str, int], ...] = ()  # (cue key, frames it fired on), for each cue counted
    why: str = ""  # empty when live
    refused_by: str = ""  # one of REFUSERS, empty when live

    def cue(self, key: str) -> CueScore | None:
        return next((c for c in self.cues if c.key == key), None)

    @property
    def deciding(self) -> CueScore | None:
        """The score cue nearest to refusing (the lowest margin), or the one that refused."""
        if self.refused_by in SCORE_CUES:
            return self.cue(self.refused_by)
        finite = [c for c in self.cues if not math.isnan(c.margin)]
        return min(finite, key=lambda c: c.margin) if finite else (self.cues or (None,))[0]

    @property
    def live_probability(self) -> float:
        """The deciding cue's live probability (NaN without score cues)."""
        d = self.deciding
        return d.live_probability if d is not None else math.nan

    @property
    def margin(self) -> float:
        """The rule as one number: the lowest cue margin (NaN if any is NaN); live needs >= 0."""
        if not self.cues:
            return math.nan
        margins = [c.margin for c in self.cues]
        return math.nan if any(math.isnan(m) for m in margins) else min(margins)

    def count(self, key: str) -> int:
        """Frames on which the veto cue ``key`` fired (0 if it was not counted)."""
        return dict(self.vetoes).get(key, 0)

    def as_dict(self) -> dict[str, Any]:
        """The decision log's ``liveness`` object (docs/decision-log.md)."""
        d = self.deciding

        def _p(v: float) -> float | None:
            return round(v, 4) if math.isfinite(v) else None

        return {
            "live": self.live,
            "refused_by": self.refused_by or None,
            "live_probability": _p(d.live_probability) if d is not None else None,
            "min_live_probability": d.point if d is not None else None,
            "frames": self.frames,
            "cues": {
                c.key: {
                    "live_probability": _p(c.live_probability),
                    "min_live_probability": c.point,
                    "frames": c.frames,
                }
                for c in self.cues
            },
            **dict(self.vetoes),
        }


def judge(
    samples: Sequence[LivenessSample | None],
    *,
    points: Mapping[str, float],
    min_frames: int,
    vetoes: Collection[str],
) -> LivenessVerdict:
    """The attempt's verdict from its frames' samples (missing samples score nothing).

    ``points``: score cue key -> operating point (live probability), for the cues that are
    on.  Live when every one of them scored at least ``min_frames`` frames and its mean logit
    -- the mean probability in logit space, so one confident frame cannot outvote the rest --
    reaches logit(point), and none of the veto cues named in ``vetoes`` fired.  With no
    score cue on, nothing is live.
    """
    present = [s for s in samples if s is not None]
    cues = []
    for key, point in points.items():
        logits = [z for z in (s.score(key) for s in present) if math.isfinite(z)]
        mean = float(np.mean(logits)) if logits else math.nan
        cues.append(CueScore(key, mean, len(logits), float(point)))
    counts = tuple((key, sum(1 for s in present if s.fired(key))) for key in vetoes)
    frames = min((c.frames for c in cues), default=0)

    def verdict(live: bool, why: str = "", by: str = "") -> LivenessVerdict:
        return LivenessVerdict(live, frames, tuple(cues), counts, why, by)

    if not cues:
        return verdict(False, "no score cue is on", "frames")
    if frames < min_frames:
        return verdict(False, f"only {frames} of {min_frames} frames scored", "frames")
    for key, n in counts:
        if n:
            switch = next((s for s, spec in VETO_CUES.items() if spec.key == key), key)
            return verdict(False, f"{n} {_MEANS.get(key, key + ' frame(s)')}", switch)
    # the cue furthest below its point names the refusal
    for c in sorted(cues, key=lambda c: (not math.isnan(c.margin), c.margin)):
        if not c.passes:
            means = SCORE_CUES[c.key].means if c.key in SCORE_CUES else c.key
            return verdict(
                False, f"{means} live probability {c.live_probability:.3f} < {c.point:g}", c.key
            )
    return verdict(True)


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def build_liveness(
    config: Config, *, vetoes: Collection[str] | None = None, scores: Collection[str] | None = None
) -> LivenessChecker | None:
    """The liveness checker the config asks for (None when liveness.enabled is false).

    ``scores`` / ``vetoes``: the keys of SCORE_CUES / switches of VETO_CUES to run; by default
    those the config turns on.
    """
    if not config.liveness.enabled:
        log.warning("liveness is off: a photo of an enrolled person may open the door")
        return None
    from edge.liveness.checker import LivenessChecker

    lc = config.liveness
    if scores is None and not lc.minifasnet:
        log.warning(
            "liveness.minifasnet is off: the texture cue alone (point %g, at chance off NUAA's "
            "camera) judges faces; fit its point to this door (docs/liveness.md)",
            lc.min_live_probability,
        )
    score_keys = (
        [k for k, s in SCORE_CUES.items() if getattr(lc, s.switch)]
        if scores is None
        else list(scores)
    )
    switches = [s for s in VETO_CUES if getattr(lc, s)] if vetoes is None else list(vetoes)
    built = {k: _load(SCORE_CUES[k].target)(config) for k in score_keys}
    cues = {VETO_CUES[s].key: _load(VETO_CUES[s].target)() for s in switches}
    return LivenessChecker(built, cues=cues)
