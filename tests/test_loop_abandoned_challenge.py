"""Stepping out of view while prompted is a denied approach, not a free new draw of the direction.

A replay that shows one turn passes about half the prompts; if leaving before the timeout cost
nothing, an attacker would step away until the prompt matched the replay, unseen by the audit log and
the lockout. Each prompted track that leaves before a verdict is now denied as ``challenge_abandoned``
and counted towards its face's lockout, like a timeout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from tests import liveness_synth as synth
from tests.loop_fakes import DT, MAIN, PRINT_OF_VICTIM, RELAY, VICTIM, Rig


@pytest.fixture()
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


def _reasons(tmp: Path, kind: str = "access_denied") -> list[str]:
    lines = (tmp / "audit.jsonl").read_text().splitlines()
    return [e["reason"] for e in map(json.loads, lines) if e["type"] == kind]


def _withdrawn_while_prompted(d: Rig, rng: np.random.Generator) -> None:
    """A still print of the victim, held until the prompt shows, then withdrawn for 1.5 s."""
    flat = synth.model(True)
    asked = len(d.prompter.shown)
    for _ in range(int(3.0 / DT)):  # the prompt comes at 2 s; the timeout would be at 7 s
        d.step([(MAIN, synth.pose(flat, noise_px=0.3, rng=rng), PRINT_OF_VICTIM)])
    assert {"left", "right"} & set(d.prompter.shown[asked:])
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
    factory.pin(RELAY).assert_states([False])  # the relay never moved


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
