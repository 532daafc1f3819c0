"""The texture score cue: a liveness model's live logit for a face and its surroundings.

In: a Frame and a Face.  Out: a float logit (> 0 leans live).  The model is the one named by
``liveness.model`` (``models/liveness-nuaa.int8.tflite`` shipped: FaceNet's frozen stem,
texture statistics and one logistic unit, fitted by tools/liveness/train.py and converted by
tools/convert); its card's crop recipe keeps paper texture, print colour, photo edges and the
fingers holding them in view.  It sees the detection stream (640x480), as it was trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.align import align
from edge.embed import normalize, open_with_card
from edge.errors import ModelError
from edge.types import Face, Frame

if TYPE_CHECKING:
    from edge.config import Config


class PassiveClassifier:
    """The liveness model named by its model card: a face and its surroundings -> live logit."""

    def __init__(self, model_path: str | Path, *, runtime: str = "auto", threads: int = 1) -> None:
        self.card, self.model = open_with_card(
            model_path, "liveness", runtime=runtime, threads=threads
        )
        if tuple(self.model.outputs[0].shape) != (1, 1):
            raise ModelError(
                f"{model_path}: output shape {self.model.outputs[0].shape} is not one logit (1, 1)"
            )
        self.sha256 = self.card.sha256

    def crop(self, frame: Frame, face: Face) -> np.ndarray:
        return align(frame, face, self.card.crop, self.card.input_size).rgb

    def logit(self, crop: np.ndarray) -> float:
        return float(self.model.run(normalize(crop, self.card))[0].reshape(-1)[0])

    def __call__(self, frame: Frame, face: Face) -> float:
        """The frame's live logit."""
        return self.logit(self.crop(frame, face))


def from_config(config: Config) -> PassiveClassifier:
    """The texture cue: liveness.model, or the shipped NUAA classifier."""
    return PassiveClassifier(
        config.liveness_model_path(),
        runtime=config.runtime.backend,
        threads=config.runtime.threads,
    )
