import numpy as np
import pytest

from edge.detect import DetectorSpec, FaceDetector, decode, make_anchors, weighted_nms
from edge.images import read_image
from edge.manifest import load_manifest
from edge.pipeline import build_detector
from edge.types import Frame

SHORT = DetectorSpec(128, (8, 16, 16, 16), 2)
FULL = DetectorSpec(192, (4,), 1)


def test_anchor_counts_match_the_models():
    assert make_anchors(SHORT).shape == (896, 2)
    assert make_anchors(FULL).shape == (2304, 2)


def test_anchor_layout_follows_mediapipe():
    a = make_anchors(SHORT)
    # first layer: a 16x16 grid, two anchors per cell, centres at (i + 0.5) / 16
    assert np.allclose(a[0], [0.5 / 16, 0.5 / 16]) and np.allclose(a[1], a[0])
    assert np.allclose(a[2], [1.5 / 16, 0.5 / 16])
    # then an 8x8 grid with six anchors per cell (three stride-16 layers x two)
    assert np.allclose(a[512:518], [0.5 / 8, 0.5 / 8])
    assert np.allclose(a[-1], [7.5 / 8, 7.5 / 8])


def test_decode_applies_offsets_relative_to_anchor_centres():
    anchors = np.array([[0.5, 0.5]], np.float32)
    raw = np.zeros((1, 16), np.float32)
    raw[0, :4] = [12.8, -6.4, 32.0, 64.0]  # +0.1, -0.05, w 0.25, h 0.5 of a 128 input
    raw[0, 4:6] = [-12.8, 0.0]  # first keypoint 0.1 left of the anchor
    boxes, kps, scores = decode(raw, np.array([0.0]), anchors, 128)
    assert np.allclose(boxes[0], [0.6 - 0.125, 0.45 - 0.25, 0.6 + 0.125, 0.45 + 0.25])
    assert np.allclose(kps[0, 0], [0.4, 0.5])
    assert np.allclose(scores, [0.5])


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    kps = np.zeros((3, 6, 2), np.float32)
    scores = np.array([0.9, 0.3, 0.8])
    out = weighted_nms(boxes, kps, scores, 0.3)
    assert len(out) == 2
    merged, _, s = out[0]
    assert s == pytest.approx(0.9)
    assert merged[0] == pytest.approx(0.3 / 1.2)  # score-weighted mean of x0 = 0 and 1
    assert np.allclose(out[1][0], boxes[2])


@pytest.mark.parametrize("name", ["blazeface-short", "blazeface-full"])
def test_detects_one_face_with_sensible_keypoints(config, lfw_samples, name):
    from dataclasses import replace

    det = build_detector(replace(config, models=replace(config.models, detector=name)))
    for path in lfw_samples.values():
        faces = det(read_image(path))
        assert len(faces) >= 1, path
        f = max(faces, key=lambda f: f.score)
        x0, y0, x1, y1 = f.box
        assert 40 < x1 - x0 < 200 and 60 < (x0 + x1) / 2 < 190, (
            path,
            f.box,
        )  # LFW faces sit centred
        re, le, nose, mouth = (
            f.keypoint(k) for k in ("right_eye", "left_eye", "nose_tip", "mouth")
        )
        assert re[0] < le[0]  # the subject's right eye is on the image's left
        assert max(re[1], le[1]) < nose[1] < mouth[1]
        assert x0 <= nose[0] <= x1 and y0 <= nose[1] <= y1


def test_letterbox_maps_back_to_frame_pixels(config, lfw_samples):
    det = build_detector(config)
    img = read_image(lfw_samples["Tony_Blair_0006"]).rgb
    canvas = np.full((330, 280, 3), 90, np.uint8)  # a portrait frame: padded left and right
    canvas[60:310, 20:270] = img
    a = det(Frame(img))[0]
    b = det(Frame(canvas))[0]
    assert np.allclose(np.array(b.box) - [20, 60, 20, 60], a.box, atol=6)
    assert np.allclose(b.keypoints - [20, 60], a.keypoints, atol=6)


def test_no_faces_in_a_blank_or_noise_frame(config):
    det = build_detector(config)
    assert det(Frame(np.full((240, 320, 3), 128, np.uint8))) == []
    rng = np.random.default_rng(0)
    assert det(Frame(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))) == []


def test_min_face_px_drops_small_faces(config, lfw_samples):
    from dataclasses import replace

    frame = read_image(lfw_samples["Colin_Powell_0038"])
    assert build_detector(config)(frame)
    big = replace(config, detect=replace(config.detect, min_face_px=240))
    assert build_detector(big)(frame) == []


def test_detector_with_the_wrong_shape_is_refused(model_dir):
    from edge.errors import ModelError

    entry = load_manifest()["blazeface-full"]
    with pytest.raises(ModelError, match="detector input shape"):
        FaceDetector(
            model_dir / "blazeface-short.tflite", DetectorSpec(entry.spec["input_size"], (4,), 1)
        )
