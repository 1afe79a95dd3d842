"""gpiozero mock pins wired like a keypad matrix and a Wiegand reader, on an injected clock."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin
from gpiozero.pins.pi import PiPin


class ClockedPin(MockPin):
    """A MockPin whose change events carry the factory's (fake) ticks, as lgpio's carry the kernel's."""

    def _call_when_changed(self) -> None:  # type: ignore[override]
        PiPin._call_when_changed(self, self.factory.ticks(), self._state)


class ClockedFactory(MockFactory):
    """MockFactory whose ticks come from a test clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(pin_class=ClockedPin)
        self.clock = clock

    def ticks(self) -> float:  # type: ignore[override]
        return self.clock()


class RowPin(MockPin):
    """A keypad row: whenever its level changes, the matrix recomputes the columns."""

    matrix: KeyMatrix | None = None

    def _change_state(self, value: bool) -> bool:  # type: ignore[override]
        changed = bool(super()._change_state(value))
        if self.matrix is not None:
            self.matrix.settle()
        return changed


class ColumnPin(MockPin):
    """A keypad column whose reads can be made to fail as a GPIO driver's do (``OSError`` EIO)."""

    failing_reads = 0  # the next this many reads raise; -1: every read, until set back to 0

    def _get_state(self) -> bool:  # type: ignore[override]
        if self.failing_reads:
            if self.failing_reads > 0:
                self.failing_reads -= 1
            raise OSError(errno.EIO, "Input/output error")
        return bool(super()._get_state())


class KeyMatrix:
    """The keys of a matrix keypad: a pressed key connects its row pin to its column pin.

    A column reads low when any pressed key on it sits on a row driven low;
    otherwise its pull-up holds it high.
    """

    def __init__(self, factory: MockFactory, rows: Sequence[int], cols: Sequence[int], layout: str) -> None:
        self.factory, self.layout, self.n_cols = factory, layout, len(cols)
        self.rows: list[Any] = [factory.pin(r, pin_class=RowPin) for r in rows]
        self.cols: list[Any] = [factory.pin(c, pin_class=ColumnPin) for c in cols]
        self.down: set[tuple[int, int]] = set()
        for pin in self.rows:
            pin.matrix = self

    def position(self, key: str) -> tuple[int, int]:
        i = self.layout.index(key)
        return divmod(i, self.n_cols)

    def press(self, *keys: str) -> None:
        self.down.update(self.position(k) for k in keys)
        self.settle()

    def release(self, *keys: str) -> None:
        if keys:
            self.down.difference_update(self.position(k) for k in keys)
        else:
            self.down.clear()
        self.settle()

    def fail_reads(self, n: int = 1) -> None:
        """The next ``n`` reads of the first column raise (-1: every read; 0: reads work again)."""
        self.cols[0].failing_reads = n

    def settle(self) -> None:
        for c, col in enumerate(self.cols):
            if col.function != "input":
                continue
            low = any(cc == c and self.rows[r].state is False for r, cc in self.down)
            col.drive_low() if low else col.drive_high()


class WiegandLines:
    """Drive D0/D1 low pulses like a reader does, moving the clock between edges."""

    def __init__(self, factory: MockFactory, d0: int, d1: int, advance: Callable[[float], None]) -> None:
        self.d0: Any = factory.pin(d0)
        self.d1: Any = factory.pin(d1)
        self.advance = advance

    def pulse(self, bit: int, width_s: float = 0.00005) -> None:
        pin = self.d1 if bit else self.d0
        pin.drive_low()
        self.advance(width_s)
        pin.drive_high()

    def send(self, bits: Iterable[int], interval_s: float = 0.002, width_s: float = 0.00005) -> None:
        for bit in bits:
            self.pulse(bit, width_s)
            self.advance(interval_s - width_s)


def bits(text: str) -> list[int]:
    return [int(c) for c in text.replace(" ", "")]
