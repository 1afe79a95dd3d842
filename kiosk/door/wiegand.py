"""A Wiegand reader on two GPIO inputs: pure frame decoders and a gpiozero collector.

Both lines idle high; the reader sends a 0 as a short low pulse on D0 and a
1 on D1 (typically 50-100 µs wide, 1-2 ms apart). A frame ends when no pulse
has come for ``gap_s``. Pulse times are taken from the pin events' own
timestamps where the pin factory provides them (lgpio: the kernel's), so a
burst of callbacks delivered late by a busy interpreter keeps its spacing;
the end-of-frame gap is measured on an injected clock by :meth:`WiegandReader.poll`.

Decoded formats:

- 26 bits, HID H10301: even parity over bits 1-12, 8-bit facility code,
  16-bit card number, odd parity over bits 13-24.
- 34 bits: even parity over bits 1-16, 16-bit facility, 16-bit card, odd
  parity over bits 17-32.
- 4-bit key press: the key's value (0-9, 10 = ``*``, 11 = ``#``).
- 8-bit key press: the complement of the value in the high nibble, the
  value in the low nibble (``1`` is 1110 0001).

Rejected, with a reason: bad parity, frames shorter or longer than these,
another length, pulses closer than ``min_interval_s`` (contact bounce or
noise), both lines low at once (wiring fault or tampering), an 8-bit key
press whose nibbles disagree.

Faults: an exception while handling a pin event (which the pin library
calls on its own thread: the exception must not go up into it) or in the polling
thread voids what was in flight, the frame being received and the frames
not yet read, and queues ``Rejected("reader_fault", ...)`` in their place,
so the reader's owner forgets a half-typed entry. Failures are counted and
logged (rate-limited); the polling thread carries on after a backoff on the
injected clock, and :meth:`WiegandReader.health` says when it has failed for
good (see :mod:`kiosk.door.faults`).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kiosk.door.faults import FaultPolicy, ReadFaults, reader_health

logger = logging.getLogger(__name__)

KEY_NAMES = "0123456789*#"
MAX_BITS = 64
READER_FAULT = "reader_fault"  # the reason of the mark a fault leaves among read()'s frames


@dataclass(frozen=True)
class Card:
    format: str  # "h10301" (26 bits) | "w34"
    facility: int
    number: int

    def __str__(self) -> str:
        return f"{self.format}:{self.facility}:{self.number}"


@dataclass(frozen=True)
class KeyPress:
    key: str  # "0".."9", "*", "#"


@dataclass(frozen=True)
class Rejected:
    reason: str  # bad_parity | short_frame | long_frame | unknown_length | bounce | both_lines_low | bad_keypress
    #              | reader_fault (not a frame: what was in flight when the reader failed is void)
    detail: str


Decoded = Card | KeyPress | Rejected


def _value(bits: Sequence[int]) -> int:
    v = 0
    for b in bits:
        v = (v << 1) | b
    return v


def _parity_card(bits: Sequence[int], fmt: str, facility_bits: int) -> Decoded:
    half = len(bits) // 2
    even_ok = sum(bits[:half]) % 2 == 0  # leading parity bit + first half of the data
    odd_ok = sum(bits[half:]) % 2 == 1  # second half of the data + trailing parity bit
    if not (even_ok and odd_ok):
        which = " and ".join(n for n, ok in (("leading even", even_ok), ("trailing odd", odd_ok)) if not ok)
        return Rejected("bad_parity", f"{len(bits)}-bit frame fails its {which} parity")
    data = bits[1:-1]
    return Card(fmt, _value(data[:facility_bits]), _value(data[facility_bits:]))


def decode_frame(bits: Sequence[int]) -> Decoded:
    """One frame's bits, first received first, into a card, a key press or a rejection."""
    n = len(bits)
    if n == 26:
        return _parity_card(bits, "h10301", 8)
    if n == 34:
        return _parity_card(bits, "w34", 16)
    if n == 4:
        v = _value(bits)
        if v >= len(KEY_NAMES):
            return Rejected("bad_keypress", f"4-bit key press value {v} is not a key (0-9, 10 '*', 11 '#')")
        return KeyPress(KEY_NAMES[v])
    if n == 8:
        hi, lo = _value(bits[:4]), _value(bits[4:])
        if hi != (~lo & 0xF):
            return Rejected("bad_keypress", f"8-bit key press {_value(bits):08b}: high nibble is not the complement of the low")
        if lo >= len(KEY_NAMES):
            return Rejected("bad_keypress", f"8-bit key press value {lo} is not a key (0-9, 10 '*', 11 '#')")
        return KeyPress(KEY_NAMES[lo])
    if n < 4:
        return Rejected("short_frame", f"{n} bits: shorter than any format (4, 8, 26, 34)")
    if n > 34:
        return Rejected("long_frame", f"{n} bits: longer than any format (4, 8, 26, 34)")
    return Rejected("unknown_length", f"{n} bits: not a 4, 8, 26 or 34-bit format")


def encode_h10301(facility: int, number: int) -> list[int]:
    """The 26 bits a reader sends for a card (used by tests and by the admin tool's card checks)."""
    return _encode(facility, number, 8)


def encode_w34(facility: int, number: int) -> list[int]:
    return _encode(facility, number, 16)


def _encode(facility: int, number: int, fbits: int) -> list[int]:
    if not (0 <= facility < 1 << fbits and 0 <= number < 1 << 16):
        raise ValueError(f"facility must fit {fbits} bits and card number 16 bits, got {facility}, {number}")
    data = [int(c) for c in f"{facility:0{fbits}b}{number:016b}"]
    half = len(data) // 2
    return [sum(data[:half]) % 2, *data, 1 - sum(data[half:]) % 2]


class WiegandCollector:
    """Pulses in, decoded frames out (pure; times in seconds from the caller).

    A frame ends when ``gap_s`` passes without a pulse: noticed by ``poll``,
    or by the first pulse of the next frame if nobody polled in between.
    """

    def __init__(self, gap_s: float = 0.025, min_interval_s: float = 0.0002, max_pending: int = 64) -> None:
        self.gap_s = gap_s
        self.min_interval_s = min_interval_s
        self._bits: list[int] = []
        self._last: float | None = None
        self._fault: Rejected | None = None
        self._done: deque[tuple[Decoded, float]] = deque(maxlen=max_pending)

    def pulse(self, bit: int, at: float, since_previous: float | None = None) -> None:
        """A low pulse on D0 (``bit`` 0) or D1 (1) at ``at``; ``since_previous``: spacing measured by the source."""
        if self._last is not None and at - self._last >= self.gap_s:
            self._finish()
            since_previous = None
        if self._last is not None:
            spacing = since_previous if since_previous is not None else at - self._last
            if spacing < self.min_interval_s and self._fault is None:
                self._fault = Rejected("bounce", f"two pulses {spacing * 1e6:.0f} µs apart (minimum "
                                                 f"{self.min_interval_s * 1e6:.0f} µs) after bit {len(self._bits)}")
        self._last = at
        if len(self._bits) <= MAX_BITS:
            self._bits.append(bit)

    def fault(self, reason: str, detail: str) -> None:
        """Mark the frame being received as unusable (e.g. both lines low)."""
        if self._fault is None:
            self._fault = Rejected(reason, detail)

    def poll(self, now: float) -> tuple[Decoded, float] | None:
        """The oldest finished frame (one whose last pulse is ``gap_s`` old) and the time of its last pulse."""
        if self._last is not None and now - self._last >= self.gap_s:
            self._finish()
        return self._done.popleft() if self._done else None

    def _finish(self) -> None:
        bits, fault, last = self._bits, self._fault, self._last
        self._bits, self._last, self._fault = [], None, None
        self._done.append((fault if fault is not None else decode_frame(bits), last if last is not None else 0.0))


class WiegandReader:
    """D0/D1 as gpiozero ``InputDevice``s with pull-ups; pulses recorded from their pin events.

    ``poll()`` returns decoded frames (and logs rejects); call it from the
    kiosk's loop, or ``start()`` a thread that polls and queues them for
    ``read()``. Rejections are returned too, so the caller can count them.
    """

    def __init__(self, d0: Any, d1: Any, clock: Callable[[], float], gap_s: float = 0.025,
                 min_interval_s: float = 0.0002, poll_interval_s: float = 0.01,
                 faults: FaultPolicy | None = None) -> None:
        self.d0, self.d1, self.clock = d0, d1, clock
        self.poll_interval_s = poll_interval_s
        self.gap_s, self.min_interval_s = gap_s, min_interval_s
        self.faults = ReadFaults("Wiegand reader", faults)  # the polling thread's
        self.edge_faults = ReadFaults("Wiegand reader (pin events)", faults, backs_off=False)
        self._collector = WiegandCollector(gap_s, min_interval_s)
        self._lock = threading.Lock()
        self._last_ticks: Any = None
        self._queue: list[tuple[Decoded, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._low = [False, False]  # each line's level as its events tell it, in event order
        # gpiozero holds pin handlers weakly: bound methods of this reader, which the owner keeps alive.
        for dev, handler in ((d0, self._d0_changed), (d1, self._d1_changed)):
            dev.pin.edges = "both"
            dev.pin.when_changed = handler

    def _d0_changed(self, ticks: Any, state: int) -> None:
        self._edge(0, ticks, state)

    def _d1_changed(self, ticks: Any, state: int) -> None:
        self._edge(1, ticks, state)

    def _edge(self, bit: int, ticks: Any, state: int) -> None:
        """A pin event. Levels come from the events, not from reading the pins: a late callback
        must not see the other line's later pulse as overlapping this one.

        Never raises: the pin library calls this on its own event thread, and an exception must not
        go up into it (that thread serves every pin's events). A failure voids what is in flight.
        """
        now = self.clock()
        try:
            self._pulse(bit, ticks, state, now)
        except Exception as exc:
            self._void(exc, now)
            self.edge_faults.failed(exc, now)
        else:
            self.edge_faults.succeeded(now)

    def _pulse(self, bit: int, ticks: Any, state: int, now: float) -> None:
        with self._lock:
            self._low[bit] = not state
            if state:  # rising edge: the end of the pulse
                return
            since = None if self._last_ticks is None else self.d0.pin_factory.ticks_diff(ticks, self._last_ticks)
            self._last_ticks = ticks
            if self._low[1 - bit]:
                self._collector.fault("both_lines_low", "D0 and D1 low at once: check the wiring, or tampering")
            self._collector.pulse(bit, now, since)

    def poll(self) -> Decoded | None:
        """The oldest frame that has ended, or None (rejections are logged and returned)."""
        timed = self._poll_timed()
        return None if timed is None else timed[0]

    def _poll_timed(self) -> tuple[Decoded, float] | None:
        with self._lock:
            timed = self._collector.poll(self.clock())
            if timed is not None:
                self._last_ticks = None
        if timed is not None and isinstance(timed[0], Rejected):
            logger.warning("Wiegand frame rejected: %s (%s)", timed[0].reason, timed[0].detail)
        return timed

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="wiegand", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            self.step()

    def step(self) -> None:
        """One turn of the polling thread: queue the frames that have ended, unless waiting out a backoff.

        Never raises: a failure voids what is in flight and is counted and logged by ``self.faults``.
        """
        now = self.clock()
        if not self.faults.ready(now):
            return
        try:
            self._drain()
        except Exception as exc:
            self._void(exc, now)
            self.faults.failed(exc, now)
            return
        self.faults.succeeded(now)

    def _drain(self) -> None:
        while (timed := self._poll_timed()) is not None:
            with self._lock:
                self._queue.append(timed)
                del self._queue[:-64]

    def _void(self, exc: BaseException, now: float) -> None:
        """Forget the frame being received and the frames not yet read; leave a ``reader_fault`` mark."""
        with self._lock:
            self._collector = WiegandCollector(self.gap_s, self.min_interval_s)
            self._last_ticks, self._low = None, [False, False]
            self._queue = [(Rejected(READER_FAULT, f"{type(exc).__name__}: {exc}"), now)]

    def health(self) -> str | None:
        """None while polling works; otherwise what is wrong (``faults.reader_health``)."""
        return reader_health(self._thread, self.faults, self.clock, "polling")

    def read(self) -> list[tuple[Decoded, float]]:
        """Frames decoded since the last call, with the time of their last pulse, oldest first.

        Without the thread (``start()`` not called), this polls itself. A ``Rejected`` frame with
        reason ``reader_fault`` marks where the reader failed: nothing before it is still in flight.
        """
        if self._thread is None:
            self.step()
        with self._lock:
            out, self._queue = self._queue, []
        return out

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        self.stop()
        for dev in (self.d0, self.d1):
            dev.pin.when_changed = None
            dev.close()


def build_wiegand(d0_pin: int | str, d1_pin: int | str, *, clock: Callable[[], float], gap_s: float = 0.025,
                  min_interval_s: float = 0.0002, pin_factory: Any = None,
                  faults: FaultPolicy | None = None) -> WiegandReader:
    """gpiozero inputs with pull-ups on D0/D1. A 5 V reader needs level shifting to 3.3 V: see docs/second_factor.md."""
    from gpiozero import InputDevice

    d0 = InputDevice(d0_pin, pull_up=True, pin_factory=pin_factory)
    d1 = InputDevice(d1_pin, pull_up=True, pin_factory=pin_factory)
    return WiegandReader(d0, d1, clock, gap_s=gap_s, min_interval_s=min_interval_s, faults=faults)
