"""Frame sources and the capture thread."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.camera.base import CameraError, Frame
from kiosk.camera.capture import Capture
from kiosk.camera.opencv import OpenCVSource
from kiosk.camera.picam import Picamera2Source
from kiosk.camera.replay import ReplaySource, SimClock


class Events:
    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.restored = threading.Event()

    def __call__(self, kind: str, fields: dict[str, object]) -> None:
        self.kinds.append(kind)
        if kind == "camera_restored":
            self.restored.set()


def _frames(n: int) -> list[np.ndarray]:
    return [np.full((48, 64, 3), i, np.uint8) for i in range(n)]


def test_video_file_source_reads_every_frame_then_ends(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    src = OpenCVSource(str(path))
    src.open()
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    src.close()
    assert len(frames) == 5 and frames[0].rgb.shape == (48, 64, 3)
    assert [f.index for f in frames] == list(range(5))


def test_missing_device_raises_camera_error(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="cannot open"):
        OpenCVSource(str(tmp_path / "nope.mp4")).open()


def test_picamera2_off_a_pi_says_how_to_install_it() -> None:
    with pytest.raises(CameraError, match="python3-picamera2"):
        Picamera2Source().open()


def test_replay_with_a_sim_clock_defines_time_and_never_runs_backwards() -> None:
    clock = SimClock()
    src = ReplaySource(_frames(2), fps=10, clock=clock, loop=True)
    src.open()
    times = [src.read().t for _ in range(5)]  # type: ignore[union-attr]
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert clock() == pytest.approx(0.4)


class Endless:
    """A source that produces frames as fast as it is asked."""

    def __init__(self) -> None:
        self.i = 0

    def open(self) -> None: ...

    def read(self) -> Frame | None:
        self.i += 1
        return Frame(np.zeros((4, 4, 3), np.uint8), float(self.i), self.i)

    def close(self) -> None: ...


def test_newest_frame_wins_and_dropped_frames_are_counted() -> None:
    cap = Capture(Endless(), Events())
    for i in range(5):
        cap._put(Frame(np.zeros((1, 1, 3), np.uint8), float(i), i))
    got = cap.get(timeout=0.1)
    assert got is not None and got.index == 4
    assert cap.dropped == 4


def _drain(cap: Capture) -> list[int]:
    """Start a capture and collect the index of every frame it hands over until its source ends."""
    cap.start()
    seen = []
    while not cap.finished:
        f = cap.get(timeout=1.0)
        if f is not None:
            seen.append(f.index)
    cap.stop()
    return seen


def test_lockstep_capture_hands_over_every_replayed_frame() -> None:
    cap = Capture(ReplaySource(_frames(20), fps=10), Events(), lockstep=True)
    seen = _drain(cap)
    assert seen == list(range(20)) and cap.dropped == 0


def test_failed_camera_is_reopened_with_backoff_and_reported() -> None:
    failures = {3}
    src = ReplaySource(_frames(8), fps=10, fail_at=lambda i: i in failures and not failures.discard(i))
    events = Events()
    cap = Capture(src, events, lockstep=True, backoff_s=(0.001, 0.002))
    lost = threading.Event()
    cap.on_lost = lost.set
    seen = _drain(cap)
    assert lost.is_set() and events.restored.is_set()
    assert events.kinds == ["camera_lost", "camera_restored"] and cap.reconnects == 1
    assert seen == [0, 1, 2, 4, 5, 6, 7]


def test_pin_factory_falls_back_to_mock_with_a_warning_off_a_pi(caplog: pytest.LogCaptureFixture) -> None:
    from gpiozero.pins.mock import MockFactory

    from kiosk.service import pin_factory

    with caplog.at_level(logging.WARNING):
        factory = pin_factory("mock")
    assert isinstance(factory, MockFactory) and "simulated" in caplog.text


@pytest.mark.filterwarnings("ignore::Warning")  # gpiozero warns as it tries each real pin library
def test_auto_pin_factory_off_a_pi_is_mock_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from gpiozero.pins.mock import MockFactory

    from kiosk.service import pin_factory

    if Path("/dev/gpiomem").exists() or Path("/dev/gpiochip0").exists():
        pytest.skip("this machine has GPIO")
    with caplog.at_level(logging.WARNING):
        factory = pin_factory("auto")
    assert isinstance(factory, MockFactory) and "no GPIO" in caplog.text
