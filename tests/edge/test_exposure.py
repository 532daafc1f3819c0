"""Face-metered exposure: the loop brings a badly exposed face to its target and then leaves the camera alone."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

from edge.config import ExposureConfig
from edge.exposure import FaceExposure, Metering, correction_stops, expose, meter_face

BOX = (40.0, 30.0, 120.0, 130.0)  # the face in a 160x160 picture


def scene(face_level: int, background: int = 255, texture: int = 6) -> np.ndarray:
    """A face patch (with some texture) on a background, as the camera's own metering exposed it."""
    rgb = np.full((160, 160, 3), background, np.uint8)
    rng = np.random.default_rng(0)
    face = np.clip(face_level + rng.integers(-texture, texture + 1, (100, 80, 1)), 0, 255).astype(
        np.uint8
    )
    rgb[30:130, 40:120] = face
    return rgb


def run_loop(
    cfg: ExposureConfig, picture: np.ndarray, frames: int, *, offset: float = 0.0, delay: int = 2
) -> tuple[FaceExposure, list[float]]:
    """A camera that applies each new compensation ``delay`` frames late, fed back into the loop.

    ``picture`` is the scene as the camera's own metering takes it, ``offset``
    the stops by which that metering gets the face wrong (a lamp on it).
    """
    loop, sent, applied = FaceExposure(cfg), [], 0.0
    pending: list[tuple[int, float]] = []  # (frame the change lands on, stops)
    for n in range(frames):
        while pending and pending[0][0] <= n:
            applied = pending.pop(0)[1]
        stops = loop.update(expose(picture, offset + applied), BOX, n / 10)
        if stops is not None:
            sent.append(stops)
            pending.append((n + delay, stops))
    return loop, sent


def test_expose_scales_linear_light_by_stops_and_clips_at_white():
    crops = np.array([0, 60, 128, 200, 255], np.uint8).reshape(1, 1, 5, 1)
    assert expose(crops, 0.0) is crops
    brighter, darker = expose(crops, 1.0).ravel(), expose(crops, -1.0).ravel()
    light = (crops.ravel() / 255.0) ** 2.2
    assert np.allclose(
        (brighter[1:3] / 255.0) ** 2.2, 2 * light[1:3], rtol=0.03
    )  # twice the light, unclipped
    assert (
        brighter[0] == 0 and brighter[3] == brighter[4] == 255
    )  # black stays black; bright clips at white
    assert (
        np.allclose((darker[1:] / 255.0) ** 2.2, light[1:] / 2, rtol=0.05)
        and darker.dtype == np.uint8
    )


def test_metering_reads_the_face_box_in_linear_light_and_counts_blown_pixels():
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[:, :50] = 255  # the left half of the box at white, the right half black
    m = meter_face(rgb, (25, 0, 75, 100))
    assert m is not None and m.clipped == pytest.approx(0.5, abs=0.03)
    assert m.luma == pytest.approx(0.5 ** (1 / 2.2), abs=0.02)  # half the light, not half the level
    grey = meter_face(
        np.full((100, 100, 3), 118, np.uint8), (-20, -20, 300, 300)
    )  # box beyond the picture: clipped to it
    assert (
        grey is not None and grey.luma == pytest.approx(118 / 255, abs=0.01) and grey.clipped == 0
    )
    assert meter_face(rgb, (120, 0, 150, 100)) is None


def test_correction_is_in_stops_of_light_and_steps_a_blown_face_down():
    target = 0.47
    assert correction_stops(Metering(target, 0.0), target) == pytest.approx(0.0)
    half = (0.5 * target**2.2) ** (1 / 2.2)  # half the target's light
    assert correction_stops(Metering(half, 0.0), target) == pytest.approx(1.0)
    assert np.isfinite(correction_stops(Metering(0.0, 0.0), target))  # black: no division by zero
    assert (
        correction_stops(Metering(0.55, 0.3), target) <= -1.0
    )  # blown highlights hide how far over it is


@pytest.mark.parametrize(
    "face_level, offset, texture, expect_sign",
    [
        (70, 0.0, 6, +1),  # backlit: the camera exposed the bright street, the face is dark
        (118, 1.8, 6, -1),  # a lamp on the face, a dark porch behind: over-exposed
        (118, 1.9, 40, -1),  # ... with its highlights blown to white
        (120, 0.0, 6, 0),  # already right
    ],
)
def test_the_loop_brings_the_face_to_its_target_and_stays(face_level, offset, texture, expect_sign):
    cfg = ExposureConfig()
    picture = scene(face_level, texture=texture)
    loop, sent = run_loop(cfg, picture, 60, offset=offset)
    final = meter_face(expose(picture, offset + loop.compensation), BOX)
    assert final is not None
    if expect_sign == 0:
        assert sent == [] and loop.compensation == 0.0  # already right: the camera is left alone
        return
    assert np.sign(loop.compensation) == expect_sign
    assert abs(correction_stops(final, cfg.target_face_luma)) < cfg.tolerance_stops
    assert len(sent) <= 4  # converges in a few steps, and then no more changes (no hunting)


def test_the_loop_waits_for_a_change_to_take_effect_before_metering_again():
    cfg = ExposureConfig(settle_frames=3, max_stops=4.0)
    loop = FaceExposure(cfg)
    dark = scene(40)  # needs 3.5 stops: more than one step
    first = loop.update(dark, BOX, 0.0)
    assert first is not None and first > 0
    assert loop.settling  # the frame that asked for the change was taken before it
    # The camera has not applied it yet: the same dark picture must not push it further.
    for k in range(1, 4):
        assert loop.update(dark, BOX, 0.1 * k) is None and loop.settling
    assert loop.update(dark, BOX, 0.4) is not None  # settled and still dark: the next step
    for k in range(5, 9):
        loop.update(scene(118), BOX, 0.1 * k)
    assert not loop.settling  # settled at the target: frames may be judged


def test_the_loop_never_goes_past_its_limit_and_says_so_once(caplog):
    cfg = ExposureConfig(max_stops=1.0, settle_frames=0)
    with caplog.at_level(logging.INFO, logger="edge.exposure"):
        loop, sent = run_loop(cfg, scene(15), 40, delay=0)
    assert sent and max(sent) == 1.0 and loop.compensation == 1.0
    assert sum("limit" in r.getMessage() for r in caplog.records) == 1


def test_without_a_face_the_camera_returns_to_its_own_metering():
    cfg = ExposureConfig(release_s=2.0, settle_frames=0)
    loop = FaceExposure(cfg)
    assert loop.update(scene(40), BOX, 10.0) is not None and loop.compensation > 0
    empty = np.full((160, 160, 3), 255, np.uint8)
    assert loop.update(empty, None, 11.0) is None  # a face lost for a moment keeps its exposure
    assert loop.update(empty, None, 12.0) == 0.0 and loop.compensation == 0.0
    assert loop.update(empty, None, 20.0) is None  # and is not told again


def test_the_smallest_dead_band_allowed_still_settles():
    """8-bit rounding moves the metered light a little with every change: the loop must not chase it."""
    _loop, sent = run_loop(replace(ExposureConfig(), tolerance_stops=0.05), scene(90), 80)
    assert 1 <= len(sent) <= 4
