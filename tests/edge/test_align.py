import math

import cv2
import numpy as np
import pytest

from edge.align import align, crop_geometry
from edge.cards import CropRecipe
from edge.images import read_image
from edge.pipeline import build_detector
from edge.quality import pose
from edge.types import Face, Frame


def _face(kps, box=(0, 0, 100, 100)):
    return Face(box=box, score=0.9, keypoints=np.asarray(kps, np.float32))


LEVEL = [[40, 40], [60, 40], [50, 55], [50, 70], [30, 45], [70, 45]]


def test_landmark_box_is_centred_between_eyes_and_mouth():
    cx, cy, side, angle = crop_geometry(_face(LEVEL), CropRecipe("landmarks", 0.0, True))
    assert angle == 0.0
    assert cx == pytest.approx(50) and 40 < cy < 70
    m = crop_geometry(_face(LEVEL), CropRecipe("landmarks", 0.2, True))
    assert m[2] == pytest.approx(side * 1.4)


def test_tilted_eyes_give_the_roll_angle():
    kps = np.array(LEVEL, np.float32)
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    rot = (kps - 50) @ np.array([[c, s], [-s, c]], np.float32) + 50
    _, _, _, angle = crop_geometry(_face(rot), CropRecipe("landmarks", 0.0, True))
    assert math.degrees(angle) == pytest.approx(20, abs=0.01)
    assert crop_geometry(_face(rot), CropRecipe("landmarks", 0.0, False))[3] == 0.0


@pytest.mark.parametrize("degrees", [-25, 15])
def test_alignment_levels_a_tilted_face(config, lfw_samples, degrees):
    det = build_detector(config)
    img = read_image(lfw_samples["Serena_Williams_0001"]).rgb
    m = cv2.getRotationMatrix2D((125, 125), degrees, 1.0)
    tilted = cv2.warpAffine(img, m, (250, 250), borderMode=cv2.BORDER_REFLECT)
    face = det(Frame(tilted))[0]
    assert abs(pose(face)[2]) > abs(degrees) * 0.7  # the detector sees the tilt
    out = align(Frame(tilted), face, CropRecipe("landmarks", 0.2, True), (160, 160))
    assert out.rgb.shape == (160, 160, 3) and out.rgb.dtype == np.uint8
    again = det(Frame(out.rgb))[0]
    assert abs(pose(again)[2]) < 5  # levelled


def test_crop_leaving_the_frame_is_padded_not_an_error():
    frame = Frame(np.full((100, 100, 3), 200, np.uint8))
    near_edge = _face(np.array(LEVEL, np.float32) - 45)  # eyes near the top-left corner
    out = align(frame, near_edge, CropRecipe("landmarks", 0.3, True), (112, 96))
    assert out.rgb.shape == (112, 96, 3)


def test_large_faces_are_downscaled_without_aliasing():
    # A fine stripe pattern must average to grey, not alias into bands.
    stripes = np.zeros((1000, 1000, 3), np.uint8)
    stripes[:, ::2] = 255
    face = _face(np.array(LEVEL, np.float32) * 10, box=(0, 0, 1000, 1000))
    out = align(Frame(stripes), face, CropRecipe("box", 0.0, False), (50, 50))
    assert out.rgb.std() < 10 and abs(out.rgb.mean() - 127.5) < 10
