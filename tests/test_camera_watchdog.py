"""Frozen or silent camera: ``camera_lost``, the door held locked, and systemd's watchdog starved after a grace.

A fake frame source that the test feeds (or stops feeding, or feeds the same
picture forever) runs behind the real capture thread; time is a fake clock.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from gpiozero.pins.mock import MockFactory

from kiosk.camera.base import Frame
from kiosk.camera.capture import Capture
from kiosk.camera.opencv import OpenCVSource
from kiosk.camera.watchdog import CameraWatchdogSettings, FrameWatchdog, frame_fingerprint
from kiosk.door import Door, DoorTiming, build_door
from tests.clock import FakeClock
from tests.pins import assert_pin_history

RELAY, EXIT = 17, 22
SETTINGS = CameraWatchdogSettings(frame_timeout_s=5, frozen_frames_s=20, watchdog_grace_s=30, check_period_s=0.5)


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, fields: dict[str, Any]) -> None:
        self.items.append((kind, fields))

    def kinds(self, prefix: str = "") -> list[str]:
        return [k for k, _ in self.items if k.startswith(prefix)]


class FedSource:
    """A camera the test drives: ``feed`` hands one frame to ``read``; without feeding, ``read`` blocks."""

    def __init__(self) -> None:
        self._frames: queue.Queue[Frame | None] = queue.Queue()
        self.i = 0

    def open(self) -> None: ...

    def read(self) -> Frame | None:
        return self._frames.get()

    def close(self) -> None: ...

    def feed(self, rgb: npt.NDArray[np.uint8]) -> None:
        self._frames.put(Frame(rgb, float(self.i), self.i))
        self.i += 1

    def end(self) -> None:
        self._frames.put(None)


def _noisy(rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """A still scene seen by a real sensor: the same picture plus a little noise in every pixel."""
    base = np.full((120, 160, 3), 128, np.int16)
    return np.clip(base + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8)


class Rig:
    """Door (MockFactory relay) + watchdog holding it + the real capture thread on a fed source."""

    def __init__(self, factory: MockFactory, settings: CameraWatchdogSettings = SETTINGS) -> None:
        self.factory = factory
        self.clock = FakeClock()
        self.events = Events()
        self.door: Door = build_door(RELAY, active_high=True, timing=DoorTiming(unlock_s=5), clock=self.clock,
                                     emit=self.events, exit_pin=EXIT, pin_factory=factory, bounce_s=None)
        self.watchdog = FrameWatchdog(settings, self.clock, self.events,
                                      on_lost=lambda: self.door.hold("camera_lost"),
                                      on_restored=lambda: self.door.release("camera_lost"))
        self.source = FedSource()
        self.capture = Capture(self.source, self.events, watchdog=self.watchdog)
        self.rng = np.random.default_rng(7)

    def __enter__(self) -> Rig:
        self.capture.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.source.end()
        self.capture.stop(10)
        self.door.close()

    def frame(self, rgb: npt.NDArray[np.uint8] | None = None) -> None:
        """Feed one frame and wait until the capture thread has handed it over (so the watchdog saw it)."""
        self.source.feed(self._noisy() if rgb is None else rgb)
        assert self.capture.get(timeout=10) is not None

    def _noisy(self) -> npt.NDArray[np.uint8]:
        return _noisy(self.rng)

    def run(self, seconds: float, fps: float = 10, rgb: npt.NDArray[np.uint8] | None = None,
            feed: bool = True) -> None:
        """``seconds`` of camera time at ``fps``, checking as the checker thread would."""
        for _ in range(round(seconds * fps)):
            self.clock.advance(1 / fps)
            if feed:
                self.frame(rgb)
            self.watchdog.check()


def test_a_live_still_scene_is_not_a_lost_camera(factory: MockFactory) -> None:
    with Rig(factory) as rig:
        rig.run(120)
        assert rig.events.kinds("camera") == [] and rig.watchdog.healthy_for_watchdog()
        assert rig.door.unlock("granted", "ann")


def test_no_new_frame_raises_camera_lost_locks_the_door_and_starves_the_watchdog_after_the_grace(
        factory: MockFactory) -> None:
    with Rig(factory) as rig:
        rig.run(1)
        assert rig.door.unlock("granted", "ann")
        rig.run(4.9, feed=False)  # the camera goes silent: read() blocks
        assert rig.events.kinds("camera") == [] and rig.door.unlocked
        rig.run(0.2, feed=False)
        lost = [f for k, f in rig.events.items if k == "camera_lost"]
        assert len(lost) == 1 and lost[0]["reason"] == "no_frame"
        assert not rig.door.unlocked
        assert rig.door.unlock("granted", "ann") is False  # a grant cannot open a blind door
        rig.run(29.7, feed=False)
        assert rig.watchdog.healthy_for_watchdog()  # still within the grace
        rig.run(0.5, feed=False)
        assert not rig.watchdog.healthy_for_watchdog()
        assert rig.capture.stats()["camera_healthy"] is False
        assert rig.events.kinds("camera") == ["camera_lost"]  # once, not once per check
    assert_pin_history(factory.pin(RELAY), [False, True, False])


def test_identical_frames_for_the_configured_time_are_a_frozen_camera(factory: MockFactory) -> None:
    with Rig(factory) as rig:
        rig.run(1)
        stuck = _noisy(rig.rng)
        rig.run(19.9, rgb=stuck)  # frames keep arriving, all the same picture
        assert rig.events.kinds("camera") == []
        rig.run(0.2, rgb=stuck)
        lost = [f for k, f in rig.events.items if k == "camera_lost"]
        assert len(lost) == 1 and lost[0]["reason"] == "frozen"
        assert rig.door.holds == frozenset({"camera_lost"})
        assert rig.door.unlock("granted", "ann") is False
        rig.run(29.5, rgb=stuck)
        assert rig.watchdog.healthy_for_watchdog()  # within the grace
        rig.run(1, rgb=stuck)
        assert not rig.watchdog.healthy_for_watchdog()
    assert_pin_history(factory.pin(RELAY), [False])  # never energised while frozen


def test_fresh_frames_restore_the_camera_the_door_and_the_watchdog(factory: MockFactory) -> None:
    with Rig(factory) as rig:
        rig.run(40, feed=False)
        assert not rig.watchdog.healthy_for_watchdog()
        rig.run(0.1)
        assert rig.events.kinds("camera") == ["camera_lost", "camera_restored"]
        assert rig.watchdog.healthy_for_watchdog() and rig.door.holds == frozenset()
        assert rig.door.unlock("granted", "ann")
    assert_pin_history(factory.pin(RELAY), [False, True, False])


def test_the_exit_button_still_lets_people_out_while_the_camera_is_lost(factory: MockFactory) -> None:
    with Rig(factory) as rig:
        rig.run(6, feed=False)
        assert rig.watchdog.lost
        factory.pin(EXIT).drive_low()
        assert rig.door.unlocked
    assert_pin_history(factory.pin(RELAY), [False, True, False])


def test_a_checker_that_stopped_running_starves_the_watchdog() -> None:
    clock = FakeClock()
    wd = FrameWatchdog(SETTINGS, clock, Events())
    wd.check()
    clock.advance(SETTINGS.frame_timeout_s + SETTINGS.watchdog_grace_s - 0.1)
    assert wd.healthy_for_watchdog()  # nobody checked, but not for long enough to tell
    clock.advance(0.2)
    assert not wd.healthy_for_watchdog()


def test_a_finite_source_that_ended_is_not_a_lost_camera(factory: MockFactory) -> None:
    rig = Rig(factory)
    with rig:
        rig.run(1)
        rig.source.end()
        assert rig.capture.ended.wait(10)
        rig.run(60, feed=False)
        assert rig.events.kinds("camera") == [] and rig.watchdog.healthy_for_watchdog()


def test_frozen_check_can_be_turned_off_for_sources_that_repeat_frames(factory: MockFactory) -> None:
    settings = SETTINGS.model_copy(update={"frozen_frames_s": None})
    with Rig(factory, settings) as rig:
        stuck = _noisy(rig.rng)
        rig.run(60, rgb=stuck)
        assert rig.events.kinds("camera") == []


def test_a_disabled_watchdog_never_raises_and_never_starves() -> None:
    clock, events = FakeClock(), Events()
    wd = FrameWatchdog(SETTINGS.model_copy(update={"enabled": False}), clock, events)
    clock.advance(3600)
    wd.check()
    assert events.items == [] and wd.healthy_for_watchdog()


def test_the_checker_thread_raises_camera_lost_without_anyone_else_calling_it(factory: MockFactory) -> None:
    from kiosk.door import Ticker

    clock, events = FakeClock(), Events()
    lost = threading.Event()
    wd = FrameWatchdog(SETTINGS, clock, events, on_lost=lost.set)
    asked: queue.Queue[float] = queue.Queue()
    go = threading.Semaphore(0)
    done = threading.Event()

    def wait(timeout: float) -> None:  # the test steps the thread; once done, it runs free to its stop
        asked.put(timeout)
        if not done.is_set():
            go.acquire()

    ticker = Ticker(wd.check, SETTINGS.check_period_s, name="camera-watchdog", wait=wait)
    ticker.start()
    try:
        while not lost.is_set():
            clock.advance(asked.get(timeout=10))
            go.release()
            assert clock() < 1000 + SETTINGS.frame_timeout_s + 1, "camera_lost never raised"
    finally:
        done.set()
        go.release()
        assert ticker.stop(10)
    assert [k for k, _ in events.items] == ["camera_lost"]


def test_fingerprint_tells_a_stuck_buffer_from_sensor_noise() -> None:
    rng = np.random.default_rng(1)
    a = _noisy(rng)
    assert frame_fingerprint(a) == frame_fingerprint(a.copy())
    assert frame_fingerprint(a) != frame_fingerprint(_noisy(rng))
    assert frame_fingerprint(a) != frame_fingerprint(a[:, :80].copy())  # same pixels, other shape


def test_real_video_clips_never_look_frozen(data: Path) -> None:
    """Every consecutive pair of frames in the real clips has a distinct fingerprint."""
    clips = sorted((data / "videos").rglob("*.mp4"))
    assert len(clips) >= 20
    pairs = identical = 0
    for clip in clips[::4]:  # a spread of sources; the full count is in the report's figures
        src = OpenCVSource(str(clip))
        src.open()
        prev = None
        while (f := src.read()) is not None:
            fp = frame_fingerprint(f.rgb)
            if prev is not None:
                pairs += 1
                identical += fp == prev
            prev = fp
        src.close()
    assert pairs > 1000 and identical == 0
