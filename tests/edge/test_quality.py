import cv2
import numpy as np
import pytest

from edge.align import align
from edge.cards import CropRecipe
from edge.images import read_image
from edge.pipeline import build_detector
from edge.quality import measure, pose
from edge.types import Face, Frame


def _face(kps):
    return Face(box=(0, 0, 100, 100), score=0.9, keypoints=np.asarray(kps, np.float32))


def test_frontal_pose_is_near_zero():
    yaw, pitch, roll = pose(_face([[40, 40], [60, 40], [50, 49], [50, 60], [30, 45], [70, 45]]))
    assert abs(yaw) < 1 and abs(pitch) < 5 and abs(roll) < 1


def test_turned_head_gives_yaw_sign():
    yaw_left, _, _ = pose(_face([[40, 40], [60, 40], [56, 49], [53, 60], [30, 45], [70, 45]]))
    yaw_right, _, _ = pose(_face([[40, 40], [60, 40], [44, 49], [47, 60], [30, 45], [70, 45]]))
    assert yaw_left > 20 and yaw_right < -20


def test_blur_and_darkness_show_in_the_measures(config, lfw_samples):
    det = build_detector(config)
    frame = read_image(lfw_samples["Laura_Bush_0001"])
    face = det(frame)[0]
    recipe = CropRecipe("landmarks", 0.1, True)
    sharp = measure(align(frame, face, recipe, (160, 160)))
    blurred = measure(
        align(Frame(cv2.GaussianBlur(frame.rgb, (0, 0), 3)), face, recipe, (160, 160))
    )
    dark = measure(align(Frame((frame.rgb * 0.2).astype(np.uint8)), face, recipe, (160, 160)))
    assert blurred.sharpness < sharp.sharpness / 3
    assert dark.brightness < sharp.brightness / 3
    assert sharp.face_px == pytest.approx(min(face.width, face.height))
    assert set(sharp.as_dict()) == {
        "face_px",
        "sharpness",
        "brightness",
        "contrast",
        "yaw",
        "pitch",
        "roll",
        "landmarks",
    }
