"""The relock timer: its own thread relocks on time while the frame loop is stalled.

Time is a fake clock; the timer's wait is a test-controlled step (the thread
reports how long it wants to wait, the test moves the clock by that much and
lets it go), so the thread runs for real and nothing sleeps.
"""

from __future__ import annotations

import json
import queue
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.door import Door, DoorTimerSettings, DoorTiming, Ticker, build_door, door_timer
from kiosk.door.relay import CLOSE_LOCK_ATTEMPTS
from tests.clock import FakeClock
from tests.pins import assert_pin_history

RELAY, CONTACT = 17, 27
UNLOCK_S, HELD_OPEN_S = 5.0, 30.0


class Steps:
    """The timer thread's wait: it reports the timeout it asked for, then blocks until the test steps."""

    def __init__(self) -> None:
        self.asked: queue.Queue[float] = queue.Queue()
        self._go = threading.Semaphore(0)
        self._open = False

    def __call__(self, timeout: float) -> None:
        self.asked.put(timeout)
        if not self._open:
            self._go.acquire()

    def next(self) -> float:
        """Wait (really, with a generous ceiling) until the thread has ticked and asks to wait again."""
        return self.asked.get(timeout=10)

    def go(self) -> None:
        self._go.release()

    def release_all(self) -> None:
        self._open = True
        self._go.release()


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, fields: dict[str, Any]) -> None:
        self.items.append((kind, fields))

    @property
    def kinds(self) -> list[str]:
        return [k for k, _ in self.items]


def _door(factory: MockFactory, clock: FakeClock, events: Events) -> Door:
    door = build_door(RELAY, active_high=True, timing=DoorTiming(UNLOCK_S, HELD_OPEN_S), clock=clock, emit=events,
                      contact_pin=CONTACT, pin_factory=factory, bounce_s=None)
    factory.pin(CONTACT).drive_low()  # shut
    events.items.clear()
    return door


class StalledLoop:
    """Stands in for the frame loop: grants, then blocks (a hung model, a camera read that never returns)."""

    def __init__(self, door: Door) -> None:
        self.door = door
        self.granted = threading.Event()
        self.unblock = threading.Event()
        self.thread = threading.Thread(target=self._run, name="frame-loop")

    def _run(self) -> None:
        self.door.unlock("granted", "ann")
        self.granted.set()
        self.unblock.wait()  # stalled until the test ends

    def start(self) -> None:
        self.thread.start()
        assert self.granted.wait(10)

    def finish(self) -> None:
        self.unblock.set()
        self.thread.join(10)


def _run_timer(ticker: Ticker, steps: Steps, clock: FakeClock, until: float,
               watch: Any = None) -> list[tuple[float, Any]]:
    """Step the timer thread, moving the clock by each wait it asks for, until ``until``.

    Returns ``(clock, watch())`` after each tick (the thread has ticked when it asks to wait)."""
    seen = []
    while True:
        wait = steps.next()
        seen.append((clock(), watch() if watch is not None else None))
        if clock() >= until:
            return seen
        clock.advance(wait)
        steps.go()


def test_relay_drops_within_unlock_time_plus_100ms_while_the_frame_loop_is_stalled_for_60s(
        factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    steps = Steps()
    ticker = door_timer(door, DoorTimerSettings(timer_period_s=0.05), wait=steps)
    ticker.start()
    loop = StalledLoop(door)
    try:
        assert steps.next() == pytest.approx(0.05)  # nothing due: one period
        loop.start()  # grants, then hangs
        granted_at = clock()
        steps.go()
        relocked_at = None
        while clock() < granted_at + 60:
            wait = steps.next()  # the tick for the current clock has run
            if relocked_at is None and not door.unlocked:
                relocked_at = clock()
            assert wait <= 0.05
            clock.advance(wait)
            steps.go()
        assert loop.thread.is_alive() and not loop.unblock.is_set()  # the loop never moved
    finally:
        loop.finish()
        steps.release_all()
        assert ticker.stop(10)
    assert relocked_at is not None
    assert UNLOCK_S <= relocked_at - granted_at <= UNLOCK_S + 0.1
    assert_pin_history(factory.pin(RELAY), [False, True, False])
    assert events.kinds == ["door_unlocked", "door_locked"]
    assert events.items[1] == ("door_locked", {"reason": "timeout"})


def test_held_open_alarm_comes_from_the_timer_while_the_frame_loop_is_stalled(factory: MockFactory) -> None:
    clock, events = FakeClock(), Events()
    door = _door(factory, clock, events)
    steps = Steps()
    ticker = door_timer(door, wait=steps)
    ticker.start()
    loop = StalledLoop(door)
    try:
        clock.advance(steps.next())
        loop.start()
        factory.pin(CONTACT).drive_high()  # the person opens the door and leaves it open
        opened_at = clock()
        steps.go()
        alarms = _run_timer(ticker, steps, clock, opened_at + HELD_OPEN_S + 5,
                            watch=lambda: events.kinds.count("door_held_open"))
    finally:
        loop.finish()
        steps.release_all()
        assert ticker.stop(10)
    first = next(t for t, n in alarms if n == 1)
    assert HELD_OPEN_S <= first - opened_at <= HELD_OPEN_S + 0.1
    assert events.kinds == ["door_unlocked", "door_opened", "door_locked", "door_held_open"]


def test_timer_waits_exactly_until_the_relock_when_it_is_closer_than_a_period() -> None:
    clock, events = FakeClock(), Events()
    relay = RecordingRelay()
    door = Door(relay, clock, events, DoorTiming(unlock_s=5))
    ticker = Ticker(door.tick, 0.05, clock=clock)
    assert ticker.run_once() == pytest.approx(0.05)
    door.unlock("granted")
    clock.advance(4.98)
    assert ticker.run_once() == pytest.approx(0.02)
    clock.advance(0.02)
    assert ticker.run_once() == pytest.approx(0.05)
    assert relay.states == [False, True, False]


class RecordingRelay:
    def __init__(self) -> None:
        self.states: list[bool] = []

    def on(self) -> None:
        self.states.append(True)

    def off(self) -> None:
        self.states.append(False)

    def close(self) -> None: ...


class StuckRelay(RecordingRelay):
    """A relay whose ``off()`` fails ``failures`` times once it has been energised (a GPIO error)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.closed = False

    def off(self) -> None:
        if True in self.states and self.failures > 0:
            self.failures -= 1
            raise OSError("gpiochip: I/O error")
        super().off()

    def close(self) -> None:
        self.closed = True


def test_a_relay_failing_at_close_is_dropped_by_the_running_timer_and_released_by_the_next_close() -> None:
    """The service's stop: ``door.close()`` after the loop, the timer stopped later by the exit stack, which
    then closes the door again."""
    clock, events = FakeClock(), Events()
    relay = StuckRelay(failures=CLOSE_LOCK_ATTEMPTS + 1)  # every try at close, and the timer's first retry
    door = Door(relay, clock, events, DoorTiming(UNLOCK_S))
    steps = Steps()
    ticker = door_timer(door, wait=steps)
    ticker.start()
    try:
        clock.advance(steps.next())
        door.unlock("granted")
        with pytest.raises(OSError, match="gpiochip"):
            door.close()
        assert door.unlocked and relay.states == [False, True] and not relay.closed
        for _ in range(2):  # one failed retry, then the relay drops
            steps.go()
            clock.advance(steps.next())
        assert ticker.errors == 1 and not door.unlocked and relay.states == [False, True, False]
    finally:
        steps.release_all()
        assert ticker.stop(10)
    door.close()
    assert relay.closed and relay.states == [False, True, False, False]
    assert events.items == [("door_unlocked", {"reason": "granted", "person": None, "seconds": UNLOCK_S}),
                            ("door_locked", {"reason": "shutdown"})]


def _gpio_ticker(clock: FakeClock, fails: Callable[[], bool]) -> tuple[Ticker, Steps]:
    """A started door timer whose tick raises as a failing GPIO write does while ``fails()``."""

    def tick() -> float | None:
        if fails():
            raise OSError("gpiochip: I/O error")
        return None

    steps = Steps()
    ticker = Ticker(tick, 0.05, name="door-timer", wait=steps, clock=clock)
    ticker.start()
    return ticker, steps


def test_a_tick_that_raises_is_counted_and_the_timer_keeps_running() -> None:
    clock = FakeClock()
    calls: list[float] = []

    def fails() -> bool:
        calls.append(clock())
        return len(calls) <= 2

    ticker, steps = _gpio_ticker(clock, fails)
    try:
        for _ in range(4):
            clock.advance(steps.next())
            steps.go()
        steps.next()
        assert ticker.alive and ticker.errors == 2 and ticker.ticks == 5
    finally:
        steps.release_all()
        assert ticker.stop(10)
    assert not ticker.alive


def test_timer_health_goes_false_when_ticks_stop_or_the_thread_ends() -> None:
    clock = FakeClock()
    steps = Steps()
    ticker = Ticker(lambda: None, 0.05, wait=steps, clock=clock)
    assert not ticker.healthy()  # never started
    ticker.start()
    try:
        steps.next()
        assert ticker.healthy()
        clock.advance(1.01)  # the thread is parked: no tick for more than 1 s
        assert not ticker.healthy()
        steps.go()
        steps.next()
        assert ticker.healthy()
    finally:
        steps.release_all()
        assert ticker.stop(10)
    assert not ticker.healthy()


def test_timer_health_goes_false_while_every_tick_fails_and_back_after_one_succeeds() -> None:
    clock = FakeClock()
    broken = [True]  # a relay whose GPIO write keeps failing: the door cannot be relocked
    ticker, steps = _gpio_ticker(clock, lambda: broken[0])
    try:
        for _ in range(20):  # ticking on time, every tick failing, for 1 s
            clock.advance(steps.next())
            assert ticker.healthy()
            steps.go()
        for _ in range(2):
            clock.advance(steps.next())
            steps.go()
        steps.next()
        assert ticker.errors == 23 and not ticker.healthy()  # the watchdog restarts the service
        broken[0] = False
        steps.go()
        steps.next()
        assert ticker.healthy() and ticker.failing_since is None
    finally:
        steps.release_all()
        assert ticker.stop(10)


def test_timer_stops_promptly_with_its_own_wait() -> None:
    ticked = threading.Event()

    def tick() -> float | None:
        ticked.set()
        return None

    ticker = Ticker(tick, 0.1)
    ticker.start()
    assert ticked.wait(10)
    assert ticker.stop(10) and not ticker.alive
    with pytest.raises(RuntimeError, match="already started"):
        ticker.start()


CHILD = r"""
import json, sys, threading, time
from gpiozero.pins.mock import MockFactory
from kiosk.door import DoorTiming, build_door, door_timer

def emit(kind, fields):
    print(json.dumps({"type": kind, **fields}), flush=True)

factory = MockFactory()
door = build_door(17, active_high=True, timing=DoorTiming(unlock_s=0.3), clock=time.monotonic, emit=emit,
                  pin_factory=factory, bounce_s=None)
door_timer(door).start()
door.unlock("granted", "ann")
emit("loop_stalled", {})
threading.Event().wait()  # the frame loop never comes back
emit("loop_resumed", {})
"""


def test_in_a_real_process_a_stalled_main_thread_still_relocks_and_sigabrt_finds_it_locked() -> None:
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", CHILD], cwd=root, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen: list[dict[str, Any]] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while not any(e["type"] == "door_locked" for e in seen):
            assert sel.select(timeout=60), f"no relock within 60 s; saw {seen}"  # a ceiling, not a timing claim
            line = proc.stdout.readline()
            assert line, f"child ended early; saw {seen}"
            seen.append(json.loads(line))
        proc.send_signal(signal.SIGABRT)  # what systemd sends when its watchdog runs out
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        sel.close()
        proc.stdout.close()
    assert [e["type"] for e in seen] == ["door_unlocked", "loop_stalled", "door_locked"]
    assert seen[-1]["reason"] == "timeout"
    assert code == -signal.SIGABRT
