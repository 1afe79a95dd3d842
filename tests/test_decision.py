"""The decision engine on synthetic embeddings: per-track fused probes, margin, liveness, lockout, loitering."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from kiosk.decision import Candidate, Claim, DecisionConfig, DecisionEngine, MultiFacePolicy, Observation, fuse
from kiosk.lockout import FaceLockout, LockoutConfig
from kiosk.match import Gallery
from kiosk.track import Tracker, iou
from tests.clock import FakeClock

RNG = np.random.default_rng(7)
BASIS = np.linalg.qr(RNG.normal(size=(128, 128)))[0].T.astype(np.float32)  # orthonormal rows
ANN, BOB, EVE, MALLORY = BASIS[0], BASIS[1], BASIS[2], BASIS[3]
THRESHOLD = 0.5


def near(v: np.ndarray, noise: float = 0.15, seed: int = 0) -> np.ndarray:
    """A probe of the same person: the template plus a little noise, unit length."""
    r = np.random.default_rng(seed)
    x = v + noise * r.normal(size=v.shape).astype(np.float32) / np.sqrt(v.size)
    return (x / np.linalg.norm(x)).astype(np.float32)


@dataclass(frozen=True)
class Live:
    verdict: str = "live"
    reason: str = "parallax"
    values: dict[str, float] = field(default_factory=lambda: {"residual": 0.2})


LIVE, FLAT, PENDING = Live(), Live("flat", "flat_homography", {"residual": 0.01}), Live("pending", "waiting_motion")


def gallery_matcher(gallery: Gallery):  # type: ignore[no-untyped-def]
    def match(probe: np.ndarray) -> Candidate:
        s = gallery.scores(probe)
        order = np.argsort(-s)
        best = gallery.labels[int(order[0])]
        second = next((float(s[i]) for i in order[1:] if gallery.labels[int(i)] != best), -1.0)
        return Candidate(best, float(s[int(order[0])]), second)
    return match


GALLERY = Gallery(np.stack([ANN, BOB]), ["ann", "bob"])


def engine(clock: FakeClock, gallery: Gallery = GALLERY, **kw: object) -> DecisionEngine:
    cfg = DecisionConfig(**{"liveness": False, **kw})  # type: ignore[arg-type]
    return DecisionEngine(cfg, clock, gallery_matcher(gallery), lambda: THRESHOLD)


def obs(v: np.ndarray, track: int = 1, area: float = 100.0, live: Live | None = None, seed: int = 0) -> Observation:
    return Observation(track, near(v, seed=seed), area, 1.0, live)


def feed(eng: DecisionEngine, clock: FakeClock, frames: list[list[Observation]], dt: float = 0.1):  # type: ignore[no-untyped-def]
    out = []
    for f in frames:
        out.append(eng.observe(f))
        clock.advance(dt)
    return out


def test_grant_needs_k_frames_of_one_track() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=3)
    r = feed(eng, clock, [[obs(ANN, seed=i)] for i in range(3)])
    assert r[0] is None and r[1] is None
    assert r[2] is not None and r[2].granted and r[2].person == "ann" and r[2].track == 1


def test_frames_spread_beyond_the_window_do_not_grant() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=3, window_s=1.0)
    assert all(d is None for d in feed(eng, clock, [[obs(ANN, seed=i)] for i in range(4)], dt=0.6))


def test_a_stranger_never_grants_and_is_denied_as_unknown() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=2)
    r = feed(eng, clock, [[obs(EVE, seed=i)] for i in range(6)])
    assert not any(d is not None and d.granted for d in r)
    assert [d.reason for d in r if d is not None] == ["unknown"]  # one event: the rest are rate-limited


def test_interleaved_frames_of_two_people_on_one_track_are_ambiguous_not_granted() -> None:
    # the mutant this pins: a K-frame rule that counts matches without checking they agree
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=2)
    r = feed(eng, clock, [[obs(ANN if i % 2 == 0 else BOB, seed=i)] for i in range(8)])
    assert not any(d is not None and d.granted for d in r)
    assert any(d is not None and d.reason == "ambiguous" for d in r)


def test_interleaved_tracks_each_need_their_own_k_frames() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=3, multi_face=MultiFacePolicy.LARGEST)
    # one frame of ann on track 1, one of a stranger on track 2, alternating: ann's track has 3 frames at the 5th
    frames = [[obs(ANN, track=1, seed=i)] if i % 2 == 0 else [obs(EVE, track=2, seed=i)] for i in range(5)]
    r = feed(eng, clock, frames)
    granted = [d for d in r if d is not None and d.granted]
    assert len(granted) == 1 and granted[0].person == "ann" and r.index(granted[0]) == 4


def test_a_clock_running_backwards_never_grants() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=3)
    eng.observe([obs(ANN, seed=0)])
    clock.advance(0.1)
    eng.observe([obs(ANN, seed=1)])
    clock.advance(-5.0)
    assert eng.observe([obs(ANN, seed=2)]) is None


def test_margin_rule_denies_a_probe_close_to_two_people() -> None:
    clock = FakeClock()
    twins = Gallery(np.stack([ANN, near(ANN, 0.05, seed=99)]), ["ann", "twin"])
    eng = engine(clock, twins, frames_to_grant=2, margin=0.05)
    r = feed(eng, clock, [[obs(ANN, seed=i)] for i in range(2)])
    assert r[-1] is not None and not r[-1].granted and r[-1].reason == "ambiguous"


def test_second_face_in_view_is_denied_by_default_and_restarts_the_evidence() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=2)
    eng.observe([obs(ANN)])
    d = eng.observe([obs(ANN, seed=1), obs(EVE, track=2, area=50.0)])
    assert d is not None and not d.granted and d.reason == "multiple_faces"
    clock.advance(0.1)
    assert eng.observe([obs(ANN, seed=2)]) is None  # started over


def test_largest_policy_decides_on_the_largest_face() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=2, multi_face=MultiFacePolicy.LARGEST)
    r = feed(eng, clock, [[obs(EVE, track=2, area=20.0, seed=i), obs(ANN, track=1, seed=i)] for i in range(2)])
    assert r[-1] is not None and r[-1].granted and r[-1].person == "ann"


def test_liveness_gates_the_grant() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=2, liveness=True)
    assert feed(eng, clock, [[obs(ANN, live=PENDING, seed=i)] for i in range(5)]) == [None] * 5
    d = eng.observe([obs(ANN, live=LIVE, seed=9)])
    assert d is not None and d.granted and d.values["residual"] == 0.2


def test_missing_liveness_result_never_grants_when_liveness_is_on() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=2, liveness=True)
    assert all(d is None for d in feed(eng, clock, [[obs(ANN, seed=i)] for i in range(10)]))


def test_a_flat_verdict_denies_an_enrolled_face_as_presentation_attack() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=2, liveness=True)
    r = feed(eng, clock, [[obs(ANN, live=FLAT, seed=i)] for i in range(4)])
    denied = [d for d in r if d is not None]
    assert len(denied) == 1 and denied[0].reason == "presentation_attack"
    assert denied[0].values["liveness_reason"] == "flat_homography" and denied[0].values["residual"] == 0.01
    assert not any(d.granted for d in denied)


def test_lockout_is_per_face_and_spares_other_people() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=1, lockout_attempts=3, deny_event_interval_s=0.0)
    for approach in range(3):  # the same stranger walks up three times (a new track each time)
        d = eng.observe([obs(EVE, track=10 + approach, seed=approach)])
        assert d is not None and d.reason == "unknown"
        eng.end([10 + approach])
        clock.advance(1.0)
    assert any(kind == "lockout" for kind, _ in eng.alarms)
    d = eng.observe([obs(EVE, track=20, seed=5)])
    assert d is not None and d.reason == "locked_out"
    eng.end([20])
    d = eng.observe([obs(ANN, track=21, seed=6)])
    assert d is not None and d.granted  # the enrolled person is not locked out by the stranger


def test_one_approach_counts_once_however_long_it_stays() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=1, lockout_attempts=2, deny_event_interval_s=0.0)
    feed(eng, clock, [[obs(EVE, track=1, seed=i)] for i in range(30)])
    assert not eng.lockout.locked(near(EVE, seed=1), clock())


def test_a_second_face_restarts_the_evidence_but_the_approach_still_counts_once() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=1, lockout_attempts=2, deny_event_interval_s=0.0)
    assert [d.reason for d in feed(eng, clock, [[obs(EVE, track=1)]]) if d] == ["unknown"]
    feed(eng, clock, [[obs(EVE, track=1, seed=1), obs(BOB, track=2, seed=1)]])  # multiple_faces
    assert [d.reason for d in feed(eng, clock, [[obs(EVE, track=1, seed=2)]]) if d] == ["unknown"]
    assert not eng.lockout.locked(near(EVE, seed=3), clock())


def test_a_flat_verdict_the_engine_never_denied_is_counted_when_its_track_leaves_and_only_then() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=1, lockout_attempts=2, deny_event_interval_s=0.0, liveness=True)
    flat = {"liveness_reason": "challenge_timeout"}
    assert eng.observe([obs(EVE, track=1, live=FLAT)]).reason == "presentation_attack"  # type: ignore[union-attr]
    assert eng.abandon(1, near(EVE), flat, reason="presentation_attack") is None  # denied already
    eng.end([1])
    d = eng.abandon(2, near(EVE, seed=1), flat, reason="presentation_attack")  # never seen on a good frame
    assert d is not None and d.reason == "presentation_attack" and d.person is None
    assert eng.lockout.locked(near(EVE, seed=2), clock())


def test_many_different_denied_faces_raise_the_ceiling_alarm_without_locking_out_everyone() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=1, lockout_ceiling=5, deny_event_interval_s=0.0)
    for i in range(5):
        eng.observe([obs(BASIS[10 + i], track=100 + i)])
        eng.end([100 + i])
        clock.advance(1.0)
    assert [k for k, _ in eng.alarms] == ["lockout_ceiling"]
    d = eng.observe([obs(ANN, track=200)])
    assert d is not None and d.granted


def _faces(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` unrelated faces: random unit vectors, far below ``same_face`` of each other."""
    x = np.random.default_rng(seed).normal(size=(n, 128)).astype(np.float32)
    return list(x / np.linalg.norm(x, axis=1, keepdims=True))


def test_a_new_face_is_locked_out_however_many_faces_were_denied_before() -> None:
    cfg = LockoutConfig()
    lock = FaceLockout(cfg)
    *strangers, attacker = _faces(cfg.max_faces + 1)
    t = 0.0
    for face in strangers:  # a busy week: the memory fills with strangers denied once each
        lock.deny(face, t)
        t += 1800.0
    locked = [lock.deny(attacker, t + k)[0] for k in range(cfg.attempts)]
    assert locked == [False] * (cfg.attempts - 1) + [True] and lock.locked(attacker, t + cfg.attempts)
    assert len(lock._faces) <= cfg.max_faces


def test_a_locked_out_face_is_not_forgotten_to_make_room_for_others() -> None:
    cfg = LockoutConfig(attempts=2, max_faces=4)
    lock = FaceLockout(cfg)
    attacker, *others = _faces(12, seed=1)
    lock.deny(attacker, 0.0)
    assert lock.deny(attacker, 1.0)[0]
    for k, face in enumerate(others):  # more new faces than the memory holds, within the lockout
        lock.deny(face, 2.0 + k)
    assert lock.locked(attacker, 20.0) and len(lock._faces) == cfg.max_faces


def test_when_every_remembered_face_is_locked_out_a_new_face_is_still_counted() -> None:
    cfg = LockoutConfig(attempts=1, max_faces=2)  # every denial locks its face out
    lock = FaceLockout(cfg)
    faces = _faces(5, seed=2)
    assert all(lock.deny(face, float(k))[0] for k, face in enumerate(faces))
    assert all(lock.locked(face, 5.0) for face in faces[1:])  # the memory grew, up to twice max_faces...
    assert not lock.locked(faces[0], 5.0) and len(lock._faces) == 2 * cfg.max_faces  # ...then the soonest ends


def test_flooding_the_memory_with_strangers_does_not_reset_a_face_one_denial_short_of_its_lockout() -> None:
    cfg = LockoutConfig()  # 5 attempts in 60 s, 256 faces remembered
    lock = FaceLockout(cfg)
    attacker, *strangers = _faces(cfg.max_faces + 1, seed=3)
    for k in range(cfg.attempts - 1):
        assert lock.deny(attacker, float(k)) == (False, False)
    t = float(cfg.attempts)
    for face in strangers:  # e.g. sheets of printed faces, each denied once, all within the window
        lock.deny(face, t)
        t += 0.15
    assert t < cfg.window_s and len(lock._faces) == cfg.max_faces
    assert lock.deny(attacker, t)[0], "the flood made room by forgetting the attacker's denials"


def test_the_unlocked_faces_with_fewest_denials_in_the_window_are_forgotten_first() -> None:
    cfg = LockoutConfig(attempts=5, window_s=60.0, max_faces=3)
    lock = FaceLockout(cfg)
    close, once, twice, newcomer, another = _faces(5, seed=4)
    for t in (0.0, 1.0, 2.0):
        lock.deny(close, t)  # denied first, and most: 3 of 5
    lock.deny(once, 3.0)
    lock.deny(twice, 4.0)
    lock.deny(twice, 5.0)
    lock.deny(newcomer, 6.0)  # room made: "once" goes, though "close" was denied less recently
    lock.deny(another, 7.0)  # room made: "newcomer" (1) before "twice" (2); ties: the least recently denied
    assert len(lock._faces) == cfg.max_faces
    assert [lock.deny(close, 8.0 + k)[0] for k in range(2)] == [False, True]
    assert [lock.deny(twice, 10.0 + k)[0] for k in range(3)] == [False, False, True]
    assert [lock.deny(once, 20.0 + k)[0] for k in range(4)] == [False] * 4  # started over from zero


def test_denials_that_left_the_window_do_not_keep_a_face_remembered() -> None:
    cfg = LockoutConfig(attempts=5, window_s=60.0, max_faces=2)
    lock = FaceLockout(cfg)
    old, recent, newcomer = _faces(3, seed=5)
    for t in (0.0, 1.0, 2.0, 55.0):
        lock.deny(old, t)  # at 70 s, only the last of its 4 denials still counts
    lock.deny(recent, 20.0)
    lock.deny(recent, 30.0)  # both still count at 70 s, though denied before "old" was last
    lock.deny(newcomer, 70.0)  # room made: "old" has 1 denial left to count, "recent" 2
    assert [lock.deny(recent, 71.0 + k)[0] for k in range(3)] == [False, False, True]


def test_flat_prints_counted_at_track_end_do_not_reset_a_face_one_denial_short_of_its_lockout() -> None:
    clock = FakeClock()
    start = clock()
    eng = engine(clock, lockout_attempts=5, lockout_window_s=60.0, liveness=True)
    attacker, *prints = _faces(257, seed=6)
    track = 1
    for _ in range(4):  # four prompts withdrawn by stepping away
        eng.abandon(track, attacker, {}, reason="challenge_abandoned")
        eng.end([track])
        track += 1
        clock.advance(2.0)
    for face in prints:  # printed faces held up, each judged FLAT and counted when its track ends
        eng.abandon(track, face, {"liveness_reason": "planar"}, reason="presentation_attack")
        eng.end([track])
        track += 1
        clock.advance(0.1)
    assert clock() - start < 60.0
    eng.abandon(track, attacker, {}, reason="challenge_abandoned")
    assert eng.lockout.locked(attacker, clock()), "the flood reset the attacker's lockout count"


def test_a_granted_person_staying_in_view_is_not_granted_again() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=2, cooldown_s=1.0, regrant_after_s=120.0)
    r = feed(eng, clock, [[obs(ANN, seed=i)] for i in range(200)], dt=0.1)  # 20 s in view
    assert sum(1 for d in r if d is not None and d.granted) == 1
    eng.end([1])  # left the view, and comes back
    r = feed(eng, clock, [[obs(ANN, track=2, seed=i)] for i in range(3)])
    assert sum(1 for d in r if d is not None and d.granted) == 1


def test_a_second_face_restarts_the_evidence_but_not_the_grant() -> None:
    """A face flashed into view for one frame must not make a granted track grantable again."""
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=2, cooldown_s=1.0, regrant_after_s=120.0)
    r = feed(eng, clock, [[obs(ANN, seed=i)] for i in range(20)])
    assert sum(1 for d in r if d is not None and d.granted) == 1
    d = eng.observe([obs(ANN, seed=50), obs(BOB, track=2, seed=51)])
    assert d is not None and d.reason == "multiple_faces"
    r = feed(eng, clock, [[obs(ANN, seed=100 + i)] for i in range(100)])  # 10 s more, past the cooldown
    assert not any(d is not None and d.granted for d in r)


def test_cooldown_after_a_grant_ignores_faces() -> None:
    clock = FakeClock()
    eng = engine(clock, frames_to_grant=1, cooldown_s=5.0)
    assert eng.observe([obs(ANN)]) is not None
    eng.end([1])
    clock.advance(1.0)
    assert eng.observe([obs(BOB, track=2)]) is None
    clock.advance(5.0)
    d = eng.observe([obs(BOB, track=2, seed=3)])
    assert d is not None and d.granted and d.person == "bob"


def test_validity_windows_are_respected() -> None:
    clock = FakeClock()
    eng = DecisionEngine(DecisionConfig(frames_to_grant=1, liveness=False), clock, gallery_matcher(GALLERY),
                         lambda: THRESHOLD, is_valid=lambda p, t: t < 1000.0)
    d = eng.observe([obs(ANN)])
    assert d is not None and not d.granted and d.reason == "not_valid_now"


def test_claimed_identity_is_checked_one_to_one_and_duress_is_flagged() -> None:
    clock = FakeClock()
    verified: list[str] = []

    def verify(probe: np.ndarray, person: str) -> float:
        verified.append(person)
        return float(np.dot(probe, {"ann": ANN, "bob": BOB}[person]))

    eng = DecisionEngine(DecisionConfig(frames_to_grant=1, liveness=False), clock, gallery_matcher(GALLERY),
                         lambda: THRESHOLD, second_factor=lambda now: True, verify=verify,
                         threshold_1to1=lambda: 0.8)
    assert eng.observe([obs(ANN)]) is None  # recognised but the door wants a PIN now
    eng.claim(Claim("ann", "pin", clock(), duress=True))
    d = eng.observe([obs(ANN, seed=1)])
    assert d is not None and d.granted and d.person == "ann" and d.duress and verified == ["ann"]


def test_a_claim_for_somebody_else_is_denied() -> None:
    clock = FakeClock()
    eng = DecisionEngine(DecisionConfig(frames_to_grant=1, liveness=False), clock, gallery_matcher(GALLERY),
                         lambda: THRESHOLD, second_factor=lambda now: True,
                         verify=lambda p, person: float(np.dot(p, BOB)))
    eng.claim(Claim("bob", "card", clock()))
    d = eng.observe([obs(ANN)])
    assert d is not None and not d.granted and d.reason == "second_factor_mismatch"


def test_a_claim_expires() -> None:
    clock = FakeClock()
    eng = DecisionEngine(DecisionConfig(frames_to_grant=1, liveness=False, claim_timeout_s=10.0), clock,
                         gallery_matcher(GALLERY), lambda: THRESHOLD, second_factor=lambda now: True,
                         verify=lambda p, person: 1.0)
    eng.claim(Claim("ann", "pin", clock()))
    clock.advance(11.0)
    assert eng.observe([obs(ANN)]) is None and eng.awaiting_second_factor()


def test_fuse_weights_frames_and_returns_a_unit_vector() -> None:
    f = fuse([(ANN, 3.0), (BOB, 1.0)])
    assert np.linalg.norm(f) == pytest.approx(1.0, abs=1e-6)
    assert float(np.dot(f, ANN)) > float(np.dot(f, BOB))


def test_tracker_follows_overlapping_boxes_and_ends_lost_tracks() -> None:
    tr = Tracker(min_iou=0.3, max_gap_s=1.0)
    ids, ended = tr.update([(0, 0, 100, 100), (300, 0, 400, 100)], 0.0)
    assert ids == [1, 2] and ended == []
    ids, _ = tr.update([(310, 5, 410, 105), (5, 5, 105, 105)], 0.1)
    assert ids == [2, 1]
    ids, ended = tr.update([(5, 5, 105, 105)], 0.5)
    assert ids == [1]
    ids, ended = tr.update([(5, 5, 105, 105)], 1.4)
    assert ended == [2] and ids == [1]
    ids, ended = tr.update([(600, 0, 700, 100)], 3.0)
    assert ended == [1] and ids == [3]  # ids are never reused
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_a_face_denied_first_and_then_recognised_is_granted_and_forgiven() -> None:
    # the same approach's first frames are too poor to recognise (denied as unknown), then it clears the threshold
    clock = FakeClock()
    scores = iter([0.1, 0.1, 0.3, 0.3, 0.9, 0.9])  # two matches per frame: the frame's own, the fused probe's
    eng = DecisionEngine(DecisionConfig(frames_to_grant=1, fuse_frames=1, liveness=False, deny_event_interval_s=0.0),
                         clock, lambda probe: Candidate("ann", next(scores), 0.0), lambda: THRESHOLD)
    stranger = eng.observe([obs(EVE, track=9, seed=0)])  # another face is remembered first
    assert stranger is not None and stranger.reason == "unknown"
    eng.end([9])
    first = eng.observe([obs(ANN, seed=0)])
    assert first is not None and first.reason == "unknown"
    eng.end([1])
    clock.advance(1.0)
    d = eng.observe([obs(ANN, track=2, seed=1)])  # the same face, now recognised: it was counted as denied once
    assert d is not None and d.granted
    assert not eng.lockout.locked(near(ANN, seed=3), clock())
