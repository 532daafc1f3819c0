"""edge.match: best and second-best person by cosine, with synthetic unit vectors."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import PREPROCESSING

from edge.cards import preprocessing_digest
from edge.errors import GalleryError
from edge.gallery import Gallery
from edge.match import match
from edge.types import Embedding

SHA = "a" * 64
D = 128


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _emb(v: np.ndarray, sha: str = SHA) -> Embedding:
    return Embedding(
        vector=_unit(v), model_sha256=sha, preprocessing=preprocessing_digest(PREPROCESSING)
    )


def _gallery(people: dict[str, list[np.ndarray]]) -> Gallery:
    g = Gallery.empty(SHA, D, PREPROCESSING)
    for name, vectors in people.items():
        g.add(name, [_emb(v) for v in vectors], ["test"] * len(vectors), max_templates=20)
    return g


def test_each_person_scores_by_their_closest_template(rng):
    alice = [rng.normal(size=D) for _ in range(3)]
    bob = [rng.normal(size=D) for _ in range(2)]
    carol = [rng.normal(size=D)]
    g = _gallery({"alice": alice, "bob": bob, "carol": carol})
    probe = _emb(bob[1] + 0.3 * rng.normal(size=D))

    m = match(probe, g)

    scores = {
        name: max(probe.cosine(_emb(v)) for v in vs)
        for name, vs in {"alice": alice, "bob": bob, "carol": carol}.items()
    }
    ranked = sorted(scores, key=scores.get, reverse=True)
    assert (m.best, m.second) == (ranked[0], ranked[1]) and m.best == "bob"
    assert m.best_score == pytest.approx(scores["bob"], abs=1e-5)
    assert m.second_score == pytest.approx(scores[ranked[1]], abs=1e-5)
    assert m.margin == pytest.approx(m.best_score - m.second_score)


def test_a_person_with_many_templates_is_only_listed_once(rng):
    base = rng.normal(size=D)
    g = _gallery(
        {"alice": [base + 0.05 * rng.normal(size=D) for _ in range(5)], "bob": [rng.normal(size=D)]}
    )
    m = match(_emb(base), g)
    assert m.best == "alice" and m.second == "bob"


def test_empty_gallery_matches_nobody():
    m = match(_emb(np.ones(D)), Gallery.empty(SHA, D, PREPROCESSING))
    assert m.best is None and m.best_score == -1.0 and m.second is None


def test_one_person_has_no_runner_up(rng):
    v = rng.normal(size=D)
    m = match(_emb(v), _gallery({"alice": [v]}))
    assert m.best == "alice" and m.best_score == pytest.approx(1.0, abs=1e-5)
    assert m.second is None and m.second_score == -1.0 and m.margin == 2.0


def test_embedding_from_another_model_is_refused(rng):
    g = _gallery({"alice": [rng.normal(size=D)]})
    pattern = (
        r"enrolled with model aaaaaaaaaaaa…, the embedder is bbbbbbbbbbbb…; enroll everyone again"
    )
    with pytest.raises(GalleryError, match=pattern):
        match(_emb(rng.normal(size=D), sha="b" * 64), g)


def test_embedding_of_the_wrong_size_is_refused(rng):
    g = _gallery({"alice": [rng.normal(size=D)]})
    with pytest.raises(GalleryError, match=r"embedding_size.*128.*64"):
        match(_emb(rng.normal(size=64)), g)


def test_match_sees_gallery_changes(rng):
    v = rng.normal(size=D)
    g = _gallery({"alice": [rng.normal(size=D)]})
    assert match(_emb(v), g).best == "alice"
    g.add("bob", [_emb(v)], ["test"], max_templates=20)
    assert match(_emb(v), g).best == "bob"
    g.remove("bob")
    assert match(_emb(v), g).best == "alice"
