"""Enrollment from files and from a (replayed) camera, and the users command."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from fakes import FakeClock, FakePicamera2, backlit_door

from edge.camera.replay import ReplayCamera
from edge.enroll import add_to_gallery, from_camera, from_images, problems
from edge.errors import ExitCode, NoFaceError
from edge.pipeline import build_pipeline
from edge.quality import Quality

GOOD = Quality(face_px=150, sharpness=200, brightness=120, contrast=40, yaw=0, pitch=0, roll=0)


def test_problems_explain_each_failed_gate(config):
    assert problems(GOOD, config.policy) == []
    bad = replace(GOOD, brightness=10, face_px=30, sharpness=1, yaw=50)
    text = " | ".join(problems(bad, config.policy))
    for advice in ("add light", "come closer", "hold still", "look at the camera"):
        assert advice in text


@pytest.fixture
def cfg(config, tmp_path):
    return replace(
        config,
        gallery=replace(config.gallery, path=str(tmp_path / "gallery.json")),
        policy=replace(config.policy, min_face_px=60),
    )


def test_enroll_from_files_reports_rejects_and_saves_0600(cfg, lfw_samples, tmp_path):
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    seen = []
    p = build_pipeline(cfg)
    good = from_images(
        p,
        [lfw_samples["Colin_Powell_0038"], blank, tmp_path / "missing.jpg"],
        cfg.policy,
        seen.append,
    )
    assert len(good) == 1
    assert [(a.accepted, a.reason.split(":")[0]) for a in seen][:2] == [
        (True, "ok"),
        (False, "no face found"),
    ]
    assert "cannot read" in seen[2].reason
    g = add_to_gallery(cfg, "colin", good, p.embedder)
    assert g.names() == ["colin"]
    assert stat.S_IMODE(os.stat(cfg.gallery.path).st_mode) == 0o600
    with pytest.raises(NoFaceError, match="nothing enrolled"):
        add_to_gallery(cfg, "nobody", [], p.embedder)


def test_guided_camera_enrollment_skips_bad_frames_and_says_why(cfg, lfw_samples, tmp_path):
    blur = tmp_path / "blur.jpg"
    img = cv2.imread(str(lfw_samples["Serena_Williams_0001"]))
    cv2.imwrite(str(blur), cv2.GaussianBlur(img, (0, 0), 4))
    frames = [
        blur,
        blur,
        lfw_samples["Serena_Williams_0001"],
        lfw_samples["Serena_Williams_0003"],
        lfw_samples["Serena_Williams_0001"],
    ]
    clock = FakeClock()
    cam = ReplayCamera(frames, fps=2, clock=clock, sleep=clock.sleep)
    said = []
    good = from_camera(
        build_pipeline(cfg), cam, cfg.policy, count=3, clock=clock, report=said.append
    )
    assert len(good) == 3
    refusals = [a for a in said if not a.accepted]
    assert len(refusals) == 1 and "hold still" in refusals[0].reason  # said once, not every frame


def test_guided_enrollment_times_out(cfg, tmp_path):
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((200, 200, 3), 128, np.uint8))
    clock = FakeClock()
    cam = ReplayCamera([wall], fps=1, loop=True, clock=clock, sleep=clock.sleep)
    with pytest.raises(NoFaceError, match="timed out after 5 s with 0 of 3"):
        from_camera(build_pipeline(cfg), cam, cfg.policy, count=3, timeout_s=5, clock=clock)


def _facegate(*args: str, model_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACEGATE_MODEL_DIR": str(model_dir)}
    return subprocess.run(
        [sys.executable, "-m", "edge", *args], capture_output=True, text=True, env=env
    )


def test_enroll_and_users_commands(model_dir, lfw_samples, tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text(f"gallery:\n  path: {tmp_path / 'g.json'}\npolicy:\n  min_face_px: 60\n")
    p = _facegate(
        "-c", str(conf), "enroll", "Tony", str(lfw_samples["Tony_Blair_0006"]), model_dir=model_dir
    )
    assert p.returncode == 0, p.stderr
    assert "enrolled Tony: 1 new template(s)" in p.stdout
    assert _facegate("-c", str(conf), "users", "list", model_dir=model_dir).stdout.startswith(
        "Tony\t1 template"
    )
    assert (
        _facegate(
            "-c", str(conf), "users", "rename", "Tony", "Anthony", model_dir=model_dir
        ).returncode
        == 0
    )
    bad = _facegate("-c", str(conf), "users", "remove", "Tony", model_dir=model_dir)
    assert (
        bad.returncode == ExitCode.GALLERY
        and "Traceback" not in bad.stderr
        and len(bad.stderr.splitlines()) == 1
    )
    assert (
        _facegate("-c", str(conf), "users", "remove", "Anthony", model_dir=model_dir).returncode
        == 0
    )
    assert (
        "(nobody enrolled)"
        in _facegate("-c", str(conf), "users", "list", model_dir=model_dir).stdout
    )
    bad_name = _facegate(
        "-c",
        str(conf),
        "enroll",
        "../etc",
        str(lfw_samples["Tony_Blair_0006"]),
        model_dir=model_dir,
    )
    assert bad_name.returncode == ExitCode.GALLERY


class Ticking:
    """A clock that moves on by ``step`` every time it is read (a live camera's pace)."""

    def __init__(self, step: float = 0.05) -> None:
        self.now, self.step = 100.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_guided_enrollment_meters_the_face_and_keeps_only_settled_frames(cfg, lfw_samples):
    """A visitor dark against the light fails the brightness gate until the camera is metered on the face."""
    from edge.camera.picamera2 import Picamera2Camera
    from edge.exposure import FaceExposure

    pipeline = build_pipeline(cfg)

    def enroll(exposure, stops):
        picture = backlit_door(lfw_samples["Serena_Williams_0001"], stops=stops)
        calls: list = []
        fake = FakePicamera2(picture, calls=calls)
        cam = Picamera2Camera(fps=10, picamera2_factory=lambda: fake)
        kept: list = []  # for each template: (exposure in effect on its frame, the last one asked for)

        def report(a):
            if a.accepted:
                sent = [c[1]["ExposureValue"] for c in calls if c[0] == "set_controls"]
                kept.append((fake.exposure_value, sent[-1] if sent else 0.0))

        good = from_camera(
            pipeline,
            cam,
            cfg.policy,
            count=2,
            timeout_s=3,
            min_interval_s=0,
            clock=Ticking(),
            exposure=exposure,
            report=report,
        )
        return good, kept

    # The brightness gate reads the embedder's crop: SFace's tight template crop is
    # all face, so it takes 4 stops (its mean luma 38 < 40) to fail it.
    with pytest.raises(NoFaceError, match="timed out"):
        enroll(None, -4.0)  # too dark for the gates
    for stops in (-4.0, -1.5):  # too dark; dark but passing the gates already
        good, kept = enroll(FaceExposure(cfg.exposure), stops)
        assert len(good) == 2 and len(kept) == 2
        assert all(
            in_effect == asked and asked > 0.5 for in_effect, asked in kept
        )  # settled, and metered up
