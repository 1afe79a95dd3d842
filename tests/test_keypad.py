"""The matrix keypad on gpiozero's MockFactory (a pressed key connects its row to its column), and the key buffer."""

from __future__ import annotations

import logging
import threading

import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.door.faults import FaultPolicy
from kiosk.door.keypad import FAULT, LAYOUT_4X3, LAYOUT_4X4, Entry, KeyBuffer, MatrixKeypad, build_keypad
from tests.clock import FakeClock
from tests.second_factor_pins import KeyMatrix

ROWS, COLS = [5, 6, 13, 19], [12, 16, 20]


def _keypad(factory: MockFactory, clock: FakeClock, layout: str = LAYOUT_4X3,
            cols: list[int] = COLS) -> tuple[MatrixKeypad, KeyMatrix]:
    matrix = KeyMatrix(factory, ROWS, cols, layout)
    pad = build_keypad(ROWS, cols, clock=clock, layout=layout, debounce_s=0.03, pin_factory=factory)
    return pad, matrix


def _type(pad: MatrixKeypad, matrix: KeyMatrix, clock: FakeClock, keys: str) -> list[str]:
    """Press and release each key for 50 ms, the scanning thread's step every 10 ms; the keys reported."""
    seen: list[str] = []
    for key in keys:
        matrix.press(key)
        for _ in range(5):
            if (k := pad.step()) is not None:
                seen.append(k)
            clock.advance(0.01)
        matrix.release()
        for _ in range(5):
            pad.step()
            clock.advance(0.01)
    return seen


def _steps(pad: MatrixKeypad, clock: FakeClock, seconds: float, every: float = 0.01) -> None:
    for _ in range(round(seconds / every)):
        pad.step()
        clock.advance(every)


def test_rows_idle_high_and_a_scan_drives_each_row_low_once(factory: MockFactory) -> None:
    clock = FakeClock()
    pad, matrix = _keypad(factory, clock)
    for pin in matrix.rows:
        pin.clear_states()
    assert pad.pressed() == frozenset()
    for pin in matrix.rows:
        assert [s.state for s in pin.states] == [True, False, True]


def test_a_held_key_is_reported_once_after_the_debounce_time(factory: MockFactory) -> None:
    clock = FakeClock()
    pad, matrix = _keypad(factory, clock)
    matrix.press("5")
    assert pad.pressed() == frozenset({"5"})
    assert pad.scan_once() is None  # first sight: not yet stable
    clock.advance(0.02)
    assert pad.scan_once() is None
    clock.advance(0.011)
    assert pad.scan_once() == "5"
    for _ in range(20):  # held for 200 ms: no repeat
        clock.advance(0.01)
        assert pad.scan_once() is None
    assert pad.read_keys() == [("5", pytest.approx(1000.031))]
    assert pad.read_keys() == []


def test_every_key_of_the_4x3_layout_is_read_at_its_row_and_column(factory: MockFactory) -> None:
    clock = FakeClock()
    pad, matrix = _keypad(factory, clock)
    assert _type(pad, matrix, clock, LAYOUT_4X3) == list(LAYOUT_4X3)


def test_a_4x4_keypad_reads_its_letter_column(factory: MockFactory) -> None:
    clock = FakeClock()
    pad, matrix = _keypad(factory, clock, LAYOUT_4X4, [*COLS, 26])
    assert _type(pad, matrix, clock, "A0D#") == ["A", "0", "D", "#"]


def test_a_contact_bounce_shorter_than_the_debounce_time_reports_nothing(factory: MockFactory) -> None:
    clock = FakeClock()
    pad, matrix = _keypad(factory, clock)
    for _ in range(3):  # make and break every 10 ms
        matrix.press("7")
        pad.scan_once()
        clock.advance(0.01)
        matrix.release()
        pad.scan_once()
        clock.advance(0.01)
    assert pad.read_keys() == []


def test_two_keys_at_once_report_nothing_until_all_are_released(factory: MockFactory) -> None:
    clock = FakeClock()
    pad, matrix = _keypad(factory, clock)
    matrix.press("1", "9")
    for _ in range(10):
        pad.scan_once()
        clock.advance(0.01)
    matrix.release("9")  # "1" still held: it was part of a chord, not a fresh press
    for _ in range(10):
        pad.scan_once()
        clock.advance(0.01)
    assert pad.read_keys() == []
    matrix.release()
    assert _type(pad, matrix, clock, "3") == ["3"]


def test_the_scan_thread_queues_keys_and_stops_on_request(factory: MockFactory) -> None:
    scans = threading.Event()
    calls = [0]

    def clock() -> float:  # every scan reads the clock once; 10 ms per scan
        calls[0] += 1
        if calls[0] >= 10:
            scans.set()
        return calls[0] * 0.01

    matrix = KeyMatrix(factory, ROWS, COLS, LAYOUT_4X3)
    pad = build_keypad(ROWS, COLS, clock=clock, debounce_s=0.03, scan_interval_s=0.001, pin_factory=factory)
    matrix.press("8")
    pad.start()
    assert scans.wait(10)
    pad.stop()
    assert pad._thread is None
    assert [k for k, _ in pad.read_keys()] == ["8"]
    pad.close()


def test_a_failed_column_read_is_survived_and_the_next_key_press_arrives(factory: MockFactory) -> None:
    clock = FakeClock()
    pad, matrix = _keypad(factory, clock)
    matrix.fail_reads(1)  # one transient GPIO read error
    assert pad.step() is None
    assert pad.faults.errors == 1 and pad.health() is None  # counted; one failure is no failed keypad
    clock.advance(0.05)  # the backoff after one failure
    assert _type(pad, matrix, clock, "42") == ["4", "2"]
    assert [k for k, _ in pad.read_keys()] == [FAULT, "4", "2"]


def test_after_a_failed_scan_the_next_waits_for_a_backoff_on_the_clock(factory: MockFactory) -> None:
    clock = FakeClock()
    pad, matrix = _keypad(factory, clock)
    matrix.fail_reads(2)
    pad.step()  # fails: the next scan waits 50 ms
    clock.advance(0.049)
    pad.step()
    assert pad.faults.errors == 1  # not scanned while backing off
    clock.advance(0.001)
    pad.step()  # fails again: the wait doubles to 100 ms
    assert pad.faults.errors == 2
    clock.advance(0.099)
    matrix.press("7")
    assert pad.step() is None and pad.pressed() == frozenset({"7"})
    clock.advance(0.001)
    _steps(pad, clock, 0.05)
    assert [k for k, _ in pad.read_keys()] == [FAULT, "7"]


def test_a_failed_scan_voids_the_keys_typed_before_it(factory: MockFactory) -> None:
    clock = FakeClock()
    pad, matrix = _keypad(factory, clock)
    _type(pad, matrix, clock, "1001#47")  # a half-typed entry, not yet read
    failed_at = clock()
    matrix.fail_reads(1)
    pad.step()
    clock.advance(0.05)
    _type(pad, matrix, clock, "11#")
    assert pad.read_keys() == [(FAULT, failed_at), ("1", pytest.approx(failed_at + 0.09)),
                               ("1", pytest.approx(failed_at + 0.19)), ("#", pytest.approx(failed_at + 0.29))]


def test_a_keypad_that_keeps_failing_reports_itself_failed_and_logs_now_and_then(
        factory: MockFactory, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    pad, matrix = _keypad(factory, clock)
    matrix.fail_reads(-1)
    with caplog.at_level(logging.INFO, logger="kiosk.door.faults"):
        _steps(pad, clock, 4.9)
        assert pad.health() is None  # failing, but not for fail_after_s yet
        _steps(pad, clock, 0.2)
        assert pad.health() is not None and "OSError" in str(pad.health())
        assert pad.faults.errors >= 8  # retried all along, with a backoff of at most a second
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "keypad" in warnings[0].getMessage()
        matrix.fail_reads(0)
        _steps(pad, clock, 1.1)  # the next try after the backoff reads again
        assert pad.health() is None
        assert "reading again" in caplog.records[-1].getMessage()
    assert _type(pad, matrix, clock, "5") == ["5"]


def test_a_keypad_failing_again_and_again_between_good_scans_reports_itself_failed(factory: MockFactory) -> None:
    clock = FakeClock()
    pad, matrix = _keypad(factory, clock)
    for run in range(5):  # a loose connector: one failed read every 2 s, good scans in between
        assert pad.health() is None, run
        matrix.fail_reads(1)
        _steps(pad, clock, 2.0)
    health = pad.health()
    assert health is not None and "5 times within 60 s" in health  # every entry typed meanwhile was voided
    _steps(pad, clock, 52.0)  # the first of those 5 runs is now more than 60 s old
    assert pad.health() is None and pad.faults.errors == 5


def test_a_fault_policy_sets_the_backoff_and_when_the_keypad_counts_as_failed(factory: MockFactory) -> None:
    clock = FakeClock()
    matrix = KeyMatrix(factory, ROWS, COLS, LAYOUT_4X3)
    pad = build_keypad(ROWS, COLS, clock=clock, pin_factory=factory,
                       faults=FaultPolicy(backoff_s=(0.01, 0.01), fail_after_s=0.5))
    matrix.fail_reads(-1)
    _steps(pad, clock, 0.49)
    assert pad.health() is None
    _steps(pad, clock, 0.02)
    assert pad.health() is not None and pad.faults.errors >= 40  # a try at (nearly) every 10 ms step
    with pytest.raises(ValueError, match="backoff_s"):
        FaultPolicy(backoff_s=(1.0, 0.5))
    with pytest.raises(ValueError, match="flaky_runs >= 2"):
        FaultPolicy(flaky_runs=1)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_scanning_thread_that_ended_for_any_reason_is_reported(factory: MockFactory) -> None:
    def broken_clock() -> float:
        raise RuntimeError("clock gone")

    KeyMatrix(factory, ROWS, COLS, LAYOUT_4X3)
    pad = build_keypad(ROWS, COLS, clock=broken_clock, scan_interval_s=0.001, pin_factory=factory)
    pad.start()
    assert pad._thread is not None
    pad._thread.join(10)
    assert pad.health() == "the scanning thread has ended"
    pad.close()


def test_close_releases_the_pins(factory: MockFactory) -> None:
    clock = FakeClock()
    pad, _ = _keypad(factory, clock)
    pad.close()
    again, _ = _keypad(factory, clock)  # the same pins can be claimed again
    again.close()


def test_layout_must_match_the_matrix_size(factory: MockFactory) -> None:
    with pytest.raises(ValueError, match="needs 12 keys"):
        build_keypad(ROWS, COLS, clock=FakeClock(), layout="123", pin_factory=factory)


# -- the key buffer (pure) --------------------------------------------------------------------------------------------

def _feed(buf: KeyBuffer, keys: str, start: float = 0.0, step: float = 0.5) -> list[Entry]:
    out = []
    for i, k in enumerate(keys):
        if (e := buf.press(k, start + i * step)) is not None:
            out.append(e)
    return out


def test_digits_then_hash_submit_an_entry() -> None:
    assert _feed(KeyBuffer(), "1234#") == [Entry(("1234",), 2.0)]


def test_star_clears_what_was_typed() -> None:
    assert [e.fields for e in _feed(KeyBuffer(), "99*1234#")] == [("1234",)]


def test_code_then_pin_make_one_two_field_entry() -> None:
    assert [e.fields for e in _feed(KeyBuffer(fields=2), "1001#4711#")] == [("1001", "4711")]


def test_a_pause_longer_than_the_timeout_forgets_the_half_typed_entry() -> None:
    buf = KeyBuffer(timeout_s=10)
    _feed(buf, "12")
    assert buf.pending
    assert buf.press("3", 10.6) is None  # 10.1 s after "2": "12" is gone
    assert buf.press("4", 11.0) is None
    assert buf.press("#", 11.5) == Entry(("34",), 11.5)


def test_expire_drops_a_pending_entry_without_a_key() -> None:
    buf = KeyBuffer(timeout_s=10)
    _feed(buf, "55")
    assert not buf.expire(5.0)
    assert buf.expire(10.6)
    assert not buf.pending


def test_an_overlong_field_is_discarded_not_truncated() -> None:
    buf = KeyBuffer(max_digits=6)
    assert _feed(buf, "1234567#") == []
    assert [e.fields for e in _feed(buf, "123456#", start=10)] == [("123456",)]


def test_hash_on_an_empty_field_and_letters_are_ignored() -> None:
    assert [e.fields for e in _feed(KeyBuffer(), "#A12B34#")] == [("1234",)]
