"""The frame-source seam: open, read the next frame, close."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from kiosk.errors import KioskError


class CameraError(KioskError, OSError):
    """The camera could not be opened or stopped delivering frames."""

    exit_code = 12


@dataclass(frozen=True)
class Frame:
    rgb: npt.NDArray[np.uint8]
    t: float  # capture time, seconds on the loop's clock
    index: int


class FrameSource(Protocol):
    """``read()`` returns the next frame, None at the end of a finite source,
    and raises ``CameraError`` when the device fails."""

    def open(self) -> None: ...
    def read(self) -> Frame | None: ...
    def close(self) -> None: ...
