"""The capture thread with a frame watchdog attached: one voice for camera_lost/camera_restored."""

from __future__ import annotations

import queue
import threading
from typing import Any

import numpy as np
import pytest

from kiosk.camera.base import Frame
from kiosk.camera.capture import Capture
from kiosk.camera.replay import ReplaySource
from kiosk.camera.watchdog import CameraWatchdogSettings, FrameWatchdog
from tests.clock import FakeClock

SETTINGS = CameraWatchdogSettings(frame_timeout_s=5, frozen_frames_s=20, watchdog_grace_s=30)


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, fields: dict[str, Any]) -> None:
        self.items.append((kind, fields))


def _frames(n: int) -> list[np.ndarray]:
    return [np.full((48, 64, 3), i, np.uint8) for i in range(n)]


def _drain(cap: Capture) -> list[int]:
    cap.start()
    seen = []
    while not cap.finished:
        f = cap.get(timeout=1.0)
        if f is not None:
            seen.append(f.index)
    cap.stop()
    return seen


def test_a_camera_error_is_reported_once_by_the_watchdog_and_restored_by_the_next_fresh_frame() -> None:
    failures = {3}

    def fail_once(i: int) -> bool:
        if i in failures:
            failures.discard(i)
            return True
        return False

    src = ReplaySource(_frames(8), fps=10, fail_at=fail_once)
    events, clock = Events(), FakeClock()
    held = []
    wd = FrameWatchdog(SETTINGS, clock, events, on_lost=lambda: held.append("lost"),
                       on_restored=lambda: held.append("restored"))
    lost_now = threading.Event()
    cap = Capture(src, events, lockstep=True, backoff_s=(0.001, 0.002), watchdog=wd, on_lost=lost_now.set)
    seen = _drain(cap)
    assert seen == [0, 1, 2, 4, 5, 6, 7] and cap.reconnects == 1 and lost_now.is_set()
    assert [k for k, _ in events.items] == ["camera_lost", "camera_restored"]
    assert events.items[0][1]["reason"] == "error" and "failed at frame 3" in events.items[0][1]["error"]
    assert events.items[1][1]["lost_reason"] == "error"
    assert held == ["lost", "restored"] and not wd.lost


def test_any_exception_from_the_source_is_a_lost_camera_not_a_dead_thread() -> None:
    """A driver bug (here a RuntimeError on the fourth read) locks the door like a camera error, and the
    capture reopens the source and goes on: the thread never ends unseen with the loop waiting for frames."""

    class Buggy(ReplaySource):
        def __init__(self) -> None:
            super().__init__(_frames(6), fps=10)
            self.reads = 0

        def read(self) -> Frame | None:
            self.reads += 1
            if self.reads == 4:
                raise RuntimeError("interpreter busy")
            return super().read()

    events = Events()
    lost = threading.Event()
    cap = Capture(Buggy(), events, lockstep=True, backoff_s=(0.001, 0.002), on_lost=lost.set)
    seen = _drain(cap)
    assert seen == [0, 1, 2, 3, 4, 5] and lost.is_set() and cap.reconnects == 1
    assert [k for k, _ in events.items] == ["camera_lost", "camera_restored"]
    assert "RuntimeError: interpreter busy" in events.items[0][1]["error"]


class QueueSource:
    """Frames handed over one by one by the test; ``read`` blocks until there is one."""

    def __init__(self) -> None:
        self.frames: queue.Queue[Frame | None] = queue.Queue()

    def open(self) -> None: ...

    def read(self) -> Frame | None:
        return self.frames.get()

    def close(self) -> None: ...


def test_capture_stats_report_a_frozen_camera_as_unhealthy_though_frames_still_arrive() -> None:
    clock, events = FakeClock(), Events()
    wd = FrameWatchdog(SETTINGS, clock, events)
    src = QueueSource()
    picture = np.full((48, 64, 3), 9, np.uint8)
    cap = Capture(src, events, watchdog=wd)
    cap.start()
    try:
        src.frames.put(Frame(picture, 0.0, 0))
        assert cap.get(timeout=10) is not None
        assert cap.stats()["camera_healthy"] is True
        clock.advance(21)
        src.frames.put(Frame(picture.copy(), 21.0, 1))  # the same picture again
        assert cap.get(timeout=10) is not None
        wd.check()
        stats = cap.stats()
    finally:
        src.frames.put(None)
        cap.stop()
    assert stats["camera_healthy"] is False and stats["camera_lost"] is True
    assert stats["camera_lost_reason"] == "frozen" and stats["camera_losses"] == 1
    assert [k for k, _ in events.items] == ["camera_lost"]


def test_starting_the_capture_arms_the_watchdog_so_a_slow_start_is_not_a_loss() -> None:
    clock, events = FakeClock(), Events()
    wd = FrameWatchdog(SETTINGS, clock, events)
    clock.advance(100)  # models loading before the camera starts
    cap = Capture(ReplaySource(_frames(3), fps=10), events, lockstep=True, watchdog=wd)
    cap.start()
    try:
        wd.check()
        assert events.items == [] and wd.healthy_for_watchdog()
    finally:
        cap.stop()


@pytest.mark.parametrize("watched", [False, True])
def test_a_finite_source_ends_cleanly_with_or_without_a_watchdog(watched: bool) -> None:
    clock, events = FakeClock(), Events()
    wd = FrameWatchdog(SETTINGS, clock, events) if watched else None
    cap = Capture(ReplaySource(_frames(5), fps=10), events, lockstep=True, watchdog=wd)
    assert _drain(cap) == [0, 1, 2, 3, 4]
    if wd is not None:
        clock.advance(60)
        wd.check()
        assert wd.healthy_for_watchdog()
    assert events.items == []


class CountingSource(QueueSource):
    """A ``QueueSource`` that says when each read starts."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.started: queue.Queue[int] = queue.Queue()

    def read(self) -> Frame | None:
        self.reads += 1
        self.started.put(self.reads)
        return super().read()


def test_lockstep_reads_one_frame_per_frame_taken_even_when_the_consumer_asked_twice() -> None:
    """A slow read outlasts the loop's wait; the loop asks again. That second ask must not read ahead:
    a replay's clock would move on to the next frame while the loop still works on this one."""
    events = Events()
    src = CountingSource()
    cap = Capture(src, events, lockstep=True)
    picture = np.zeros((8, 8, 3), np.uint8)
    cap.start()
    try:
        assert cap.get(timeout=0.01) is None  # the first read is still going on...
        assert src.started.get(timeout=10) == 1
        assert cap.get(timeout=0.01) is None  # ...and the loop asks again
        src.frames.put(Frame(picture, 0.0, 0))
        first = cap.get(timeout=10)
        assert first is not None and first.index == 0
        with pytest.raises(queue.Empty):  # no second read before the loop asks for the next frame
            src.started.get(timeout=0.3)
        assert src.reads == 1
        src.frames.put(Frame(picture, 0.1, 1))
        second = cap.get(timeout=10)
        assert second is not None and second.index == 1 and src.reads == 2
    finally:
        src.frames.put(None)
        cap.stop()
