"""Wiegand frames driven as D0/D1 low pulses on gpiozero mock pins, decoded or rejected with a reason."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.door.wiegand import (
    READER_FAULT,
    Card,
    KeyPress,
    Rejected,
    WiegandCollector,
    WiegandReader,
    build_wiegand,
    decode_frame,
    encode_h10301,
    encode_w34,
)
from tests.clock import FakeClock
from tests.second_factor_pins import ClockedFactory, WiegandLines, bits

D0, D1 = 23, 24
# Facility 123, card 45678, worked out by hand: even parity over 0111 1011 1011 (9 ones) is 1,
# odd parity over 0010 0110 1110 (6 ones) is 1.
H10301_123_45678 = "1 01111011 1011001001101110 1"


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def reader(clock: FakeClock) -> Iterator[tuple[WiegandReader, WiegandLines]]:
    factory = ClockedFactory(clock)
    lines = WiegandLines(factory, D0, D1, clock.advance)
    rd = build_wiegand(D0, D1, clock=clock, gap_s=0.025, min_interval_s=0.0002, pin_factory=factory)
    yield rd, lines
    rd.close()
    factory.reset()


def _frame(reader: tuple[WiegandReader, WiegandLines], clock: FakeClock, frame: list[int],
           interval_s: float = 0.002) -> object:
    rd, lines = reader
    lines.send(frame, interval_s=interval_s)
    assert rd.poll() is None  # the frame is not over until the gap has passed
    clock.advance(0.03)
    return rd.poll()


def test_a_26_bit_card_decodes_to_facility_and_number(reader: tuple[WiegandReader, WiegandLines],
                                                      clock: FakeClock) -> None:
    assert _frame(reader, clock, bits(H10301_123_45678)) == Card("h10301", 123, 45678)
    assert str(Card("h10301", 123, 45678)) == "h10301:123:45678"


def test_the_encoder_agrees_with_the_hand_worked_frame() -> None:
    assert encode_h10301(123, 45678) == bits(H10301_123_45678)


def test_a_34_bit_card_decodes(reader: tuple[WiegandReader, WiegandLines], clock: FakeClock) -> None:
    assert _frame(reader, clock, encode_w34(4660, 65535)) == Card("w34", 4660, 65535)


@pytest.mark.parametrize("flip", [0, 5, 13, 25])
def test_one_flipped_bit_fails_parity(reader: tuple[WiegandReader, WiegandLines], clock: FakeClock, flip: int) -> None:
    frame = bits(H10301_123_45678)
    frame[flip] ^= 1
    result = _frame(reader, clock, frame)
    assert isinstance(result, Rejected) and result.reason == "bad_parity"


def test_a_truncated_frame_is_rejected(reader: tuple[WiegandReader, WiegandLines], clock: FakeClock) -> None:
    result = _frame(reader, clock, bits(H10301_123_45678)[:3])
    assert result == Rejected("short_frame", "3 bits: shorter than any format (4, 8, 26, 34)")
    result = _frame(reader, clock, bits(H10301_123_45678)[:25])
    assert isinstance(result, Rejected) and result.reason == "unknown_length"


def test_an_overlong_frame_is_rejected(reader: tuple[WiegandReader, WiegandLines], clock: FakeClock) -> None:
    result = _frame(reader, clock, encode_w34(1, 2) + [0] * 6)
    assert isinstance(result, Rejected) and result.reason == "long_frame"


def test_a_bounced_pulse_rejects_the_whole_frame(reader: tuple[WiegandReader, WiegandLines], clock: FakeClock) -> None:
    rd, lines = reader
    frame = bits(H10301_123_45678)
    lines.send(frame[:10])
    lines.pulse(frame[10])
    clock.advance(0.00005)  # the contact bounces: a second edge 100 µs after the first
    lines.pulse(frame[10])
    clock.advance(0.002)
    lines.send(frame[11:])
    clock.advance(0.03)
    result = rd.poll()
    assert isinstance(result, Rejected) and result.reason == "bounce"
    assert "100 µs apart" in result.detail


def test_both_lines_low_at_once_is_rejected(reader: tuple[WiegandReader, WiegandLines], clock: FakeClock) -> None:
    rd, lines = reader
    lines.send(bits(H10301_123_45678)[:5])
    lines.d1.drive_low()
    clock.advance(0.0003)
    lines.d0.drive_low()  # while D1 is still low
    clock.advance(0.0001)
    lines.d0.drive_high()
    lines.d1.drive_high()
    clock.advance(0.002)
    lines.send(bits(H10301_123_45678)[6:])
    clock.advance(0.03)
    result = rd.poll()
    assert isinstance(result, Rejected) and result.reason == "both_lines_low"
    assert _frame(reader, clock, encode_h10301(2, 3)) == Card("h10301", 2, 3)  # the next frame is clean


def test_two_frames_separated_by_a_gap_decode_separately(reader: tuple[WiegandReader, WiegandLines],
                                                         clock: FakeClock) -> None:
    assert _frame(reader, clock, encode_h10301(1, 2)) == Card("h10301", 1, 2)
    assert _frame(reader, clock, encode_h10301(3, 4)) == Card("h10301", 3, 4)
    clock.advance(1)
    assert reader[0].poll() is None


def test_pulses_delivered_late_in_a_burst_keep_their_pin_event_spacing() -> None:
    kernel, loop = FakeClock(), FakeClock()  # pin events stamped by the kernel; callbacks run all at once
    factory = ClockedFactory(kernel)
    lines = WiegandLines(factory, D0, D1, kernel.advance)
    rd = build_wiegand(D0, D1, clock=loop, pin_factory=factory)
    lines.send(encode_h10301(7, 8))  # the loop clock did not move while the callbacks ran
    loop.advance(0.03)
    assert rd.poll() == Card("h10301", 7, 8)
    rd.close()


@pytest.mark.parametrize(("frame", "key"), [("0101", "5"), ("0000", "0"), ("1010", "*"), ("1011", "#")])
def test_4_bit_key_presses(reader: tuple[WiegandReader, WiegandLines], clock: FakeClock, frame: str, key: str) -> None:
    assert _frame(reader, clock, bits(frame)) == KeyPress(key)


@pytest.mark.parametrize(("frame", "key"), [("1110 0001", "1"), ("1111 0000", "0"), ("0101 1010", "*"),
                                            ("0100 1011", "#")])
def test_8_bit_key_presses(reader: tuple[WiegandReader, WiegandLines], clock: FakeClock, frame: str, key: str) -> None:
    assert _frame(reader, clock, bits(frame)) == KeyPress(key)


@pytest.mark.parametrize("frame", ["1100", "1111", "0000 0001", "1110 1100"])
def test_key_presses_that_are_no_key_are_rejected(frame: str) -> None:
    result = decode_frame(bits(frame))
    assert isinstance(result, Rejected) and result.reason == "bad_keypress"


@given(st.integers(0, 255), st.integers(0, 65535))
def test_every_26_bit_card_round_trips(facility: int, number: int) -> None:
    assert decode_frame(encode_h10301(facility, number)) == Card("h10301", facility, number)


@given(st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 33))
def test_any_single_bit_error_in_a_34_bit_frame_is_caught(facility: int, number: int, flip: int) -> None:
    frame = encode_w34(facility, number)
    frame[flip] ^= 1
    result = decode_frame(frame)
    assert isinstance(result, Rejected) and result.reason == "bad_parity"


def test_the_collector_ends_a_frame_only_after_the_gap() -> None:
    col = WiegandCollector(gap_s=0.025)
    for i, b in enumerate(encode_h10301(9, 9)):
        col.pulse(b, i * 0.002)
    assert col.poll(0.05 + 0.024) is None
    assert col.poll(0.05 + 0.026) == (Card("h10301", 9, 9), 0.05)


def test_a_frame_left_unpolled_ends_at_the_next_frames_first_pulse() -> None:
    col = WiegandCollector(gap_s=0.025)
    for start, frame in ((0.0, encode_h10301(1, 1)), (1.0, bits("1110 0001"))):
        for i, b in enumerate(frame):
            col.pulse(b, start + i * 0.002)
    assert col.poll(1.0) == (Card("h10301", 1, 1), 0.05)
    assert col.poll(1.1) == (KeyPress("1"), pytest.approx(1.014))
    assert col.poll(2.0) is None


def test_the_poll_thread_queues_frames_for_read(clock: FakeClock) -> None:
    factory = ClockedFactory(clock)
    lines = WiegandLines(factory, D0, D1, clock.advance)
    polls = threading.Event()
    calls = [0]

    def loop_clock() -> float:
        calls[0] += 1
        if calls[0] >= 3:  # by the second poll after the frame, the first has queued it
            polls.set()
        return clock()

    rd = WiegandReader(_input(factory, D0), _input(factory, D1), loop_clock, poll_interval_s=0.001)
    lines.send(encode_h10301(5, 6))  # the pin callbacks read the clock too
    clock.advance(0.03)
    calls[0] = 0
    polls.clear()
    rd.start()
    assert polls.wait(10)
    rd.stop()
    assert [frame for frame, _ in rd.read()] == [Card("h10301", 5, 6)]
    rd.close()


def _input(factory: ClockedFactory, pin: int) -> object:
    from gpiozero import InputDevice

    return InputDevice(pin, pull_up=True, pin_factory=factory)


class _FlakyTicksFactory(ClockedFactory):
    """Pin events whose timestamps cannot be compared ``failures`` times (a pin library fault)."""

    failures = 0

    def ticks_diff(self, later: float, earlier: float) -> float:  # type: ignore[override]
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EIO, "Input/output error")
        return float(super().ticks_diff(later, earlier))


def test_a_pin_event_that_fails_voids_the_frame_and_the_next_card_reads(clock: FakeClock) -> None:
    factory = _FlakyTicksFactory(clock)
    lines = WiegandLines(factory, D0, D1, clock.advance)
    rd = build_wiegand(D0, D1, clock=clock, pin_factory=factory)
    factory.failures = 1
    lines.send(encode_h10301(1, 2))  # the second pulse's event fails; nothing is raised into the pin library
    clock.advance(0.03)
    frames = [frame for frame, _ in rd.read()]
    assert isinstance(frames[0], Rejected) and frames[0].reason == READER_FAULT and "OSError" in frames[0].detail
    assert all(isinstance(f, Rejected) for f in frames)  # what is left of the voided frame is no card
    assert rd.edge_faults.errors == 1 and rd.health() is None
    lines.send(encode_h10301(3, 4))
    clock.advance(0.03)
    assert [frame for frame, _ in rd.read()] == [Card("h10301", 3, 4)]
    rd.close()
    factory.reset()


def test_a_failed_poll_is_retried_after_a_backoff_and_one_that_keeps_failing_is_reported(
        reader: tuple[WiegandReader, WiegandLines], clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    rd, lines = reader
    poll = WiegandCollector.poll
    broken, calls = [True], [0]

    def flaky_poll(self: WiegandCollector, now: float) -> Any:
        calls[0] += 1
        if broken[0]:
            raise RuntimeError("decoder fault")
        return poll(self, now)

    monkeypatch.setattr(WiegandCollector, "poll", flaky_poll)
    lines.send(encode_h10301(1, 2))
    clock.advance(0.03)
    failed_at = clock()
    rd.step()  # fails: the card in flight is void
    clock.advance(0.04)
    rd.step()
    assert calls[0] == 1  # backing off: not polled again within 50 ms
    assert rd.read() == [(Rejected(READER_FAULT, "RuntimeError: decoder fault"), failed_at)]
    for _ in range(510):  # 5.1 s more of polling every 10 ms, failing every time
        rd.step()
        clock.advance(0.01)
    health = rd.health()
    assert health is not None and "RuntimeError: decoder fault" in health
    assert 8 <= rd.faults.errors < 20  # retried all along, at most a second apart
    broken[0] = False
    for _ in range(110):
        rd.step()
        clock.advance(0.01)
    assert rd.health() is None
    assert [frame for frame, _ in rd.read()] == [Rejected(READER_FAULT, "RuntimeError: decoder fault")]  # the last
    lines.send(encode_h10301(5, 6))
    clock.advance(0.03)
    assert [frame for frame, _ in rd.read()] == [Card("h10301", 5, 6)]
