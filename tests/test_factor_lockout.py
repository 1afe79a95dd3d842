"""PIN lockout per claimed identity, on an injected clock."""

from __future__ import annotations

from kiosk.factor.lockout import LockoutConfig, PinLockout
from tests.clock import FakeClock


def _lockout(clock: FakeClock) -> PinLockout:
    return PinLockout(LockoutConfig(attempts=3, window_s=60, lockout_s=600), clock)


def test_three_wrong_pins_in_the_window_lock_that_identity_out_for_the_lockout_time() -> None:
    clock = FakeClock()
    lock = _lockout(clock)
    assert not lock.failure("ann")
    clock.advance(10)
    assert not lock.failure("ann")
    clock.advance(10)
    assert lock.failure("ann")
    assert lock.locked("ann")
    assert lock.remaining_s("ann") == 600
    clock.advance(599.9)
    assert lock.locked("ann")
    clock.advance(0.2)
    assert not lock.locked("ann")


def test_a_lockout_is_per_identity() -> None:
    clock = FakeClock()
    lock = _lockout(clock)
    for _ in range(3):
        lock.failure("ann")
    assert lock.locked("ann")
    assert not lock.locked("bob")
    assert not lock.failure("bob")


def test_wrong_pins_spread_wider_than_the_window_do_not_lock() -> None:
    clock = FakeClock()
    lock = _lockout(clock)
    for _ in range(10):
        assert not lock.failure("ann")
        clock.advance(31)  # only two ever fall within 60 s
    assert not lock.locked("ann")


def test_a_correct_pin_clears_the_count() -> None:
    clock = FakeClock()
    lock = _lockout(clock)
    lock.failure("ann")
    lock.failure("ann")
    lock.success("ann")
    assert not lock.failure("ann")
    assert not lock.locked("ann")


def test_after_the_lockout_the_count_starts_again() -> None:
    clock = FakeClock()
    lock = _lockout(clock)
    for _ in range(3):
        lock.failure("ann")
    clock.advance(601)
    assert not lock.failure("ann")
    assert not lock.locked("ann")


def test_a_flood_of_made_up_codes_stays_bounded_and_keeps_real_lockouts() -> None:
    clock = FakeClock()
    lock = PinLockout(LockoutConfig(attempts=3, window_s=60, lockout_s=600), clock, max_identities=50)
    for _ in range(3):
        lock.failure("ann")
    for i in range(500):
        lock.failure(f"code:{i}")
        clock.advance(0.1)
    assert len(lock._failures) <= 50
    assert lock.locked("ann")


def test_the_default_lets_a_guesser_at_most_72_wrong_pins_a_day() -> None:
    assert LockoutConfig().max_guesses_per_day() == 72
    assert LockoutConfig(attempts=3, window_s=300, lockout_s=900).max_guesses_per_day() == 576  # pacing wins
