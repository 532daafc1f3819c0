"""Face embedding with a TFLite model described by its model card.

In: an AlignedFace (uint8 RGB at the card's input size).  Out: an Embedding,
L2-normalised, tagged with the model's sha256.

Preprocessing (colour order, normalisation, mirror averaging) comes from the
card, so a user's own model with another input size or normalisation needs no
code change.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge.cards import ModelCard, load_card, preprocessing_digest
from edge.errors import ModelError
from edge.runtime import Model
from edge.types import AlignedFace, Embedding

log = logging.getLogger(__name__)


def normalize(rgb: np.ndarray, card: ModelCard) -> np.ndarray:
    """uint8 HxWx3 RGB -> float32 1xHxWx3 as the model was trained on it."""
    x = rgb[..., ::-1] if card.color == "BGR" else rgb
    x = x.astype(np.float32)
    norm = card.normalization
    if norm["kind"] == "prewhiten":
        # FaceNet's per-image standardisation: (x - mean) / max(std, 1/sqrt(N)).
        std = max(float(x.std()), 1.0 / np.sqrt(x.size))
        x = (x - x.mean()) / std
    else:
        x = (x - float(norm.get("mean", 0.0))) / float(norm.get("std", 1.0))
    return x[None]


def l2_normalize(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n == 0.0:
        raise ModelError("embedder produced a zero or non-finite vector")
    return (v / n).astype(np.float32)


_ROLE_NAMES = {"embedder": "face embedder", "liveness": "liveness model"}


def open_with_card(
    model_path: str | Path, role: str, *, runtime: str, threads: int
) -> tuple[ModelCard, Model]:
    """The card (sha256-verified) and the loaded model, refused unless its role and input match the card."""
    card = load_card(model_path)
    if card.role != role:
        raise ModelError(
            f"{model_path}: a {card.role} model (by its card), not a {_ROLE_NAMES[role]}"
        )
    model = Model(model_path, runtime=runtime, threads=threads)
    h, w = card.input_size
    if model.inputs[0].shape != (1, h, w, 3):
        raise ModelError(
            f"{model_path}: input shape {model.inputs[0].shape} does not match its card (1, {h}, {w}, 3)"
        )
    return card, model


class Embedder:
    """Runs the embedder named by a model card, verified by sha256 on load."""

    def __init__(self, model_path: str | Path, *, runtime: str = "auto", threads: int = 1) -> None:
        self.card, self.model = open_with_card(
            model_path, "embedder", runtime=runtime, threads=threads
        )
        if self.model.outputs[0].shape[-1] != self.card.embedding_size:
            raise ModelError(
                f"{model_path}: output size {self.model.outputs[0].shape[-1]} does not match its card "
                f"({self.card.embedding_size})"
            )
        self.sha256 = self.card.sha256
        # Templates are bound to this as well as to the weights: a change of crop,
        # colour order or normalisation makes old templates meaningless.
        self.preprocessing = self.card.preprocessing()
        self.preprocessing_digest = preprocessing_digest(self.preprocessing)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.card.input_size

    def raw(self, rgb: np.ndarray) -> np.ndarray:
        """The model's unnormalised output for one crop."""
        return self.model.run(normalize(rgb, self.card))[0][0]

    def __call__(self, face: AlignedFace) -> Embedding:
        v = self.raw(face.rgb)
        if self.card.flip_average:
            # Test-time mirroring: a face and its mirror image are the same person;
            # averaging both embeddings cancels some pose and lighting asymmetry.
            v = l2_normalize(v) + l2_normalize(self.raw(face.rgb[:, ::-1]))
        return Embedding(
            vector=l2_normalize(v),
            model_sha256=self.sha256,
            preprocessing=self.preprocessing_digest,
        )
