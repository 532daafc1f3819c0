from __future__ import annotations

import json
import math
import shutil

import cv2
import numpy as np
import pytest

from edge.cards import card_path_for, load_card
from edge.detect import largest_first
from edge.embed import Embedder
from edge.errors import ModelError
from edge.images import read_image
from edge.liveness import LivenessSample, judge, logit, shipped_model, sigmoid
from edge.liveness.checker import LivenessChecker
from edge.liveness.passive import PassiveClassifier
from edge.liveness.planar import PlanarMotion, planar_pair
from edge.pipeline import build_detector
from edge.types import Face, Frame

JUDGE = {"points": {"texture": 0.5}, "min_frames": 3, "vetoes": ("planar_pairs",)}


def one(z: float, **more: float) -> LivenessSample:
    return LivenessSample((("texture", z), *more.items()))


def samples(*logits, planar=None):
    planar = planar or [None] * len(logits)
    return [
        LivenessSample((("texture", z),), (("planar_pairs", f),))
        for z, f in zip(logits, planar, strict=True)
    ]


def two(pairs, points=(0.5, 0.5)):
    """Samples of two score cues, judged at their points."""
    s = [LivenessSample((("texture", a), ("minifasnet", b))) for a, b in pairs]
    return judge(
        s,
        points={"texture": points[0], "minifasnet": points[1]},
        min_frames=len(pairs),
        vetoes=(),
    )


# -- judge: the attempt's verdict --------------------------------------------------------


def test_live_when_enough_frames_average_above_the_operating_point():
    v = judge(samples(2.0, 0.5, -1.0), **JUDGE)  # mean logit 0.5 -> p 0.62
    assert v.live and v.frames == 3 and v.cue("texture").mean_logit == pytest.approx(0.5)
    assert v.why == "" and v.refused_by == ""


def test_the_mean_is_taken_over_logits_so_one_confident_frame_cannot_outvote_the_rest():
    v = judge(
        samples(9.0, -3.0, -3.0), **JUDGE
    )  # mean probability 0.35 either way; mean logit +1 -> p 0.73
    assert v.live
    v = judge(
        samples(9.0, -5.0, -5.0), **JUDGE
    )  # mean probability 0.33, mean logit -0.33 -> p 0.42
    assert not v.live and "texture live probability 0.417 < 0.5" in v.why
    assert v.refused_by == "texture"


def test_exactly_at_the_operating_point_is_live():
    assert judge(samples(0.0, 0.0, 0.0), **JUDGE).live


def test_too_few_scored_frames_fail_secure():
    v = judge([one(5.0), None, one(math.nan)], **JUDGE)
    assert not v.live and v.frames == 1 and "only 1 of 3" in v.why and v.refused_by == "frames"
    assert not judge([], **JUDGE).live


def test_each_score_cue_vetoes_on_its_own_and_the_refusal_names_it():
    # texture is sure it is live, MiniFASNet sure it is not: averaging would let it in.
    v = two([(6.0, -2.0)] * 3)
    assert not v.live and v.refused_by == "minifasnet" and "MiniFASNet live probability" in v.why
    assert two([(-2.0, 6.0)] * 3).refused_by == "texture"
    assert two([(1.0, 1.0)] * 3).live
    # each cue against its own point
    assert two([(-2.0, 1.0)] * 3, points=(0.1, 0.5)).live
    assert not two([(-2.0, 1.0)] * 3, points=(0.2, 0.5)).live
    # both below: the one further below its point names the refusal
    assert two([(-1.0, -3.0)] * 3).refused_by == "minifasnet"


def test_a_cue_that_cannot_score_refuses_even_when_the_other_is_sure():
    v = two([(5.0, math.nan)] * 3)
    assert not v.live and v.refused_by == "frames" and v.frames == 0


def test_operating_points_at_the_ends_and_no_cue_at_all():
    assert two([(-30.0, 30.0)] * 3, points=(0.0, 0.5)).live  # 0 passes every finite score
    assert not two([(30.0, 30.0)] * 3, points=(1.0, 0.5)).live  # 1 passes none
    v = judge([one(5.0)] * 3, points={}, min_frames=1, vetoes=())
    assert not v.live and v.refused_by == "frames"


def test_the_rules_margin_is_the_lowest_cue_margin():
    v = two([(2.0, 1.0)] * 3)
    assert v.margin == pytest.approx(1.0) and v.deciding.key == "minifasnet"
    assert math.isnan(two([(2.0, math.nan)] * 3).margin)


def test_one_rigid_planar_pair_is_an_attack_unless_the_cue_is_off():
    s = samples(5.0, 5.0, 5.0, planar=[None, True, False])
    v = judge(s, **JUDGE)
    assert not v.live and v.count("planar_pairs") == 1 and "rigid plane" in v.why
    assert judge(s, **{**JUDGE, "vetoes": ()}).live


def test_verdict_as_log_object_is_strict_json():
    v = judge(samples(2.0, 1.0, 0.0), **JUDGE)
    assert v.as_dict() == {
        "live": True,
        "refused_by": None,
        "live_probability": 0.7311,
        "min_live_probability": 0.5,
        "frames": 3,
        "cues": {"texture": {"live_probability": 0.7311, "min_live_probability": 0.5, "frames": 3}},
        "planar_pairs": 0,
    }
    empty = judge([], **JUDGE).as_dict()
    doc = json.loads(json.dumps(empty, allow_nan=False))
    assert doc["live_probability"] is None and doc["refused_by"] == "frames"


def test_sigmoid_is_stable_at_the_extremes():
    assert sigmoid(0.0) == 0.5
    assert sigmoid(800.0) == 1.0 and sigmoid(-800.0) == 0.0
    assert math.isnan(sigmoid(math.nan)) and sigmoid(math.inf) == 1.0


# -- rigid planar motion ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def texture() -> np.ndarray:
    """A grey 480x640 image with corners to track: a stand-in for a printed face."""
    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur(rng.integers(0, 255, (480, 640)).astype(np.uint8), (0, 0), 2.0)
    return cv2.normalize(img, np.empty_like(img), 0, 255, cv2.NORM_MINMAX)


BOX = (240.0, 160.0, 400.0, 340.0)


def test_a_tilted_plane_is_planar(texture):
    # A photo swung about its vertical axis: perspective, which no similarity explains.
    src = np.float32([[200, 120], [440, 120], [440, 380], [200, 380]])
    dst = np.float32([[215, 105], [430, 135], [430, 365], [215, 395]])
    moved = cv2.warpPerspective(texture, cv2.getPerspectiveTransform(src, dst), (640, 480))
    pair = planar_pair(texture, moved, BOX)
    assert pair is not None and pair.motion >= 0.02
    assert pair.homography_inliers >= 0.95 and pair.similarity_inliers < 0.8
    assert pair.planar


def test_a_face_that_only_shifts_and_zooms_is_not_planar(texture):
    # A live person stepping closer: a similarity transform, as a photo moved the same way.
    m = cv2.getRotationMatrix2D((320, 250), 0.0, 1.06)
    m[:, 2] += (6, 4)
    pair = planar_pair(texture, cv2.warpAffine(texture, m, (640, 480)), BOX)
    assert pair is not None and pair.motion >= 0.02 and pair.similarity_inliers >= 0.8
    assert not pair.planar


def test_motion_with_parallax_is_not_planar(texture):
    # Two depths moving differently (nose against cheeks): no single homography fits.
    moved = texture.copy()
    moved[:, :320] = np.roll(texture, 8, axis=1)[:, :320]
    moved[:, 320:] = np.roll(texture, -8, axis=1)[:, 320:]
    pair = planar_pair(texture, moved, BOX)
    assert pair is None or not pair.planar


def test_a_still_face_gives_no_planar_evidence(texture):
    pair = planar_pair(texture, texture, BOX)
    assert pair is not None and pair.motion < 0.02 and not pair.planar


def test_a_blank_region_gives_no_measurement():
    flat = np.full((480, 640), 128, np.uint8)
    assert planar_pair(flat, flat, BOX) is None


# -- the passive classifier (the shipped model, both runtimes) -----------------------------


@pytest.fixture
def classifier(runtime) -> PassiveClassifier:
    return PassiveClassifier(shipped_model(), runtime=runtime)


def test_shipped_model_has_a_liveness_card_with_its_training_split(classifier):
    card = classifier.card
    assert card.role == "liveness" and card.mode == "int8" and not card.flip_average
    training = card.raw["training"]
    assert set(training["subjects"]).isdisjoint(training["held_out_subjects"])
    assert 0.0 < card.raw["operating_point"]["min_live_probability"] < 1.0


def test_the_default_config_vetoes_with_the_texture_cue_only_when_it_is_sure(classifier):
    """Its card keeps the point placed on NUAA's webcam; the door's default is far lower
    (docs/liveness.md, "Choosing the operating points"): off its home camera it is at chance."""
    from edge.config import load_config

    door = load_config().liveness.min_live_probability
    assert door < 0.05 < classifier.card.raw["operating_point"]["min_live_probability"]


def test_live_frames_score_higher_than_a_photo_of_a_held_out_subject(
    classifier, samples, model_dir, config
):
    """Subject 0009 never trained the model: its live frames against a printed photo of them."""
    detector = build_detector(config)

    def logits(folder):
        out = []
        for p in sorted(folder.glob("*.jpg")):
            frame = read_image(p)
            face = largest_first(detector(frame))[0]
            out.append(classifier(frame, face))
        return np.array(out)

    live = logits(samples / "nuaa" / "ClientRaw" / "0009")
    photo = logits(samples / "nuaa" / "ImposterRaw" / "0009")
    assert (
        len(live) >= 5 and len(photo) >= 5 and np.isfinite(live).all() and np.isfinite(photo).all()
    )
    threshold = logit(classifier.card.raw["operating_point"]["min_live_probability"])
    assert live.mean() >= threshold > photo.mean()
    assert live.min() > photo.max()


def test_roles_are_not_interchangeable(model_dir, runtime):
    with pytest.raises(ModelError, match=r"a liveness model .* not a face embedder"):
        Embedder(shipped_model(), runtime=runtime)
    with pytest.raises(ModelError, match=r"an? embedder model .* not a liveness model"):
        PassiveClassifier(model_dir / "facenet-keras.float32.tflite", runtime=runtime)


def test_a_tampered_liveness_model_is_refused(tmp_path):
    model = tmp_path / "l.tflite"
    shutil.copy(shipped_model(), model)
    shutil.copy(card_path_for(shipped_model()), card_path_for(model))
    load_card(model)
    with open(model, "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelError, match="does not match its card"):
        PassiveClassifier(model)


def test_a_card_with_a_wrong_output_is_refused(tmp_path):
    model = tmp_path / "l.tflite"
    shutil.copy(shipped_model(), model)
    card = json.loads(card_path_for(shipped_model()).read_text())
    card["output"]["size"] = 2
    card_path_for(model).write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"l\.tflite\.card\.json: output: "):
        PassiveClassifier(model)


# -- the checker: samples per track ------------------------------------------------------------


class ConstantClassifier:
    def __call__(self, frame, face):
        return 1.5


def _face(box):
    x0, y0, x1, y1 = box
    kps = np.array([[x0 + 0.3 * (x1 - x0), y0 + 0.4 * (y1 - y0)]] * 6, np.float32)
    return Face(box=box, score=0.9, keypoints=kps)


def test_checker_compares_frames_of_the_same_track_only_and_forgets(texture):
    src = np.float32([[200, 120], [440, 120], [440, 380], [200, 380]])
    dst = np.float32([[215, 105], [430, 135], [430, 365], [215, 395]])
    moved = cv2.warpPerspective(texture, cv2.getPerspectiveTransform(src, dst), (640, 480))
    rgb = lambda g: np.repeat(g[..., None], 3, axis=2)  # noqa: E731
    c = LivenessChecker({"texture": ConstantClassifier()}, cues={"planar_pairs": PlanarMotion()})
    face = _face(BOX)

    def planar(track: int, image: np.ndarray, now: float) -> bool | None:
        return c.sample(track, Frame(rgb(image)), face, now).fired("planar_pairs")

    first = c.sample(1, Frame(rgb(texture)), face, 0.0)
    assert (
        first.score("texture") == 1.5 and first.fired("planar_pairs") is None
    )  # nothing to compare with yet
    assert planar(2, moved, 0.1) is None  # another track
    assert planar(1, moved, 0.1) is True
    c.forget(1)
    assert planar(1, texture, 0.2) is None
    # Frames too far apart in time are not compared.
    assert planar(1, moved, 5.0) is None
    assert c.calls == 5 and c.seconds > 0


def test_checker_keeps_a_bounded_number_of_tracks(texture):
    cue = PlanarMotion(max_tracks=3)
    c = LivenessChecker({"texture": ConstantClassifier()}, cues={"planar_pairs": cue})
    frame = Frame(np.repeat(texture[..., None], 3, axis=2))
    for tid in range(10):
        c.sample(tid, frame, _face(BOX), 0.0)
    assert sorted(cue._prev) == [7, 8, 9]  # the newest tracks
