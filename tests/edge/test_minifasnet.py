"""The MiniFASNet score cue: the shipped networks, their patch recipe, and what they refuse."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from edge.align import align, patch_region
from edge.cards import CropRecipe, card_path_for, load_card
from edge.detect import largest_first
from edge.errors import ModelError
from edge.images import read_image
from edge.liveness import MINIFASNET_MODELS, shipped_model, sigmoid
from edge.liveness.minifasnet import MiniFASNet, from_config
from edge.pipeline import build_detector
from edge.types import Face, Frame

PATCH = CropRecipe(method="patch", scale=2.7, box_width=1.05, box_height=1.06, shift=-0.04)


def _face(box):
    return Face(box=box, score=0.9, keypoints=np.zeros((6, 2), np.float32))


# -- the patch recipe ----------------------------------------------------------------------


def test_a_patch_is_the_reshaped_box_widened_about_its_centre():
    x0, y0, x1, y1 = patch_region(_face((300, 200, 340, 250)), PATCH, (480, 640))
    w, h = 40 * 1.05 * 2.7, 50 * 1.06 * 2.7
    assert (x1 - x0, y1 - y0) == pytest.approx((w, h))
    # centred on the box, moved up by 4% of its height
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((320, 225 - 0.04 * 50))


def test_a_patch_crossing_an_edge_is_moved_back_inside_the_frame_not_padded():
    x0, y0, x1, y1 = patch_region(_face((0, 0, 60, 60)), PATCH, (480, 640))
    assert x0 == 0 and y0 == 0 and x1 == pytest.approx(60 * 1.05 * 2.7)
    x0, y0, x1, y1 = patch_region(_face((600, 430, 640, 480)), PATCH, (480, 640))
    assert x1 == pytest.approx(639) and y1 == pytest.approx(479)


def test_a_patch_larger_than_the_frame_is_scaled_down_to_fit_it():
    x0, y0, x1, y1 = patch_region(
        _face((100, 100, 300, 400)), replace(PATCH, scale=4.0), (480, 640)
    )
    # the height limits: (480 - 1) / (300 * 1.06)
    assert y0 == pytest.approx(0) and y1 == pytest.approx(479)
    assert (x1 - x0) / (y1 - y0) == pytest.approx(200 * 1.05 / (300 * 1.06))


def test_a_patch_is_stretched_to_the_input_size():
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:, 320:] = 255
    out = align(Frame(rgb), _face((300, 200, 340, 250)), PATCH, (80, 80))
    assert out.rgb.shape == (80, 80, 3)
    assert out.rgb[:, :30].max() == 0 and out.rgb[:, 50:].min() == 255


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("method", "patches", "crop.method: must be one of"),
        ("box_width", 0.0, "crop.box_width: must be between"),
        ("box_height", float("nan"), "crop.box_height: must be between"),
        ("scale", 50, "crop.scale: must be between"),
    ],
)
def test_a_patch_recipe_that_cannot_be_drawn_is_one_line_naming_the_field(field, value, why):
    d = {"method": "patch", "scale": 2.7, field: value}
    with pytest.raises(ValueError, match=why):
        CropRecipe.from_dict(d)


def test_a_patch_recipe_needs_no_landmarks_and_its_card_form_round_trips():
    assert PATCH.landmarks == ()
    assert CropRecipe.from_dict(PATCH.as_dict()) == PATCH


# -- the shipped networks ----------------------------------------------------------------


def test_the_shipped_networks_have_liveness_cards_with_their_patch_and_parity():
    for name in MINIFASNET_MODELS:
        card = load_card(shipped_model(name))
        assert card.role == "liveness" and card.color == "BGR" and card.input_size == (80, 80)
        assert card.crop.method == "patch" and card.crop.scale in (2.7, 4.0)
        assert card.normalization == {"kind": "fixed", "mean": 0.0, "std": 1.0}
        for runtime in ("ai-edge-litert", "tflite-runtime"):
            parity = card.raw["parity"][runtime]
            assert parity["p99_probability_diff"] <= 0.05 and parity["verdict_flips"] == 0


def test_live_faces_score_above_a_printed_photo_of_them(config, samples):
    detector = build_detector(config)
    cue = from_config(config)

    def scores(folder):
        out = []
        for p in sorted(folder.glob("*.jpg")):
            frame = read_image(p)
            out.append(cue(frame, largest_first(detector(frame))[0]))
        return np.array(out)

    live = scores(samples / "nuaa" / "ClientRaw" / "0009")
    photo = scores(samples / "nuaa" / "ImposterRaw" / "0009")
    assert len(live) >= 5 and len(photo) >= 5 and np.isfinite([*live, *photo]).all()
    point = config.liveness.minifasnet_min_live_probability
    assert sigmoid(live.min()) >= point > sigmoid(photo.max())


def test_the_cue_is_the_mean_probability_of_its_networks(config, samples):
    frame = read_image(next((samples / "nuaa" / "ClientRaw" / "0009").glob("*.jpg")))
    face = largest_first(build_detector(config)(frame))[0]
    cue = from_config(config)
    each = [sigmoid(net(frame, face)) for net in cue.networks]
    assert len(each) == 2 and sigmoid(cue(frame, face)) == pytest.approx(np.mean(each), abs=1e-6)


def test_a_tampered_network_is_refused_with_one_line(tmp_path, runtime):
    for name in MINIFASNET_MODELS:
        shutil.copy(shipped_model(name), tmp_path / name)
        shutil.copy(card_path_for(shipped_model(name)), card_path_for(tmp_path / name))
    victim = tmp_path / MINIFASNET_MODELS[1]
    with open(victim, "r+b") as f:
        f.seek(5000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelError, match=r"sha256 .* does not match its card"):
        MiniFASNet(tuple(tmp_path / n for n in MINIFASNET_MODELS), runtime=runtime)


def test_a_card_whose_patch_cannot_be_drawn_is_refused(tmp_path, runtime):
    name = MINIFASNET_MODELS[0]
    shutil.copy(shipped_model(name), tmp_path / name)
    card = json.loads(card_path_for(shipped_model(name)).read_text())
    card["crop"]["box_width"] = -1
    card_path_for(tmp_path / name).write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"card\.json: crop\.box_width: must be between"):
        MiniFASNet((tmp_path / name,), runtime=runtime)
