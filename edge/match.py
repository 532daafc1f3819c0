"""Match one face embedding against the gallery.

In: an Embedding (unit vector) and a Gallery (unit templates from the same
model).  Out: a types.Match with the best and second-best *person*, each scored
by cosine similarity with their closest template.  Deciding whether that is
good enough (threshold, margin, frames) is the policy's job, not this one's.
"""

from __future__ import annotations

import logging

import numpy as np

from edge.errors import GalleryError, ModelError
from edge.gallery import Gallery, model_mismatch_message
from edge.types import Embedding, Match

log = logging.getLogger(__name__)


def match(embedding: Embedding, gallery: Gallery) -> Match:
    """Best and runner-up person for ``embedding``; Match(None, -1.0) when nobody is enrolled.

    Scoring a person by their best template (not the mean) lets varied
    templates (glasses on and off) each cover their own look.
    """
    if embedding.model_sha256 != gallery.model_sha256:
        # Cosines between vectors of two different models are meaningless: refuse.
        raise GalleryError(
            f"gallery: {model_mismatch_message(gallery.model_sha256, embedding.model_sha256)}"
        )
    if embedding.preprocessing != gallery.preprocessing_digest:
        raise GalleryError(
            "gallery: preprocessing: the templates were made with another crop, colour order or "
            "normalisation than this embedder's card; enroll everyone again"
        )
    templates, names = gallery.matrix()
    if not names:
        return Match(best=None, best_score=-1.0)
    v = np.asarray(embedding.vector, dtype=np.float32).ravel()
    if v.shape[0] != templates.shape[1]:
        raise GalleryError(
            f"gallery: embedding_size: the gallery holds {templates.shape[1]} numbers per template, "
            f"the embedding has {v.shape[0]}; enroll everyone again"
        )
    scores = templates @ v  # templates and v are unit vectors: this is the cosine
    if not np.all(np.isfinite(scores)):
        raise ModelError("embedding holds non-finite values: the embedder misbehaved")
    best_of: dict[str, float] = {}
    for name, s in zip(names, scores.tolist(), strict=False):
        if s > best_of.get(name, -np.inf):
            best_of[name] = s
    ranked = sorted(best_of.items(), key=lambda kv: -kv[1])  # stable: ties keep enrollment order
    best, best_score = ranked[0]
    if len(ranked) == 1:
        return Match(best=best, best_score=best_score)
    second, second_score = ranked[1]
    return Match(best=best, best_score=best_score, second=second, second_score=second_score)
