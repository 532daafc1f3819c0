"""edge.landmarks (YuNet's five points) and the template warp it feeds (edge.align)."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from edge.align import align, similarity_transform, template_matrix
from edge.cards import CropRecipe
from edge.errors import ModelError
from edge.images import read_image
from edge.manifest import load_manifest
from edge.pipeline import Cropper, build_detector, build_landmarker, build_pipeline
from edge.types import Face, Frame, Landmarks

ARCFACE = {
    "right_eye": [38.2946, 51.6963],
    "left_eye": [73.5318, 51.5014],
    "nose_tip": [56.0252, 71.7366],
    "mouth_right": [41.5493, 92.3655],
    "mouth_left": [70.7299, 92.2041],
}
FIVE = CropRecipe.from_dict({"method": "template", "template": ARCFACE})


def test_similarity_transform_recovers_a_known_one_without_reflecting():
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 200, (5, 2))
    a, k = math.radians(17), 0.4
    rot = k * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    dst = src @ rot.T + (12.0, -7.0)
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], rot, atol=1e-9) and np.allclose(m[:, 2], (12.0, -7.0), atol=1e-7)
    mirrored = dst * (-1, 1)  # a mirror image is not reachable by rotation and scale
    assert np.linalg.det(similarity_transform(src, mirrored)[:, :2]) > 0
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform(np.ones((4, 2)), dst[:4])


def _face_with_landmarks(points: np.ndarray) -> Face:
    kps = np.zeros((6, 2), np.float32)
    kps[:3], kps[3] = points[:3], points[3:].mean(axis=0)
    x0, y0 = points.min(axis=0) - 30
    x1, y1 = points.max(axis=0) + 30
    return Face(
        (float(x0), float(y0), float(x1), float(y1)),
        0.9,
        kps,
        Landmarks(tuple(ARCFACE), points, "test"),
    )


@pytest.mark.parametrize("scale, degrees", [(3.0, 0.0), (1.5, 20.0), (0.8, -35.0), (12.0, 5.0)])
def test_template_warp_puts_the_landmarks_on_the_template(scale, degrees):
    """Dots drawn at a face's five landmarks land on the template's points after the warp."""
    a = math.radians(degrees)
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    tpl = np.array(list(ARCFACE.values()))
    pts = (tpl - 56) @ rot.T + (700, 600)
    img = np.zeros((1400, 1400, 3), np.uint8)
    for x, y in pts:
        cv2.circle(img, (int(round(x)), int(round(y))), max(2, int(3 * scale)), (255, 255, 255), -1)
    out = align(Frame(img), _face_with_landmarks(pts), FIVE, (112, 112)).rgb
    assert out.shape == (112, 112, 3)
    grey = out[..., 0].astype(np.float32)
    for tx, ty in tpl:
        x0, y0 = int(tx) - 6, int(ty) - 6
        win = grey[y0 : y0 + 13, x0 : x0 + 13]
        ys, xs = np.mgrid[0:13, 0:13]
        cx, cy = (win * xs).sum() / win.sum() + x0, (win * ys).sum() / win.sum() + y0
        assert math.hypot(cx - tx, cy - ty) < 1.0, (scale, degrees, (tx, ty), (cx, cy))


def test_large_faces_are_shrunk_without_aliasing():
    stripes = np.zeros((2000, 2000, 3), np.uint8)
    stripes[:, ::2] = 255
    pts = (np.array(list(ARCFACE.values())) - 56) * 12 + 1000
    out = align(Frame(stripes), _face_with_landmarks(pts), FIVE, (112, 112)).rgb
    assert out.std() < 10 and abs(out.mean() - 127.5) < 10


def test_without_landmarks_the_stand_in_uses_the_detectors_four_points():
    pts = (np.array(list(ARCFACE.values())) - 56) * 2 + 200
    face = _face_with_landmarks(pts)
    bare = Face(face.box, face.score, face.keypoints, None)
    m = template_matrix(bare, FIVE)  # eyes and nose exact, mouth centre onto the corners' midpoint
    mapped = np.c_[pts, np.ones(5)] @ m.T
    assert np.allclose(mapped[:3], np.array(list(ARCFACE.values()))[:3], atol=0.5)


def test_a_card_asking_for_points_nobody_gives_is_refused(config):
    with pytest.raises(ModelError) as info:
        Cropper(FIVE, (112, 112), landmarker=None, where="sface.float32.tflite.card.json")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(
        "sface.float32.tflite.card.json: crop needs landmarks mouth_left, mouth_right"
    )
    assert "models.landmarker: yunet" in msg
    with pytest.raises(ModelError, match="crop needs landmarks"):
        build_pipeline(replace(config, models=replace(config.models, landmarker=None)))
    # A recipe that the detector's own keypoints serve does not load the pass at all.
    four = CropRecipe.from_dict(
        {"method": "template", "template": {k: ARCFACE[k] for k in ("right_eye", "left_eye")}}
    )
    assert Cropper(four, (112, 112), landmarker=build_landmarker(config)).landmarker is None


def test_yunet_finds_the_five_points_near_blazefaces(config, lfw_samples):
    det, lm = build_detector(config), build_landmarker(config)
    assert lm is not None and load_manifest()["yunet"].license == "MIT"
    for path in lfw_samples.values():
        frame = read_image(path)
        face = det(frame)[0]
        out = lm(frame, face)
        assert out.landmarks is not None and out.landmarks.source == "yunet", path.name
        eye_dist = float(np.linalg.norm(face.keypoint("left_eye") - face.keypoint("right_eye")))
        for name in ("right_eye", "left_eye", "nose_tip"):
            assert (
                np.linalg.norm(out.landmarks.point(name) - face.keypoint(name)) < 0.25 * eye_dist
            ), (path.name, name)
        corners = (out.landmarks.point("mouth_right") + out.landmarks.point("mouth_left")) / 2
        assert np.linalg.norm(corners - face.keypoint("mouth")) < 0.35 * eye_dist, (
            path.name
        )  # corners sit a little higher
        assert (
            out.landmarks.point("mouth_right")[0]
            < face.keypoint("mouth")[0]
            < out.landmarks.point("mouth_left")[0]
        )


def test_no_face_in_the_region_means_no_landmarks_and_a_frame_that_never_votes(config):
    from edge.enroll import problems
    from edge.policy import Policy

    flat = Frame(np.full((480, 640, 3), 128, np.uint8))
    kps = np.array(
        [[300, 220], [340, 220], [320, 245], [320, 270], [280, 230], [360, 230]], np.float32
    )
    ghost = Face((270.0, 190.0, 370.0, 300.0), 0.9, kps)  # a face box where there is no face
    lm = build_landmarker(config)
    assert lm(flat, ghost).landmarks is None and lm.misses == 1
    result = build_pipeline(config).process(flat, ghost)
    assert result.quality.landmarks == 0.0 and result.aligned.rgb.shape == (112, 112, 3)
    policy = Policy(
        replace(config.policy, min_sharpness=0.0, min_brightness=0.0, min_face_px=0), config.match
    )
    assert policy.gate(result.quality) == "low_quality"
    assert any(
        "eyes, nose and mouth not all found" in p for p in problems(result.quality, config.policy)
    )


def test_a_corrupt_landmark_model_is_one_line(tmp_path):
    from edge.landmarks import YuNetLandmarks

    bad = tmp_path / "yunet.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ModelError) as info:
        YuNetLandmarks(bad)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{bad}: OpenCV cannot load")
