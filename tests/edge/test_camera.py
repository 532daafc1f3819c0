from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from fakes import FakeCapture, FakeClock, FakePicamera2, frame_value, grey_of, solid, write_frames

from edge.camera import (
    CAMERAS,
    Camera,
    CameraBase,
    CameraStopped,
    CorruptFrame,
    EndOfStream,
    build_camera,
)
from edge.camera.opencv import OpenCVCamera
from edge.camera.picamera2 import PICAMERA2_MISSING, Picamera2Camera
from edge.camera.reconnect import ReconnectingCamera
from edge.camera.replay import ReplayCamera
from edge.config import CameraConfig
from edge.errors import CameraError
from edge.types import Frame

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def assert_colour(rgb: np.ndarray, expected: tuple[int, int, int], tol: int = 12) -> None:
    got = rgb.reshape(-1, 3).mean(axis=0)
    assert np.all(np.abs(got - expected) <= tol), f"mean colour {got.round()} != {expected}"


# ---------------------------------------------------------------------------- replay: folders and files


def test_replay_folder_plays_images_sorted_by_name(tmp_path):
    # Created out of name order, so directory order would differ from sorted order.
    write_frames(tmp_path, 1, prefix="c")
    write_frames(tmp_path, 1, prefix="a")
    cv2.imwrite(str(tmp_path / "b_000.PNG"), np.full((48, 64, 3), 99, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".a_hidden.jpg").write_bytes(b"AppleDouble junk")
    clock = FakeClock(start=50.0)
    with ReplayCamera(tmp_path, clock=clock, sleep=clock.sleep) as cam:
        frames = [cam.read() for _ in range(3)]
    assert [Path(f.source).name for f in frames] == ["a_000.jpg", "b_000.PNG", "c_000.jpg"]
    assert [f.index for f in frames] == [0, 1, 2]
    assert all(f.timestamp == 50.0 for f in frames)
    assert frames[0].rgb.shape == (48, 64, 3) and frames[0].rgb.dtype == np.uint8
    assert grey_of(frames[1].rgb) == 99
    assert isinstance(cam, Camera)


def test_replay_explicit_list_keeps_its_order(tmp_path):
    paths = write_frames(tmp_path, 3)
    cam = ReplayCamera(list(reversed(paths)))
    cam.open()
    got = [grey_of(cam.read().rgb) for _ in range(3)]
    assert got == [frame_value(2), frame_value(1), frame_value(0)]
    with pytest.raises(EndOfStream):
        cam.read()


def test_replay_end_of_stream_is_a_camera_error_and_stays_ended(tmp_path):
    write_frames(tmp_path, 2)
    cam = ReplayCamera(tmp_path)
    cam.open()
    cam.read(), cam.read()
    for _ in range(2):
        with pytest.raises(EndOfStream, match="end of the 2 images") as info:
            cam.read()
        assert isinstance(info.value, CameraError)


def test_replay_loop_starts_over_and_keeps_counting(tmp_path):
    write_frames(tmp_path, 2)
    with ReplayCamera(tmp_path, loop=True) as cam:
        frames = [cam.read() for _ in range(5)]
    assert [Path(f.source).name for f in frames] == ["frame_000.jpg", "frame_001.jpg"] * 2 + [
        "frame_000.jpg"
    ]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]


def test_replay_corrupt_file_is_one_corrupt_frame_then_playback_continues(tmp_path):
    paths = write_frames(tmp_path, 3)
    paths[1].write_bytes(b"this is not a jpeg")
    with ReplayCamera(tmp_path) as cam:
        assert grey_of(cam.read().rgb) == frame_value(0)
        with pytest.raises(CorruptFrame, match=re.escape("frame_001.jpg")) as info:
            cam.read()
        nxt = cam.read()
    assert "\n" not in str(info.value)
    assert grey_of(nxt.rgb) == frame_value(2)
    assert nxt.index == 2  # the corrupt file used up its position


def test_replay_empty_folder_and_missing_path_name_the_path(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(CameraError, match=f"{tmp_path}: no images"):
        ReplayCamera(tmp_path).open()
    missing = tmp_path / "nope"
    with pytest.raises(CameraError, match=f"{missing}: no such file or folder"):
        ReplayCamera(missing).open()
    with pytest.raises(CameraError, match="empty"):
        ReplayCamera([]).open()


def test_replay_read_before_open_or_after_close_is_refused(tmp_path):
    write_frames(tmp_path, 1)
    cam = ReplayCamera(tmp_path)
    with pytest.raises(CameraError, match="not open"):
        cam.read()
    with cam:
        cam.read()
    cam.close()  # idempotent
    with pytest.raises(CameraError, match="not open"):
        cam.read()


# ---------------------------------------------------------------------------- replay: pacing


def test_replay_paces_at_fps_with_the_injected_clock(tmp_path):
    write_frames(tmp_path, 6)
    clock = FakeClock(start=0.0)
    with ReplayCamera(tmp_path, fps=10, clock=clock, sleep=clock.sleep) as cam:
        first = cam.read()  # the first frame is not held back
        second = cam.read()  # a reader that takes no time waits a whole period
        clock.advance(0.03)
        cam.read()  # work done in between is subtracted from the wait
        clock.advance(0.5)
        late = cam.read()  # a slow reader gets the next frame at once ...
        after_late = cam.read()  # ... and the schedule restarts from there: no burst
    assert clock.sleeps == pytest.approx([0.1, 0.07, 0.1])
    assert (first.timestamp, second.timestamp) == pytest.approx((0.0, 0.1))
    assert after_late.timestamp - late.timestamp == pytest.approx(0.1)


def test_replay_without_fps_never_sleeps(tmp_path):
    write_frames(tmp_path, 3)
    clock = FakeClock()
    with ReplayCamera(tmp_path, fps=None, clock=clock, sleep=clock.sleep) as cam:
        for _ in range(3):
            cam.read()
    assert clock.sleeps == []


# ---------------------------------------------------------------------------- replay: video


def write_video(path: Path, greys: list[int], size: tuple[int, int] = (64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, size)
    assert writer.isOpened(), "this OpenCV cannot write MJPG .avi"
    for g in greys:
        writer.write(np.full((size[1], size[0], 3), g, np.uint8))
    writer.release()
    return path


def test_replay_video_names_each_frame_and_ends(tmp_path):
    video = write_video(tmp_path / "clip.avi", [30, 90, 150])
    with ReplayCamera(video) as cam:
        frames = [cam.read() for _ in range(3)]
        with pytest.raises(EndOfStream, match=re.escape("clip.avi")):
            cam.read()
    assert [f.source for f in frames] == [f"{video}#frame={n}" for n in range(3)]
    assert [grey_of(f.rgb) for f in frames] == pytest.approx([30, 90, 150], abs=3)
    assert frames[0].rgb.shape == (48, 64, 3)


def test_replay_video_loops(tmp_path):
    video = write_video(tmp_path / "clip.avi", [30, 150])
    with ReplayCamera(video, loop=True) as cam:
        frames = [cam.read() for _ in range(3)]
    assert [f.source.rsplit("#", 1)[1] for f in frames] == ["frame=0", "frame=1", "frame=0"]
    assert [f.index for f in frames] == [0, 1, 2]


def test_replay_video_converts_bgr_to_rgb(tmp_path):
    video = tmp_path / "red.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    writer.write(np.full((48, 64, 3), (0, 0, 255), np.uint8))  # red, in BGR
    writer.release()
    with ReplayCamera(video) as cam:
        assert_colour(cam.read().rgb, RED, tol=20)


def test_replay_unreadable_video_is_a_camera_error_naming_it(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 64)
    with (
        pytest.raises(CameraError, match=re.escape("broken.mp4")) as info,
        ReplayCamera(bad) as cam,
    ):
        cam.read()
    assert not isinstance(info.value, EndOfStream)


# ---------------------------------------------------------------------------- OpenCV


def test_opencv_usb_index_is_configured_and_frames_come_out_rgb():
    cap = FakeCapture([solid(BLUE[::-1]), solid(RED[::-1])])  # scripted in BGR
    clock = FakeClock(start=7.0)
    with OpenCVCamera("0", width=1280, height=960, fps=15, capture_factory=cap, clock=clock) as cam:
        a, b = cam.read(), cam.read()
    assert cap.source == 0  # an int: V4L2 index, not a file called "0"
    assert cap.props[cv2.CAP_PROP_FRAME_WIDTH] == 1280
    assert cap.props[cv2.CAP_PROP_FRAME_HEIGHT] == 960
    assert cap.props[cv2.CAP_PROP_FPS] == 15
    assert cap.props[cv2.CAP_PROP_BUFFERSIZE] == 1
    assert_colour(a.rgb, BLUE, tol=0)
    assert_colour(b.rgb, RED, tol=0)
    assert (a.index, b.index, a.source, b.timestamp) == (0, 1, "camera 0", 7.0)
    assert cap.released


def test_opencv_no_frame_is_a_one_line_error_naming_the_device():
    cap = FakeCapture([solid(RED), None])
    with OpenCVCamera("0", width=640, height=480, fps=10, capture_factory=cap) as cam:
        cam.read()
        with pytest.raises(CameraError) as info:
            cam.read()
    assert str(info.value) == "camera 0: no frame (unplugged?)"


def test_opencv_open_failure_names_the_device_and_releases():
    cap = FakeCapture(opened=False)
    cam = OpenCVCamera("2", width=640, height=480, fps=10, capture_factory=cap)
    with pytest.raises(CameraError, match=r"^camera 2: cannot open"):
        cam.open()
    assert cap.released
    cam.close()  # nothing open: still fine


def test_opencv_stream_url_is_passed_through_and_its_password_kept_out_of_messages():
    url = "rtsp://admin:hunter2@10.0.0.5:554/stream1"
    cap = FakeCapture([None])
    cam = OpenCVCamera(url, width=640, height=480, fps=10, capture_factory=cap)
    cam.open()
    assert cap.source == url
    with pytest.raises(CameraError) as info:
        cam.read()
    assert "hunter2" not in str(info.value) and "hunter2" not in cam.name
    assert "10.0.0.5:554/stream1" in str(info.value)


def test_opencv_exception_from_backend_becomes_camera_error():
    cap = FakeCapture([cv2.error("GStreamer: pipeline have not been created\nmore detail")])
    with (
        OpenCVCamera("0", width=640, height=480, fps=10, capture_factory=cap) as cam,
        pytest.raises(CameraError, match="camera 0: read failed") as info,
    ):
        cam.read()
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------- picamera2


@pytest.mark.parametrize("colour", [RED, GREEN, BLUE])
def test_picamera2_colour_order_and_sizes(colour):
    calls: list = []
    cam = Picamera2Camera(
        fps=12.5, picamera2_factory=lambda: FakePicamera2(solid(colour), calls=calls)
    )
    with cam:
        frame = cam.read()
    assert frame.rgb.shape == (480, 640, 3) and frame.rgb.dtype == np.uint8
    assert frame.hires is not None and frame.hires.shape == (960, 1280, 3)
    assert_colour(frame.rgb, colour)  # lores: YUV420 (I420) -> RGB
    assert_colour(frame.hires, colour, tol=0)  # main: "RGB888" is BGR in memory
    assert (frame.source, frame.index) == ("picamera2", 0)
    names = [c[0] for c in calls]
    assert names == [
        "__init__",
        "create_preview_configuration",
        "configure",
        "start",
        "capture_arrays",
        "stop",
        "close",
    ]
    assert calls[1][1] == {
        "main": {"size": (1280, 960), "format": "RGB888"},
        "lores": {"size": (640, 480), "format": "YUV420"},
        "controls": {"FrameRate": 12.5},
    }
    assert calls[4][1] == ["main", "lores"]


def test_picamera2_lores_same_view_as_main():
    picture = np.zeros((240, 320, 3), np.uint8)
    picture[:, :160] = RED  # left half red, right half blue
    picture[:, 160:] = BLUE
    cam = Picamera2Camera(
        size=(800, 600),
        detect_size=(400, 300),
        fps=10,
        picamera2_factory=lambda: FakePicamera2(picture),
    )
    with cam:
        frame = cam.read()
    assert frame.rgb.shape == (300, 400, 3) and frame.hires.shape == (600, 800, 3)
    assert_colour(frame.rgb[:, :190], RED)
    assert_colour(frame.rgb[:, 210:], BLUE)
    assert_colour(frame.hires[:, :390], RED, tol=0)


def test_picamera2_lores_row_padding_is_cropped():
    cam = Picamera2Camera(
        size=(640, 480),
        detect_size=(320, 240),
        fps=10,
        picamera2_factory=lambda: FakePicamera2(solid(RED), lores_stride=384),
    )
    with cam:
        frame = cam.read()
    assert frame.rgb.shape == (240, 320, 3)
    assert_colour(frame.rgb, RED)


def test_picamera2_missing_gives_the_apt_hint(monkeypatch):
    monkeypatch.setitem(
        sys.modules, "picamera2", None
    )  # makes `import picamera2` raise ImportError
    with pytest.raises(CameraError) as info:
        Picamera2Camera(fps=10).open()
    assert str(info.value) == PICAMERA2_MISSING
    assert "apt install python3-picamera2" in str(info.value) and "--system-site-packages" in str(
        info.value
    )


def test_picamera2_is_imported_lazily_from_the_real_module_name(monkeypatch):
    module = types.ModuleType("picamera2")
    module.Picamera2 = lambda: FakePicamera2(solid(GREEN))
    monkeypatch.setitem(sys.modules, "picamera2", module)
    with Picamera2Camera(fps=10) as cam:
        assert_colour(cam.read().hires, GREEN, tol=0)


def test_importing_edge_camera_does_not_import_picamera2(tmp_path):
    # A picamera2 that fails loudly if anything imports it.
    (tmp_path / "picamera2.py").write_text("raise SystemExit('picamera2 was imported')\n")
    code = "import sys, edge.camera; assert 'picamera2' not in sys.modules; print('ok')"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[2])]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_picamera2_open_failure_is_one_line():
    def no_camera():
        return FakePicamera2(fail_on_open=IndexError("list index out of range"))

    with pytest.raises(CameraError) as info:
        Picamera2Camera(fps=10, picamera2_factory=no_camera).open()
    msg = str(info.value)
    assert (
        msg.startswith("picamera2: cannot start the camera")
        and "IndexError: list index out of range" in msg
    )
    assert "\n" not in msg


def test_picamera2_start_failure_releases_the_half_open_camera():
    calls: list = []

    def fake():
        return FakePicamera2(
            fail_on_start=RuntimeError("Failed to start camera: Device or resource busy"),
            calls=calls,
        )

    cam = Picamera2Camera(fps=10, picamera2_factory=fake)
    with pytest.raises(CameraError, match="Device or resource busy"):
        cam.open()
    assert [c[0] for c in calls][-2:] == ["stop", "close"]


def test_picamera2_capture_failure_is_a_one_line_camera_error_and_close_is_idempotent():
    calls: list = []
    cam = Picamera2Camera(
        fps=10, picamera2_factory=lambda: FakePicamera2(fail_after=1, calls=calls)
    )
    cam.open()
    cam.read()
    with pytest.raises(
        CameraError, match="picamera2: capture failed: RuntimeError: Camera frontend has timed out"
    ) as info:
        cam.read()
    assert "\n" not in str(info.value)
    cam.close()
    cam.close()
    assert [c[0] for c in calls].count("close") == 1


def test_picamera2_exposure_compensation_is_exposure_value_clamped_to_the_camera_range():
    calls: list = []
    fake = FakePicamera2(solid((100, 100, 100)), control_delay=1, calls=calls)
    fake.camera_controls["ExposureValue"] = (-4.0, 4.0, 0.0)
    cam = Picamera2Camera(fps=10, picamera2_factory=lambda: fake)
    assert cam.controls_exposure
    with cam:
        before = cam.read().rgb.mean()
        cam.set_exposure_compensation(1.5)
        cam.set_exposure_compensation(9.0)  # beyond what this camera takes: its limit
        cam.read()
        after = cam.read().rgb.mean()
    sets = [c[1] for c in calls if c[0] == "set_controls"]
    assert sets == [{"ExposureValue": 1.5}, {"ExposureValue": 4.0}]
    assert after > before + 50  # the fake renders the longer exposure


def test_picamera2_without_exposure_value_or_refusing_it_is_one_camera_error():
    cam = Picamera2Camera(fps=10, picamera2_factory=lambda: FakePicamera2(exposure_value=False))
    with pytest.raises(CameraError, match="not open"):
        cam.set_exposure_compensation(1.0)
    with (
        cam,
        pytest.raises(CameraError, match="picamera2: this camera has no ExposureValue control"),
    ):
        cam.set_exposure_compensation(1.0)
    boom = RuntimeError("Control ExposureValue failed\nlibcamera says more")
    cam = Picamera2Camera(fps=10, picamera2_factory=lambda: FakePicamera2(fail_set_controls=boom))
    with (
        cam,
        pytest.raises(
            CameraError, match="picamera2: setting ExposureValue failed: RuntimeError: Control"
        ) as info,
    ):
        cam.set_exposure_compensation(1.0)
    assert "\n" not in str(info.value)


def test_cameras_without_exposure_control_say_so():
    assert (
        not ReplayCamera("x").controls_exposure
        and not OpenCVCamera("0", width=64, height=48, fps=5).controls_exposure
    )
    with pytest.raises(CameraError, match="camera 0: cannot set its exposure compensation"):
        OpenCVCamera("0", width=64, height=48, fps=5).set_exposure_compensation(1.0)


# ---------------------------------------------------------------------------- reconnecting


class ScriptedCamera(CameraBase):
    """A camera from a plan: an exception (open fails), an int n (n frames, then unplugged), None (frames forever)."""

    def __init__(self, plan, log: list[str]):
        self.name = "camera 9"
        self.plan = plan
        self.log = log
        self.frames = 0

    def open(self):
        self.log.append("open")
        if isinstance(self.plan, BaseException):
            raise self.plan

    def read(self) -> Frame:
        if isinstance(self.plan, int) and self.frames >= self.plan:
            raise CameraError(f"{self.name}: no frame (unplugged?)")
        self.frames += 1
        return Frame(rgb=np.zeros((4, 4, 3), np.uint8), source=self.name, index=self.frames)

    def close(self):
        self.log.append("close")


def scripted(plans, log=None):
    log = [] if log is None else log
    plans = list(plans)
    return (lambda: ScriptedCamera(plans.pop(0), log)), log


def test_reconnect_backs_off_doubling_to_the_cap_and_recovers(caplog):
    unplugged = CameraError("camera 9: cannot open (unplugged?)")
    factory, events = scripted([unplugged] * 8 + [None])
    clock = FakeClock()
    cam = ReconnectingCamera(
        factory, initial_backoff=0.5, max_backoff=30, clock=clock, sleep=clock.sleep
    )
    with caplog.at_level(logging.WARNING, logger="edge.camera"):
        cam.open()
        frame = cam.read()
    assert frame.source == "camera 9"
    assert clock.sleeps == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert cam.outages == 1 and cam.connected
    assert events.count("close") == 8  # every broken camera was closed
    warnings = [r.getMessage() for r in caplog.records if "reconnecting" in r.getMessage()]
    assert warnings == ["camera 9: cannot open (unplugged?); reconnecting (outage 1)"]


def test_reconnect_rides_out_a_pulled_cable_and_counts_each_outage():
    factory, events = scripted([2, 1, None])
    clock = FakeClock()
    cam = ReconnectingCamera(
        factory, initial_backoff=0.5, max_backoff=30, clock=clock, sleep=clock.sleep
    )
    with cam:
        frames = [cam.read() for _ in range(6)]
    assert len(frames) == 6
    assert cam.outages == 2
    assert clock.sleeps == [0.5, 0.5]  # the backoff starts over once frames flow again
    assert events == ["open", "close", "open", "close", "open", "close"]


def test_reconnect_backoff_only_resets_on_a_frame_not_on_open():
    factory, _ = scripted([0, 0, 0, None])  # opens fine, but never delivers
    clock = FakeClock()
    cam = ReconnectingCamera(
        factory, initial_backoff=0.5, max_backoff=30, clock=clock, sleep=clock.sleep
    )
    cam.read()
    assert clock.sleeps == [0.5, 1, 2]
    assert cam.outages == 1


def test_reconnect_gives_up_after_the_deadline_and_never_spins():
    factory, _ = scripted([CameraError("camera 9: gone")] * 100)
    clock = FakeClock()
    cam = ReconnectingCamera(
        factory, initial_backoff=1, max_backoff=4, give_up_after=10, clock=clock, sleep=clock.sleep
    )
    with pytest.raises(
        CameraError, match=r"camera 9: no frame for 10 s, giving up; last error: camera 9: gone$"
    ) as info:
        cam.read()
    assert not isinstance(info.value, CameraStopped)
    assert clock.sleeps == [1, 2, 4, 3]  # the last wait is cut to the deadline
    assert not cam.connected
    for _ in range(3):  # a caller that keeps asking still waits between attempts
        before = len(clock.sleeps)
        with pytest.raises(CameraError):
            cam.read()
        assert len(clock.sleeps) == before + 1 and clock.sleeps[-1] == 4


def test_reconnect_passes_end_of_stream_and_corrupt_frames_through():
    class Glitchy(ScriptedCamera):
        def read(self):
            raise CorruptFrame("camera 9: one bad frame")

    clock = FakeClock()
    cam = ReconnectingCamera(
        lambda: Glitchy(None, []), initial_backoff=1, max_backoff=4, clock=clock, sleep=clock.sleep
    )
    with pytest.raises(CorruptFrame):
        cam.read()
    assert (cam.outages, clock.sleeps) == (0, [])


def test_stop_ends_the_reconnect_loop_between_attempts():
    factory, events = scripted([CameraError("camera 9: gone")] * 100)
    clock = FakeClock()

    def sleep(seconds):
        clock.sleep(seconds)
        if len(clock.sleeps) == 2:
            cam.stop()  # as a SIGTERM handler would, mid-outage

    cam = ReconnectingCamera(factory, initial_backoff=0.5, max_backoff=30, clock=clock, sleep=sleep)
    with pytest.raises(CameraStopped, match="camera 9: stopped"):
        cam.read()
    assert events.count("open") == 2  # no attempt after stop()
    with pytest.raises(CameraStopped):
        cam.read()


def wait_until_inside(thread: threading.Thread, function: str, timeout: float = 5.0) -> bool:
    """Poll until ``thread`` is executing ``function``: stop() must land mid-wait, not before it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident or 0)
        while frame is not None:
            if frame.f_code.co_name == function:
                return True
            frame = frame.f_back
        time.sleep(0.001)
    return False


def test_stop_interrupts_a_long_backoff_wait_at_once():
    attempted = threading.Event()

    def factory():
        attempted.set()
        return ScriptedCamera(CameraError("camera 9: gone"), [])

    cam = ReconnectingCamera(
        factory, initial_backoff=60, max_backoff=60
    )  # no sleep injected: Event wait
    result: list[BaseException] = []

    def run():
        try:
            cam.read()
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    thread.start()
    assert attempted.wait(5)
    assert wait_until_inside(thread, "_pause"), "the reconnect loop never started its backoff wait"
    cam.stop()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - start < 5
    assert len(result) == 1 and isinstance(result[0], CameraStopped)


def test_reconnect_refuses_nonsense_backoff():
    with pytest.raises(ValueError):
        ReconnectingCamera(lambda: None, initial_backoff=0, max_backoff=1)


def test_reconnect_sets_the_exposure_again_on_the_camera_after_an_outage():
    calls: list = []
    fakes = iter([FakePicamera2(fail_after=1, calls=calls), FakePicamera2(calls=calls)])
    clock = FakeClock()
    cam = ReconnectingCamera(
        lambda: Picamera2Camera(fps=10, picamera2_factory=lambda: next(fakes)),
        initial_backoff=0.5,
        max_backoff=1,
        controls_exposure=True,
        clock=clock,
        sleep=clock.sleep,
    )
    with cam:
        cam.read()
        cam.set_exposure_compensation(-1.25)
        cam.read()  # the first camera fails here; the second one is opened and read
    names = [c[0] for c in calls]
    assert names.count("__init__") == 2
    sets = [i for i, c in enumerate(calls) if c[0] == "set_controls"]
    assert [calls[i][1] for i in sets] == [{"ExposureValue": -1.25}] * 2
    assert sets[1] > names.index("__init__", 1)  # set again on the reopened camera
    factory, _ = scripted([None])
    plain = ReconnectingCamera(factory, initial_backoff=0.5, max_backoff=1)
    with pytest.raises(CameraError, match="cannot set its exposure compensation"):
        plain.set_exposure_compensation(1.0)


# ---------------------------------------------------------------------------- registry


def test_registry_is_explicit():
    assert set(CAMERAS) == {"picamera2", "opencv", "replay"}


def test_build_camera_replay_is_not_wrapped(tmp_path):
    write_frames(tmp_path, 2)
    cam = build_camera(CameraConfig(backend="replay", device=str(tmp_path)), fps=None)
    assert isinstance(cam, ReplayCamera)
    with cam:
        assert cam.read().index == 0


def test_build_camera_picamera2_is_wrapped_and_reads(monkeypatch):
    cfg = CameraConfig(
        backend="picamera2", width=640, height=480, detect_width=320, detect_height=240, fps=5
    )
    cam = build_camera(cfg, picamera2_factory=lambda: FakePicamera2(solid(RED)))
    assert isinstance(cam, ReconnectingCamera) and cam.name == "picamera2" and cam.controls_exposure
    assert (cam.initial_backoff, cam.max_backoff) == (cfg.reopen_initial_s, cfg.reopen_max_s)
    with cam:
        frame = cam.read()
    assert frame.rgb.shape == (240, 320, 3) and frame.hires.shape == (480, 640, 3)


def test_build_camera_opencv_routes_reconnect_options_to_the_wrapper():
    cfg = CameraConfig(backend="opencv", device="1", reopen_initial_s=0.25, reopen_max_s=1.0)
    clock = FakeClock()
    cam = build_camera(
        cfg,
        capture_factory=FakeCapture(opened=False),
        clock=clock,
        sleep=clock.sleep,
        give_up_after=2,
    )
    assert (
        isinstance(cam, ReconnectingCamera) and cam.name == "camera 1" and not cam.controls_exposure
    )
    with pytest.raises(
        CameraError,
        match="camera 1: no frame for 2 s, giving up; last error: camera 1: cannot open",
    ):
        cam.open()
    assert clock.sleeps == [0.25, 0.5, 1.0, 0.25]


def test_build_camera_unknown_backend_lists_the_choices():
    with pytest.raises(
        CameraError,
        match="unknown camera backend 'gstreamer'; choose one of: picamera2, opencv, replay",
    ):
        build_camera(CameraConfig(backend="gstreamer"))
