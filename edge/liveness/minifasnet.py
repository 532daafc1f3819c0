"""The MiniFASNet score cue: two anti-spoofing networks on wide patches around the face.

In: a Frame and a Face.  Out: a float logit (> 0 leans live): logit of the two networks'
mean live probability, as their makers combine them (they sum the softmaxes).

The networks are Minivision's MiniFASNetV2 (a patch 2.7 face boxes wide) and MiniFASNetV1SE
(4.0), trained by their makers on printed photos, screens and masks from many cameras
(Silent-Face-Anti-Spoofing, Apache-2.0), converted by tools/liveness/minifasnet.py.  Each
card says how to cut its patch (edge.align, method "patch"), including how the device's
face box is reshaped to the box the makers' detector drew.  They see the detection stream.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.liveness import logit, sigmoid
from edge.liveness.passive import PassiveClassifier

if TYPE_CHECKING:
    from edge.config import Config
    from edge.types import Face, Frame


class MiniFASNet:
    """The networks named by ``model_paths``, each with its card: face -> one live logit."""

    def __init__(
        self, model_paths: tuple[str | Path, ...], *, runtime: str = "auto", threads: int = 1
    ) -> None:
        self.networks = [
            PassiveClassifier(p, runtime=runtime, threads=threads) for p in model_paths
        ]

    def __call__(self, frame: Frame, face: Face) -> float:
        p = float(np.mean([sigmoid(net(frame, face)) for net in self.networks]))
        # a probability of exactly 0 or 1 (float rounding) stays a finite, decisive logit
        p = min(max(p, 1e-7), 1.0 - 1e-7) if math.isfinite(p) else math.nan
        return logit(p) if math.isfinite(p) else math.nan


def from_config(config: Config) -> MiniFASNet:
    """The shipped networks, or the ones in the folder liveness.minifasnet_models names."""
    return MiniFASNet(
        config.minifasnet_paths(), runtime=config.runtime.backend, threads=config.runtime.threads
    )
