"""A dependency-free progress bar for long work, on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``Progress(total, "calibrating")(done)``: redraws in place on a terminal,
    prints every tenth otherwise (logs, CI)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.monotonic()
        self.tty = self.stream.isatty()
        self._last_decile = -1

    def __call__(self, done: int, total: int | None = None) -> None:
        if total:
            self.total = max(total, 1)
        frac = min(done / self.total, 1.0)
        elapsed = time.monotonic() - self.start
        bar = "#" * int(frac * self.width)
        line = f"{self.label} [{bar:<{self.width}}] {done}/{self.total} {elapsed:5.1f}s"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done >= self.total else ""))
            self.stream.flush()
        elif int(frac * 10) > self._last_decile or done >= self.total:
            self._last_decile = int(frac * 10)
            self.stream.write(line + "\n")
