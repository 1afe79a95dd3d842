"""Identity continuity along a track (pure), and the tracker's split."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.continuity import FaceContinuity
from kiosk.track import Tracker


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _person(rng: np.random.Generator, dim: int = 512) -> np.ndarray:
    return _unit(rng.normal(size=dim))


def _frame_of(person: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    """An embedding of ``person`` in one frame: the identity plus frame-to-frame variation."""
    return _unit(person + spread * _unit(rng.normal(size=person.shape[0])))


def _two_people_one_seen(seed: int, frames: int) -> tuple[FaceContinuity, np.ndarray, np.ndarray, np.random.Generator]:
    """Two people a and b; track 1 has seen ``frames`` frames of a."""
    rng = np.random.default_rng(seed)
    a, b = _person(rng), _person(rng)
    c = FaceContinuity(0.5)
    for _ in range(frames):
        c.add(1, _frame_of(a, rng, 0.3))
    return c, a, b, rng


def test_a_face_that_stays_itself_is_kept_and_somebody_else_is_reported_and_not_kept() -> None:
    rng = np.random.default_rng(1)
    a, b = _person(rng), _person(rng)
    c = FaceContinuity(0.5)
    assert c.changed(1, _frame_of(a, rng, 0.5)) is None  # the first frame sets the reference
    for _ in range(30):
        assert c.changed(1, _frame_of(a, rng, 0.5)) is None  # cosine about 0.8 to the track: the same face
    before = c.similarity(1, _frame_of(a, rng, 0.0))
    sim = c.changed(1, _frame_of(b, rng, 0.5))
    assert sim is not None and sim < 0.2  # an unrelated face
    assert c.similarity(1, _frame_of(a, rng, 0.0)) == pytest.approx(before)  # the other face was not kept
    c.end([1])
    assert c.changed(1, _frame_of(b, rng, 0.5)) is None  # a new approach on that id starts afresh


def test_tracks_are_kept_apart() -> None:
    rng = np.random.default_rng(2)
    a, b = _person(rng), _person(rng)
    c = FaceContinuity(0.5)
    c.add(1, a)
    c.add(2, b)
    assert c.changed(1, _frame_of(a, rng, 0.3)) is None
    assert c.changed(2, _frame_of(b, rng, 0.3)) is None
    assert c.changed(1, _frame_of(b, rng, 0.3)) is not None


def test_the_reference_is_every_earlier_frame_so_one_odd_frame_does_not_move_it() -> None:
    c, a, b, rng = _two_people_one_seen(3, 20)
    c.add(1, _unit(a + b))  # a blurred frame halfway between two faces, kept (cosine 0.7)
    assert c.changed(1, _frame_of(b, rng, 0.3)) is not None  # the other face is still somebody else


def test_after_the_verdict_the_reference_is_frozen_so_a_slow_drift_cannot_move_it() -> None:
    c, a, b, _ = _two_people_one_seen(4, 10)
    c.freeze(1)
    reference = c.similarity(1, a)
    steps = [_unit((1 - k / 40) * a + (k / 40) * b) for k in range(41)]  # a morph from a to b
    results = [c.changed(1, s) for s in steps]
    assert c.similarity(1, a) == pytest.approx(reference)  # nothing was added
    assert results[-1] is not None  # b itself is somebody else, however slowly it came
    assert results[0] is None


def test_config_keeps_face_change_within_what_was_measured() -> None:
    from pydantic import ValidationError

    from kiosk.config import DecisionSettings

    assert DecisionSettings().face_change == 0.5
    for bad in (0.1, 0.7):
        with pytest.raises(ValidationError, match="face_change"):
            DecisionSettings(face_change=bad)


def test_face_change_must_be_a_cosine() -> None:
    with pytest.raises(ValueError):
        FaceContinuity(1.5)


def test_split_ends_the_track_and_moves_its_box_to_a_new_id() -> None:
    tr = Tracker()
    ids, _ = tr.update([(0, 0, 100, 100)], 0.0)
    new = tr.split(ids[0])
    assert new != ids[0] and ids[0] not in tr.tracks
    again, ended = tr.update([(2, 0, 102, 100)], 0.1)
    assert again == [new] and ended == []  # the same box goes on under the new id
    assert max(tr.tracks) == new and tr.split(new) > new  # ids only grow
