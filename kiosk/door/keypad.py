"""A matrix keypad on GPIO, and the key buffer that turns key presses into entries.

Wiring: each row on an output held high (idle), each column on an input with
the internal pull-up. A scan drives one row low at a time; a pressed key
connects its row to its column, so that column reads low. Scanned every
``scan_interval_s`` by a thread (``while not stop.wait(interval)``, as
gpiozero's ``GPIOThread``), debounced on an injected clock: a set of pressed
keys counts only once it has been the same for ``debounce_s``; a key is
reported when it becomes the only key down and was not already down (two keys
at once report nothing, nor does the key left when one of them is released:
ghosting on a matrix without diodes makes chords ambiguous).

A scan that fails (a pin read raising, e.g. ``OSError`` from the GPIO
driver) does not end the thread: the keys queued before it are dropped and a
:data:`FAULT` mark takes their place, so whoever reads the keys forgets what
was being typed; the failure is counted and logged (rate-limited), and the
next scan waits for a backoff on the injected clock (:mod:`kiosk.door.faults`).
:meth:`MatrixKeypad.health` says when scanning has failed for good (no good
scan for ``fail_after_s``, failures again and again, or the thread ended),
for the service's watchdog.

:class:`KeyBuffer` is pure: digits accumulate, ``*`` clears, ``#`` ends a
field; an entry is complete after ``fields`` fields (1: ``PIN#``; 2:
``code#PIN#``); it is forgotten after ``timeout_s`` without a key. The same
buffer takes the key presses a Wiegand reader's keypad sends.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kiosk.door.faults import FaultPolicy, ReadFaults, reader_health

logger = logging.getLogger(__name__)

LAYOUT_4X3 = "123456789*0#"
LAYOUT_4X4 = "123A456B789C*0#D"
FAULT = "fault"  # among read_keys(): a scan failed here, so the keys typed before it are void


@dataclass(frozen=True)
class Entry:
    """What was typed: the ``#``-terminated fields, in order, and when the last key came."""

    fields: tuple[str, ...]
    at: float


class KeyBuffer:
    def __init__(self, timeout_s: float = 10.0, fields: int = 1, max_digits: int = 12) -> None:
        if timeout_s <= 0 or fields not in (1, 2) or max_digits < 1:
            raise ValueError(f"KeyBuffer needs timeout_s > 0, fields 1 or 2, max_digits >= 1; got {timeout_s}, "
                             f"{fields}, {max_digits}")
        self.timeout_s = timeout_s
        self.fields = fields
        self.max_digits = max_digits
        self._done: list[str] = []
        self._digits = ""
        self._last: float | None = None
        self._overflow = False

    @property
    def pending(self) -> bool:
        return bool(self._done or self._digits or self._overflow)

    def clear(self) -> None:
        self._done, self._digits, self._overflow, self._last = [], "", False, None

    def expire(self, now: float) -> bool:
        """Forget a half-typed entry after the timeout; True when one was forgotten."""
        if self._last is not None and now - self._last >= self.timeout_s:
            dropped = self.pending
            self.clear()
            if dropped:
                logger.info("keypad entry timed out after %.0f s", self.timeout_s)
            return dropped
        return False

    def press(self, key: str, now: float) -> Entry | None:
        self.expire(now)
        self._last = now
        if key == "*":
            self.clear()
            return None
        if key == "#":
            if self._overflow:
                logger.info("keypad entry discarded: a field had more than %d digits", self.max_digits)
                self.clear()
                return None
            if not self._digits:
                return None  # '#' on an empty field: nothing to submit
            self._done.append(self._digits)
            self._digits = ""
            if len(self._done) < self.fields:
                return None
            entry = Entry(tuple(self._done), now)
            self.clear()
            return entry
        if key.isdigit() and len(key) == 1:
            if len(self._digits) >= self.max_digits:
                self._overflow = True
            else:
                self._digits += key
        return None  # letters of a 4x4 pad are ignored


class KeyDebouncer:
    """Pressed-key sets in, single key presses out (pure; time from the caller)."""

    def __init__(self, debounce_s: float = 0.03) -> None:
        self.debounce_s = debounce_s
        self._stable: frozenset[str] = frozenset()
        self._candidate: frozenset[str] = frozenset()
        self._since = 0.0

    def update(self, pressed: frozenset[str], now: float) -> str | None:
        if pressed != self._candidate:
            self._candidate, self._since = pressed, now
            if self.debounce_s > 0:
                return None
        if pressed == self._stable or now - self._since < self.debounce_s:
            return None
        previous, self._stable = self._stable, pressed
        if len(pressed) == 1 and not pressed & previous:  # a fresh key, not what remains of a chord
            return next(iter(pressed))
        return None


class Row(Protocol):
    def on(self) -> None: ...
    def off(self) -> None: ...
    def close(self) -> None: ...


class Column(Protocol):
    @property
    def is_active(self) -> bool: ...
    def close(self) -> None: ...


class MatrixKeypad:
    """Rows (outputs, ``on()`` drives the row low) and columns (inputs, active when low) injected."""

    def __init__(self, rows: Sequence[Row], cols: Sequence[Column], clock: Callable[[], float],
                 layout: str = LAYOUT_4X3, debounce_s: float = 0.03, scan_interval_s: float = 0.01,
                 max_queued: int = 64, faults: FaultPolicy | None = None) -> None:
        if len(layout) != len(rows) * len(cols):
            raise ValueError(f"a {len(rows)}x{len(cols)} keypad needs {len(rows) * len(cols)} keys in its layout, "
                             f"got {len(layout)} ({layout!r})")
        self.rows, self.cols, self.clock, self.layout = list(rows), list(cols), clock, layout
        self.scan_interval_s = scan_interval_s
        self._debouncer = KeyDebouncer(debounce_s)
        self._keys: deque[tuple[str, float]] = deque(maxlen=max_queued)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.faults = ReadFaults("keypad", faults)
        for row in self.rows:
            row.off()

    def pressed(self) -> frozenset[str]:
        """One scan of the matrix: the keys down right now."""
        down = set()
        for r, row in enumerate(self.rows):
            row.on()
            try:
                for c, col in enumerate(self.cols):
                    if col.is_active:
                        down.add(self.layout[r * len(self.cols) + c])
            finally:
                row.off()
        return frozenset(down)

    def scan_once(self) -> str | None:
        """Scan, debounce, queue a new key press (and return it)."""
        now = self.clock()
        key = self._debouncer.update(self.pressed(), now)
        if key is not None:
            with self._lock:
                self._keys.append((key, now))
        return key

    def step(self) -> str | None:
        """One turn of the scanning thread: a scan, unless waiting out the backoff after a failed one.

        Never raises. A failed scan voids the keys not yet read (a :data:`FAULT`
        mark in their place) and is counted and logged by ``self.faults``.
        """
        now = self.clock()
        if not self.faults.ready(now):
            return None
        try:
            key = self.scan_once()
        except Exception as exc:
            with self._lock:
                self._keys.clear()
                self._keys.append((FAULT, now))
            self.faults.failed(exc, now)
            return None
        self.faults.succeeded(now)
        return key

    def health(self) -> str | None:
        """None while scanning works; otherwise what is wrong (``faults.reader_health``)."""
        return reader_health(self._thread, self.faults, self.clock, "scanning")

    def read_keys(self) -> list[tuple[str, float]]:
        """Key presses (key, time) since the last call, oldest first; :data:`FAULT` where a scan failed."""
        with self._lock:
            keys = list(self._keys)
            self._keys.clear()
        return keys

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="keypad", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.scan_interval_s):
            self.step()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        self.stop()
        for row in self.rows:
            row.close()
        for col in self.cols:
            col.close()


def build_keypad(row_pins: Sequence[int | str], col_pins: Sequence[int | str], *, clock: Callable[[], float],
                 layout: str = LAYOUT_4X3, debounce_s: float = 0.03, scan_interval_s: float = 0.01,
                 pin_factory: Any = None, faults: FaultPolicy | None = None) -> MatrixKeypad:
    """gpiozero devices on the given pins: rows idle high (``OutputDevice(active_high=False)``), columns pulled up."""
    from gpiozero import DigitalInputDevice, OutputDevice

    rows = [OutputDevice(p, active_high=False, initial_value=False, pin_factory=pin_factory) for p in row_pins]
    cols = [DigitalInputDevice(p, pull_up=True, pin_factory=pin_factory) for p in col_pins]
    return MatrixKeypad(rows, cols, clock, layout=layout, debounce_s=debounce_s, scan_interval_s=scan_interval_s,
                        faults=faults)
