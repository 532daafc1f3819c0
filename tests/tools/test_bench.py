"""tools/bench helpers that decide figures: re-framing, the stranger tail, the peer's absence, convert's template."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.cards import CropRecipe
from edge.images import read_image
from edge.pipeline import build_pipeline
from tools.bench import impostors, peer, wild
from tools.convert.__main__ import ARCFACE_112, crop_spec


def test_reframing_is_seeded_by_name_and_moves_the_face_into_a_door_frame(lfw_samples):
    rgb = read_image(lfw_samples["Tony_Blair_0006"]).rgb
    a, ca = wild.reframe(rgb, "Tony_Blair_0006.jpg")
    b, cb = wild.reframe(rgb, "Tony_Blair_0006.jpg")
    c, cc = wild.reframe(rgb, "Tony_Blair_0018.jpg")
    assert a.shape == (480, 640, 3) and np.array_equal(a, b) and ca == cb
    assert not np.array_equal(a, c) and ca != cc
    assert (
        0.25 * 640 <= ca[0] <= 0.75 * 640 and 0.3 * 480 <= ca[1] <= 0.7 * 480
    )  # the subject lands inside the frame


def test_reframed_faces_are_still_found_and_recognised(config, lfw_samples):
    p = build_pipeline(config)
    emb = wild.embed_reframed(
        p, [lfw_samples[k] for k in ("Tony_Blair_0006", "Tony_Blair_0018", "Laura_Bush_0001")]
    )
    found = [v for v in emb.values() if v is not None]
    # Re-framing shrinks, tilts and moves the face, so the detector may lose one of the three;
    # losing more would mean the re-framing, not the face, decides what the benchmark measures.
    assert len(found) >= 2
    if all(v is not None for v in emb.values()):
        tb = list(emb.values())
        assert float(tb[0] @ tb[1]) > float(tb[0] @ tb[2])


def test_the_stranger_tail_counts_only_pairs_of_different_people():
    rng = np.random.default_rng(0)
    base = {n: rng.normal(size=8) for n in ("A_Person", "B_Person", "C_Person")}
    emb = {}
    for n, v in base.items():
        for i in range(3):
            w = v + 0.05 * rng.normal(size=8)
            emb[Path(f"{n}_{i:04d}.jpg")] = w / np.linalg.norm(w)
    t = impostors.tail(emb)
    assert (t["images"], t["people"], t["genuine_pairs"], t["impostor_pairs"]) == (9, 3, 9, 27)
    sims = {(a, b): float(emb[a] @ emb[b]) for a in emb for b in emb if a < b}
    strangers = [s for (a, b), s in sims.items() if impostors.person(a) != impostors.person(b)]
    assert t["highest_impostor"] == pytest.approx(max(strangers))
    assert "1e-06" not in t["at_far"]  # 27 stranger pairs cannot show one in a million


def test_the_peer_benchmark_says_how_to_make_its_venv(tmp_path, capsys):
    assert peer.main(["--peer-python", str(tmp_path / "none" / "python")]) == 2
    assert "run `make peer-venv` first" in capsys.readouterr().err


def test_convert_template_crop_is_arcface_scaled_to_the_input():
    spec = crop_spec("template", 0.0, True, (224, 224))
    recipe = CropRecipe.from_dict(spec)
    assert recipe.method == "template" and set(recipe.landmarks) == set(ARCFACE_112)
    assert {n: (x, y) for n, x, y in recipe.template}["nose_tip"] == pytest.approx(
        (112.0504, 143.4732)
    )
    assert crop_spec("box", 0.15, False, (160, 160)) == {
        "method": "box",
        "margin": 0.15,
        "rotate": False,
    }
