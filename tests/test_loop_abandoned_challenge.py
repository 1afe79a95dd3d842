"""Stepping out of view while prompted is a denied approach, not a free new draw of the direction.

A replay that shows one turn passes about half the prompts; if leaving before the timeout cost
nothing, an attacker would step away until the prompt matched the replay, unseen by the audit log and
the lockout. Each prompted track that leaves before a verdict is now denied as ``challenge_abandoned``
and counted towards its face's lockout, like a timeout.

A FLAT verdict is counted the same way when the decision never denied it on a frame that passed the
gates (reached while the face was too small to judge, or beside a second face), and never twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.vision.boxes import Face
from tests import liveness_synth as synth
from tests.loop_fakes import DT, KP, MAIN, OTHER, PRINT_OF_VICTIM, RELAY, SIDE, VICTIM, Rig, Shown
from tests.pins import assert_pin_history

TURNED_KP = KP.copy()
TURNED_KP[2] = [355, 230]  # the nose 0.44 eye distances off the eyes' midpoint: gated out as turned away
TURNED = Face(MAIN.box, 0.99, TURNED_KP)  # the liveness cues still sample it (a head turned for a prompt)
SMALL = Face((560.0, 20.0, 620.0, 80.0), 0.99, (KP - [320, 220]) * 0.3 + [590, 50])  # too small to judge


def _shrunk(side: float) -> Face:
    """MAIN stepped back: the same centre, a smaller box (the tracker keeps it), under min_face_px."""
    c = np.array([320.0, 220.0])
    s = side / 200.0
    return Face((c[0] - side / 2, c[1] - side / 2, c[0] + side / 2, c[1] + side / 2), 0.99, (KP - c) * s + c)


def _reasons(tmp: Path, kind: str = "access_denied") -> list[str]:
    lines = (tmp / "audit.jsonl").read_text().splitlines()
    return [e["reason"] for e in map(json.loads, lines) if e["type"] == kind]


def _withdrawn_while_prompted(d: Rig, rng: np.random.Generator, face: Face = MAIN, flash: bool = False) -> None:
    """A still print of the victim, held until the prompt shows, then withdrawn for 1.5 s (``flash``: with
    a second face shown for one frame first, which restarts the decision's evidence)."""
    flat = synth.model(True)
    asked = len(d.prompter.shown)
    for _ in range(int(3.0 / DT)):  # the prompt comes at 2 s; the timeout would be at 7 s
        d.step([(face, synth.pose(flat, noise_px=0.3, rng=rng), PRINT_OF_VICTIM)])
    assert {"left", "right"} & set(d.prompter.shown[asked:])
    if flash:
        d.step([(face, synth.pose(flat, noise_px=0.3, rng=rng), PRINT_OF_VICTIM), (SIDE, None, OTHER)])
    for _ in range(int(1.5 / DT)):  # out of view longer than the tracker keeps a track
        d.step([])


def test_leaving_while_prompted_is_denied_counted_and_locks_out_after_five(
        factory: MockFactory, tmp_path: Path) -> None:
    d = Rig(factory, tmp_path)
    rng = np.random.default_rng(4)
    for _ in range(d.engine.config.lockout_attempts - 1):
        _withdrawn_while_prompted(d, rng)
    assert d.events.counts.get("lockout", 0) == 0
    _withdrawn_while_prompted(d, rng)
    assert d.events.counts.get("lockout", 0) == 1  # each abandoned prompt counted once, as a timeout is
    assert d.prompter.shown[-1] is None  # the prompt is withdrawn with the track
    d.events.close()
    reasons = _reasons(tmp_path)  # at most one event per reason per deny_event_interval_s
    assert reasons and set(reasons) == {"challenge_abandoned"}
    assert_pin_history(factory.pin(RELAY), [False])  # the relay never moved


def test_a_person_let_in_or_never_prompted_leaves_without_a_denial(factory: MockFactory, tmp_path: Path) -> None:
    d = Rig(factory, tmp_path)
    head, rng = synth.model(False), np.random.default_rng(1)
    for k in range(int(1.5 / DT)):  # walks past turning, gone before any prompt
        d.step([(MAIN, synth.pose(head, 2 * k, noise_px=0.3, rng=rng), VICTIM)])
    for _ in range(int(1.5 / DT)):
        d.step([])
    for k in range(150):  # comes back and is let in on passive parallax or a prompted turn
        d.step([(MAIN, synth.pose(head, 30 * np.sin(np.pi * k / 30), noise_px=0.3, rng=rng), VICTIM)])
        if d.granted():
            break
    for _ in range(int(1.5 / DT)):
        d.step([])
    d.events.close()
    assert d.granted() == 1 and _reasons(tmp_path) == []


@pytest.mark.parametrize("how", ["second face flashed first", "gated out as turned away"])
def test_an_abandoned_prompt_counts_even_when_the_decision_kept_no_frames_of_the_face(
        how: str, factory: MockFactory, tmp_path: Path) -> None:
    """The decision keeps frames only of faces that pass every gate, and a second face wipes them; the
    loop's continuity reference (every embedded frame) says who the track showed all the same."""
    d = Rig(factory, tmp_path)
    rng = np.random.default_rng(4)
    for _ in range(d.engine.config.lockout_attempts):
        if how == "second face flashed first":
            _withdrawn_while_prompted(d, rng, flash=True)
        else:
            _withdrawn_while_prompted(d, rng, face=TURNED)
    assert d.events.counts.get("lockout", 0) == 1
    d.events.close()
    assert "challenge_abandoned" in _reasons(tmp_path)
    assert_pin_history(factory.pin(RELAY), [False])


def test_the_abandoned_prompt_is_reported_with_the_face_the_track_showed(
        factory: MockFactory, tmp_path: Path) -> None:
    d = Rig(factory, tmp_path)
    _withdrawn_while_prompted(d, np.random.default_rng(4))
    d.events.close()
    [event] = [e for e in map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines())
               if e["type"] == "access_denied"]
    assert event["reason"] == "challenge_abandoned" and event["person"] == "victim" and event["track"] == 1
    assert event["challenge_left"] in (0.0, 1.0)
    assert 1.0 < event["challenge_s"] < 2.5  # held 1 s after the prompt, then the tracker waits 1 s


def test_tracks_forgotten_because_the_camera_was_lost_are_not_counted(factory: MockFactory, tmp_path: Path) -> None:
    d = Rig(factory, tmp_path)
    flat, rng = synth.model(True), np.random.default_rng(4)
    for _ in range(int(3.0 / DT)):
        d.step([(MAIN, synth.pose(flat, noise_px=0.3, rng=rng), PRINT_OF_VICTIM)])
    assert d.prompter.shown and d.prompter.shown[-1] is not None
    d.loop._forget_tracks()  # what run() does when the camera stops delivering
    assert d.prompter.shown[-1] is None
    d.events.close()
    assert _reasons(tmp_path) == []


class _Display:
    """What a subscriber to the prompt topic last received: what is sent while it is away is lost (the
    MQTT prompter publishes without retain), and which threads drove it."""

    def __init__(self) -> None:
        self.connected = True
        self.delivered: list[str | None] = []
        self.threads: set[str] = set()

    def prompt(self, direction: str) -> None:
        self._send(direction)

    def clear(self) -> None:
        self._send(None)

    def _send(self, what: str | None) -> None:
        self.threads.add(threading.current_thread().name)
        if self.connected:
            self.delivered.append(what)

    def close(self) -> None:
        pass


class _LostCamera:
    """A capture that delivers no frame and is unhealthy; ``passes`` hooks run on the loop's passes, then
    the loop is stopped."""

    def __init__(self, stop: threading.Event, *passes: Callable[[], None]) -> None:
        self.stop, self.passes = stop, list(passes)
        self.healthy, self.finished, self.on_lost = threading.Event(), False, None

    def get(self, timeout: float | None = None) -> None:
        if self.passes:
            self.passes.pop(0)()
        else:
            self.stop.set()
        return None


def test_a_display_reconnecting_while_the_camera_is_down_is_told_the_prompt_went(
        factory: MockFactory, tmp_path: Path) -> None:
    d = Rig(factory, tmp_path)
    display = _Display()
    d.judge.prompter = display
    _prompted_print(d, np.random.default_rng(3), 3.0)
    assert display.delivered[-1] in ("left", "right")

    def broker_away() -> None:
        display.connected = False  # the loop's clear, when it forgets the camera's tracks, is lost

    def broker_back() -> None:
        display.connected = True
        network = threading.Thread(target=d.judge.repeat_prompt, name="mqtt-network")  # the on_connected hook
        network.start()
        network.join(5)

    stop = threading.Event()
    d.loop.capture = _LostCamera(stop, broker_away, lambda: None, broker_back, lambda: None)  # type: ignore[assignment]
    d.loop.run(stop)
    assert display.delivered[-1] is None, f"the display still shows {display.delivered[-1]!r}"
    assert display.delivered.count(None) == 1  # the clear said on reconnecting, once
    assert display.threads == {threading.current_thread().name}  # only the loop thread drives the display
    assert not d.door.unlocked


def _prompted_print(d: Rig, rng: np.random.Generator, seconds: float, *others: Shown) -> None:
    flat = synth.model(True)
    for _ in range(int(seconds / DT)):
        d.step([(MAIN, synth.pose(flat, noise_px=0.3, rng=rng), PRINT_OF_VICTIM), *others])


def _timed_out_out_of_the_gates(d: Rig, rng: np.random.Generator) -> None:
    """Held still until the prompt, then stepped back under min_face_px until the prompt times out; gone."""
    asked = len(d.prompter.shown)
    _prompted_print(d, rng, 3.0)
    assert {"left", "right"} & set(d.prompter.shown[asked:])
    for side in (160.0, 125.0, 98.0, 76.0):
        d.step([(_shrunk(side), None, PRINT_OF_VICTIM)])
    for _ in range(int(5.5 / DT)):
        d.step([(_shrunk(76.0), None, PRINT_OF_VICTIM)])
    assert d.prompter.shown[-1] is None  # the timeout withdrew the prompt
    for _ in range(int(1.5 / DT)):
        d.step([])


def _timed_out_beside_a_second_face(d: Rig, rng: np.random.Generator) -> None:
    """Alone until the prompt, then a small second face in view (every decision: multiple_faces) until the
    prompt times out; gone."""
    _prompted_print(d, rng, 2.5)
    _prompted_print(d, rng, 5.5, (SMALL, None, OTHER))
    assert d.prompter.shown[-1] is None
    for _ in range(int(1.5 / DT)):
        d.step([])


def _denied_then_a_second_face_flashed(d: Rig, rng: np.random.Generator) -> None:
    """Timed out and denied on good frames, a second face for a frame (which restarts the decision's
    evidence), the print alone again, then gone: still one approach."""
    _prompted_print(d, rng, 7.5)
    _prompted_print(d, rng, DT, (SIDE, None, OTHER))
    _prompted_print(d, rng, 1.0)
    for _ in range(int(1.5 / DT)):
        d.step([])


@pytest.mark.parametrize("attempt", [_timed_out_out_of_the_gates, _timed_out_beside_a_second_face,
                                     _denied_then_a_second_face_flashed])
def test_every_flat_verdict_is_denied_and_counted_once(attempt: Callable[[Rig, np.random.Generator], None],
                                                        factory: MockFactory, tmp_path: Path) -> None:
    d = Rig(factory, tmp_path)
    rng = np.random.default_rng(4)
    for _ in range(d.engine.config.lockout_attempts - 1):
        attempt(d, rng)
    assert d.events.counts.get("lockout", 0) == 0  # no verdict counted twice
    attempt(d, rng)
    assert d.events.counts.get("lockout", 0) == 1  # nor left uncounted
    assert d.loop.stats.presentation_attacks >= 1
    d.events.close()
    assert "presentation_attack" in _reasons(tmp_path) and _reasons(tmp_path, "presentation_attack")
    assert_pin_history(factory.pin(RELAY), [False])


def test_a_flat_verdict_counts_even_when_the_camera_goes(factory: MockFactory, tmp_path: Path) -> None:
    """Unlike an abandoned prompt, a FLAT verdict is the face's own doing."""
    d = Rig(factory, tmp_path)
    _prompted_print(d, np.random.default_rng(4), 2.5)
    _prompted_print(d, np.random.default_rng(5), 5.5, (SMALL, None, OTHER))
    d.loop._forget_tracks()
    d.events.close()
    assert _reasons(tmp_path) == ["multiple_faces", "presentation_attack"]
