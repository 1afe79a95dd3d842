from kiosk.decision import DecisionConfig, DecisionEngine, FaceMatch, MultiFacePolicy
from tests.clock import FakeClock

ANN = [FaceMatch("ann", 0.8, 100.0)]
STRANGER = [FaceMatch(None, 0.1, 100.0)]


def _engine(clock: FakeClock, **kw: object) -> DecisionEngine:
    return DecisionEngine(DecisionConfig(**kw), clock)  # type: ignore[arg-type]


def test_grant_needs_k_matching_frames_of_the_same_person() -> None:
    clock = FakeClock()
    eng = _engine(clock, frames_to_grant=3)
    assert eng.observe(ANN) is None
    clock.advance(0.1)
    assert eng.observe(ANN) is None
    clock.advance(0.1)
    d = eng.observe(ANN)
    assert d is not None and d.granted and d.person == "ann" and d.reason == "granted"


def test_frames_spread_beyond_the_window_do_not_grant() -> None:
    clock = FakeClock()
    eng = _engine(clock, frames_to_grant=3, window_s=1.0)
    for _ in range(3):
        assert eng.observe(ANN) is None
        clock.advance(0.6)


def test_an_unknown_face_never_grants_and_is_denied_after_k_frames() -> None:
    clock = FakeClock()
    eng = _engine(clock, frames_to_grant=2)
    assert eng.observe(STRANGER) is None
    d = eng.observe(STRANGER)
    assert d is not None and not d.granted and d.reason == "unknown"


def test_mixed_identities_in_the_streak_do_not_grant() -> None:
    clock = FakeClock()
    eng = _engine(clock, frames_to_grant=3)
    results = [eng.observe(f) for f in (ANN, [FaceMatch("bob", 0.9, 100.0)], ANN)]
    assert all(r is None or not r.granted for r in results)


def test_second_face_in_view_is_denied_by_default_and_resets_the_streak() -> None:
    clock = FakeClock()
    eng = _engine(clock, frames_to_grant=2)
    eng.observe(ANN)
    d = eng.observe([FaceMatch("ann", 0.8, 100.0), FaceMatch(None, 0.1, 50.0)])
    assert d is not None and not d.granted and d.reason == "multiple_faces"
    assert eng.observe(ANN) is None  # the streak started over


def test_largest_policy_decides_on_the_largest_face() -> None:
    clock = FakeClock()
    eng = _engine(clock, frames_to_grant=2, multi_face=MultiFacePolicy.LARGEST)
    two = [FaceMatch(None, 0.1, 20.0), FaceMatch("ann", 0.8, 100.0)]
    eng.observe(two)
    d = eng.observe(two)
    assert d is not None and d.granted and d.person == "ann"


def test_cooldown_after_a_grant_ignores_faces() -> None:
    clock = FakeClock()
    eng = _engine(clock, frames_to_grant=1, cooldown_s=5.0)
    assert eng.observe(ANN).granted  # type: ignore[union-attr]
    clock.advance(4.9)
    assert eng.observe(ANN) is None
    clock.advance(0.2)
    assert eng.observe(ANN).granted  # type: ignore[union-attr]


def test_lockout_after_n_denials_blocks_even_enrolled_people() -> None:
    clock = FakeClock()
    eng = _engine(clock, frames_to_grant=1, lockout_attempts=3, lockout_window_s=60, lockout_s=30,
                  deny_event_interval_s=0)
    for _ in range(3):
        assert not eng.observe(STRANGER).granted  # type: ignore[union-attr]
        eng.observe([])  # the stranger walks away; the next approach is a new attempt
        clock.advance(1)
    d = eng.observe(ANN)
    assert d is not None and not d.granted and d.reason == "locked_out"
    clock.advance(30)
    assert eng.observe(ANN).granted  # type: ignore[union-attr]


def test_denial_events_are_rate_limited_but_still_counted() -> None:
    clock = FakeClock()
    eng = _engine(clock, frames_to_grant=1, deny_event_interval_s=10, lockout_attempts=3, lockout_s=30)
    events = []
    for _ in range(3):
        events.append(eng.observe(STRANGER))
        eng.observe([])
        clock.advance(1)
    assert sum(e is not None for e in events) == 1
    assert eng.locked_out


def test_person_outside_validity_window_is_denied() -> None:
    clock = FakeClock()
    eng = DecisionEngine(DecisionConfig(frames_to_grant=1), clock, is_valid=lambda p, t: t < 1000.0)
    d = eng.observe(ANN)
    assert d is not None and not d.granted and d.reason == "not_valid_now" and d.person == "ann"


def test_one_lingering_stranger_counts_as_one_attempt() -> None:
    clock = FakeClock()
    eng = _engine(clock, frames_to_grant=1, lockout_attempts=2, deny_event_interval_s=0)
    for _ in range(10):
        eng.observe(STRANGER)
        clock.advance(0.1)
    assert not eng.locked_out
    eng.observe([])
    eng.observe(STRANGER)
    assert eng.locked_out
