"""One live verdict opens the door once.

The enrolled person earns LIVE and is let in; as they walk off, a print of the same person is raised
where they stood. The tracker follows boxes and the continuity check asks only whether it is the same
person, so the print keeps their track. It must not keep their verdict: neither after
``regrant_after_s`` nor after a second face, which used to wipe the decision's record of the grant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gpiozero.pins.mock import MockFactory

from kiosk.liveness.judge import SPENT
from tests import liveness_synth as synth
from tests.loop_fakes import DT, MAIN, OTHER, PRINT_OF_VICTIM, RELAY, SIDE, VICTIM, Rig
from tests.pins import assert_pin_history


def _victim_is_let_in(d: Rig) -> int:
    """A real head turning clearly: passive parallax, LIVE, granted. Returns its track."""
    head, rng = synth.model(False), np.random.default_rng(1)
    for k in range(150):
        r = d.step([(MAIN, synth.pose(head, 30 * np.sin(np.pi * k / 30), noise_px=0.3, rng=rng), VICTIM)])
        if d.granted():
            return r.tracks[0]
    raise AssertionError("the live victim was not let in")


def _print_raised(d: Rig) -> Any:
    flat, rng = synth.model(True), np.random.default_rng(2)
    return lambda: (MAIN, synth.pose(flat, noise_px=0.3, rng=rng), PRINT_OF_VICTIM)


def test_a_print_raised_where_the_person_stood_does_not_inherit_their_grant(
        factory: MockFactory, tmp_path: Path) -> None:
    d = Rig(factory, tmp_path)
    track = _victim_is_let_in(d)
    asked = len(d.prompter.shown)
    for _ in range(5):  # the victim walks through: a third of a second without a face
        d.step([])
    shown = _print_raised(d)
    for _ in range(int(6 / DT)):  # past the 5 s cooldown and the relock
        r = d.step([shown()])
    assert r.tracks[0] == track  # the same track: the tracker and the continuity check let it through
    assert r.liveness[0].reason == SPENT
    d.step([shown(), (SIDE, None, OTHER)])  # one frame with a second face, which used to wipe the grant
    for _ in range(int(6 / DT)):
        d.step([shown()])
    assert d.granted() == 1
    assert d.prompter.shown[asked:] == []  # nothing is asked of a track whose verdict a grant has just used
    assert_pin_history(factory.pin(RELAY), [False, True, False])  # opened once, for the victim
    d.events.close()


def test_after_regrant_after_s_the_same_track_must_show_a_live_face_again(
        factory: MockFactory, tmp_path: Path) -> None:
    d = Rig(factory, tmp_path)
    _victim_is_let_in(d)
    asked = len(d.prompter.shown)
    for _ in range(5):
        d.step([])
    shown = _print_raised(d)
    rest = d.engine.config.regrant_after_s
    for _ in range(int((rest + 10) / DT)):
        d.step([shown()])
    assert d.granted() == 1
    assert d.events.counts.get("presentation_attack", 0) >= 1  # judged afresh: the print was prompted and denied
    assert {"left", "right"} & set(d.prompter.shown[asked:])
    assert_pin_history(factory.pin(RELAY), [False, True, False])
    d.events.close()


def test_a_person_still_in_view_after_regrant_after_s_is_let_in_again_on_a_new_live_verdict(
        factory: MockFactory, tmp_path: Path) -> None:
    d = Rig(factory, tmp_path)
    _victim_is_let_in(d)
    head, rng = synth.model(False), np.random.default_rng(3)
    rest = d.engine.config.regrant_after_s
    for k in range(int((rest + 10) / DT)):  # stays and keeps turning: a new approach once the rest is over
        d.step([(MAIN, synth.pose(head, 30 * np.sin(np.pi * k / 30), noise_px=0.3, rng=rng), VICTIM)])
    assert d.granted() == 2
    assert_pin_history(factory.pin(RELAY), [False, True, False, True, False])
    d.events.close()
