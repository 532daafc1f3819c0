from __future__ import annotations

import numpy as np
import pytest

from edge.detect import iou
from edge.track import Tracker
from edge.types import Face


def box_iou(a, b) -> float:
    return float(iou(np.asarray(a, float), np.asarray([b], float))[0])


def _face(x0: float, y0: float, x1: float, y1: float) -> Face:
    return Face(box=(x0, y0, x1, y1), score=0.9, keypoints=np.zeros((6, 2), np.float32))


def test_iou_hand_computed():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching edges
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0  # degenerate boxes, no division by zero


def test_a_moving_face_keeps_its_id_and_new_faces_get_increasing_ids():
    t = Tracker(timeout_s=1.0)
    assert t.update([_face(0, 0, 100, 100)], 0.0) == [1]
    assert t.update([_face(5, 5, 105, 105)], 0.1) == [1]
    ids = t.update([_face(10, 10, 110, 110), _face(300, 0, 400, 100), _face(600, 0, 700, 100)], 0.2)
    assert ids == [1, 2, 3]
    assert t.update([], 0.3) == []


def test_greedy_matching_takes_the_highest_overlap_first():
    t = Tracker(iou_threshold=0.3, timeout_s=1.0)
    t.update([_face(0, 0, 100, 100)], 0.0)
    # The first face overlaps track 1 by 0.5, the second by 0.9: the second wins it.
    far, near = _face(0, 0, 100, 50), _face(0, 0, 100, 90)
    assert box_iou(far.box, (0, 0, 100, 100)) == pytest.approx(0.5)
    assert t.update([far, near], 0.1) == [2, 1]


def test_one_track_goes_to_one_face_only():
    t = Tracker(timeout_s=1.0)
    t.update([_face(0, 0, 100, 100)], 0.0)
    assert t.update([_face(0, 0, 100, 100), _face(0, 0, 100, 100)], 0.1) == [1, 2]


def test_overlap_below_threshold_starts_a_new_track():
    t = Tracker(iou_threshold=0.5, timeout_s=1.0)
    t.update([_face(0, 0, 100, 100)], 0.0)
    assert t.update([_face(50, 0, 150, 100)], 0.1) == [2]  # IoU 1/3 < 0.5


def test_zero_threshold_still_needs_some_overlap():
    t = Tracker(iou_threshold=0.0, timeout_s=1.0)
    t.update([_face(0, 0, 100, 100)], 0.0)
    assert t.update([_face(200, 0, 300, 100)], 0.1) == [2]


def test_expired_returns_and_forgets_tracks_older_than_the_timeout():
    t = Tracker(timeout_s=2.0)
    t.update([_face(0, 0, 100, 100), _face(300, 0, 400, 100)], 0.0)
    t.update([_face(300, 0, 400, 100)], 1.0)  # track 2 seen again
    assert t.expired(2.0) == []  # exactly timeout_s is not "more than"
    assert t.expired(2.01) == [1]
    assert t.expired(2.5) == []  # forgotten: reported once
    assert t.expired(3.5) == [2]
    assert len(t) == 0


def test_a_face_back_after_the_timeout_is_a_new_attempt_and_ids_are_never_reused():
    t = Tracker(timeout_s=1.0)
    t.update([_face(0, 0, 100, 100)], 0.0)
    # Not yet collected by expired(), but too old to match.
    assert t.update([_face(0, 0, 100, 100)], 1.5) == [2]
    assert t.expired(1.5) == [1]
    assert t.update([_face(500, 0, 600, 100)], 1.6) == [3]


@pytest.mark.parametrize("kwargs", [{"timeout_s": 0.0}, {"timeout_s": 1.0, "iou_threshold": 1.5}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        Tracker(**kwargs)
