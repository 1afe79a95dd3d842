"""How many landmark frames a second each face really gets, against the rate the cues were measured at.

The liveness thresholds were calibrated at 15 landmark frames per second
(``sample_hz``). A door whose loop cannot keep up (a Raspberry Pi running the
embedder on every frame) or whose camera is slow samples fewer: the jitter
between neighbouring frames, which sets how much parallax must stand out,
grows, and fewer real people clear the bar in the prompted turn (at 5 a
second 2 of the 10 answering presentations of the self-test did, 7 at 15:
docs/liveness.md, "At a slower door"). The door stays locked either way;
this says so, so that an installer can fix it instead of the people at the
door.
"""

from __future__ import annotations

import statistics
from collections import deque

GAP_S = 1.0  # two samples of one face further apart than this are a break (a lost face), not a rate
MIN_INTERVALS = 15  # intervals before a rate is reported
BAND = 0.95  # below means under floor * BAND, back means at the floor again: jitter around it is no crossing
MIN_REPORT_S = 600.0  # at most one crossing reported per this many seconds


class SampleRate:
    """The median interval between consecutive landmark samples of a face, over the last ``size``
    intervals of any face, as samples per second; and when it crosses ``floor``."""

    def __init__(self, floor: float, size: int = 60) -> None:
        self.floor = floor
        self._intervals: deque[float] = deque(maxlen=size)
        self._below = False
        self._reported: float | None = None
        self._hz: float | None = None

    def add(self, interval: float) -> None:
        """The time since the same face's previous sample (seconds); breaks are ignored."""
        if 0.0 < interval <= GAP_S:
            self._intervals.append(interval)
            if len(self._intervals) >= MIN_INTERVALS:  # the median once per sample, not once per question
                self._hz = 1.0 / statistics.median(self._intervals)

    @property
    def hz(self) -> float | None:
        """Samples per second per face; None before ``MIN_INTERVALS`` intervals were seen."""
        return self._hz

    def crossed(self, now: float) -> bool | None:
        """True when the rate has fallen below ``floor`` (under ``BAND`` of it), False when it is back at
        ``floor`` after a True, None otherwise. A crossing is reported once, and at most one every
        ``MIN_REPORT_S`` (a rate hovering about the floor must not flood the log and the events); one
        held back is reported when that time has passed, if it still holds."""
        hz = self.hz
        if hz is None or self.floor <= 0:
            return None
        below = hz < self.floor if self._below else hz < self.floor * BAND
        if below == self._below:
            return None
        if self._reported is not None and now - self._reported < MIN_REPORT_S:
            return None
        self._below, self._reported = below, now
        return below
