"""Frame sources and the capture thread."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import ClassVar

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


# picamera2 failure modes on a Raspberry Pi, reproduced with stub modules (there is no picamera2 here).

def _stub_package(root: Path, name: str, init: str) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text(init)


@pytest.fixture()
def stub_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory first on sys.path, with any already imported picamera2/simplejpeg/libcamera forgotten."""
    import sys

    for name in ("picamera2", "simplejpeg", "libcamera"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_picamera2_with_apt_simplejpeg_built_for_numpy_1_names_the_venv_fix(stub_path: Path) -> None:
    # What Raspberry Pi OS's python3-simplejpeg does under the venv's numpy 2 (picamera2 #1088, #1211).
    _stub_package(stub_path, "simplejpeg", "raise ValueError('numpy.dtype size changed, may indicate binary "
                                           "incompatibility. Expected 96 from C header, got 88 from PyObject')\n")
    _stub_package(stub_path, "picamera2", "import simplejpeg\nclass Picamera2: ...\n")
    with pytest.raises(CameraError, match=r"simplejpeg>=1\.8\.1") as info:
        Picamera2Source().open()
    assert "numpy.dtype size changed" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_picamera2_from_numpy_1_extension_under_numpy_2_import_error_names_the_venv_fix(stub_path: Path) -> None:
    _stub_package(stub_path, "picamera2", "raise ImportError('numpy.core.multiarray failed to import')\n")
    with pytest.raises(CameraError, match=r"pip install 'simplejpeg>=1\.8\.1'"):
        Picamera2Source().open()


def test_picamera2_from_pypi_without_libcamera_says_to_use_apt(stub_path: Path) -> None:
    _stub_package(stub_path, "picamera2", "import libcamera\nclass Picamera2: ...\n")
    with pytest.raises(CameraError, match=r"libcamera's Python bindings.*apt install python3-picamera2"):
        Picamera2Source().open()


def test_picamera2_missing_one_of_its_apt_dependencies_names_the_module(stub_path: Path) -> None:
    _stub_package(stub_path, "picamera2", "import pidng_not_installed_here\nclass Picamera2: ...\n")
    with pytest.raises(CameraError, match=r"'pidng_not_installed_here' is missing.*--reinstall python3-picamera2"):
        Picamera2Source().open()


def test_picamera2_failing_at_import_with_any_other_error_is_still_a_camera_error(stub_path: Path) -> None:
    _stub_package(stub_path, "picamera2", "raise RuntimeError('libcamera: failed to load IPA module')\n")
    with pytest.raises(CameraError, match=r"RuntimeError: libcamera: failed to load IPA module.*full-upgrade"):
        Picamera2Source().open()


class StubPicamera2:
    """Speaks the part of picamera2's API the source uses; fails where told to."""

    instances: ClassVar[list[StubPicamera2]] = []
    fail_on: ClassVar[str] = ""
    error: ClassVar[Exception] = RuntimeError()

    def __init__(self, camera_num: int = 0) -> None:
        self.camera_num = camera_num
        self.started = self.closed = False
        self.configured: dict[str, object] = {}
        StubPicamera2.instances.append(self)
        if self.fail_on == "init":
            raise self.error

    def create_video_configuration(self, main: dict[str, object], buffer_count: int) -> dict[str, object]:
        return {"main": main, "buffer_count": buffer_count}

    def configure(self, config: dict[str, object]) -> None:
        self.configured = config

    def start(self) -> None:
        if self.fail_on == "start":
            raise self.error
        self.started = True

    def capture_array(self, stream: str) -> np.ndarray:
        bgr = np.zeros((4, 6, 3), np.uint8)
        bgr[..., 0] = 10  # blue first in memory, as picamera2's "RGB888"
        bgr[..., 2] = 200
        return bgr

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture()
def stub_picamera2(monkeypatch: pytest.MonkeyPatch) -> type[StubPicamera2]:
    import sys
    import types

    module = types.ModuleType("picamera2")
    module.Picamera2 = StubPicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    monkeypatch.setattr(StubPicamera2, "instances", [])
    monkeypatch.setattr(StubPicamera2, "fail_on", "")
    return StubPicamera2


@pytest.mark.parametrize(("fail_on", "error", "fix"), [
    ("init", IndexError("list index out of range"), r"no camera 1 found.*rpicam-hello --list-cameras"),
    ("start", RuntimeError("Failed to acquire camera: Device or resource busy"), r"camera 1 is busy.*another process"),
    ("init", PermissionError(13, "Permission denied", "/dev/media0"), r"permission denied.*`video` group"),
    ("start", RuntimeError("Failed to start camera: Invalid argument"), r"cannot start camera 1: RuntimeError.*dmesg"),
])
def test_picamera2_that_cannot_start_raises_camera_error_naming_the_fix_and_releases_the_camera(
        stub_picamera2: type[StubPicamera2], monkeypatch: pytest.MonkeyPatch,
        fail_on: str, error: Exception, fix: str) -> None:
    monkeypatch.setattr(stub_picamera2, "fail_on", fail_on)
    monkeypatch.setattr(stub_picamera2, "error", error)
    src = Picamera2Source(camera_num=1)
    with pytest.raises(CameraError, match=fix) as info:
        src.open()
    assert info.value.__cause__ is error
    if fail_on == "start":
        assert stub_picamera2.instances[0].closed  # a half-opened camera is released for the next try
    with pytest.raises(CameraError, match="not open"):
        src.read()


def test_picamera2_frames_are_reordered_from_bgr_memory_to_rgb(stub_picamera2: type[StubPicamera2]) -> None:
    src = Picamera2Source(320, 240)
    src.open()
    cam = stub_picamera2.instances[0]
    assert cam.started and cam.configured == {"main": {"size": (320, 240), "format": "RGB888"}, "buffer_count": 2}
    frame = src.read()
    assert frame is not None and frame.index == 0
    assert frame.rgb[0, 0].tolist() == [200, 0, 10] and frame.rgb.flags.c_contiguous
    src.close()
    assert cam.closed and not cam.started
