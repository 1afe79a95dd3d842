"""Frame-age watchdog: a camera that delivers nothing, or the same picture forever, is a lost camera.

A camera can fail without an error: the driver blocks in ``read()``, or it
keeps handing back one stale buffer. The capture thread reports every frame
here (``observe``) and a checker thread (a ``kiosk.door.timer.Ticker``
running ``check``) raises ``camera_lost`` when no new frame arrived for
``frame_timeout_s``, or every frame was identical for ``frozen_frames_s``:
the door is held locked (``on_lost``) until frames move again
(``on_restored``, ``camera_restored``). After ``watchdog_grace_s`` of loss
``healthy_for_watchdog()`` turns False: the service stops feeding systemd's
watchdog, and systemd restarts the kiosk (a fresh process often recovers a
wedged camera stack).

"Identical" is judged on a fingerprint of a subsampled frame: raw pixels, no
averaging, so a live sensor's noise makes consecutive frames differ even in
a still scene, while a stuck buffer gives the same bytes every time.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], None]


class CameraWatchdogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description=(
        "watch the age of the newest frame; off only for replayed recordings, which define their own time"))
    frame_timeout_s: float = Field(5.0, ge=0.5, le=600, description="camera_lost when no frame arrives for this long")
    frozen_frames_s: float | None = Field(20.0, ge=1, le=3600, description=(
        "camera_lost when every frame is bit-identical (on a subsample) for this long; none disables it, "
        "for a source that legitimately repeats frames (e.g. a stream whose encoder skips still scenes)"))
    watchdog_grace_s: float = Field(30.0, ge=0, le=3600, description=(
        "after camera_lost, stop feeding systemd's watchdog once the camera has been lost this long, so "
        "systemd restarts the service"))
    check_period_s: float = Field(0.5, ge=0.05, le=10, description="how often the checker thread looks at frame age")


def frame_fingerprint(rgb: npt.NDArray[np.uint8], samples: tuple[int, int] = (48, 64)) -> bytes:
    """A 16-byte hash of about ``samples`` pixels taken on a regular grid (raw values, no averaging)."""
    h, w = rgb.shape[:2]
    sy, sx = max(1, h // samples[0]), max(1, w // samples[1])
    sub = np.ascontiguousarray(rgb[::sy, ::sx])
    return hashlib.blake2b(sub.tobytes(), digest_size=16, person=repr(sub.shape).encode()[:16]).digest()


class FrameWatchdog:
    """Frame age and sameness, judged on an injected clock. Thread-safe.

    ``observe`` runs on the capture thread, ``check`` on the checker thread,
    ``healthy_for_watchdog`` on whichever thread feeds systemd.
    """

    def __init__(self, settings: CameraWatchdogSettings, clock: Callable[[], float], emit: Emit, *,
                 on_lost: Callable[[], None] | None = None, on_restored: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.emit = emit
        self.on_lost = on_lost
        self.on_restored = on_restored
        self.losses = 0
        self._lock = threading.Lock()
        now = clock()
        self._last_frame_at = now
        self._last_change_at = now
        self._last_check_at = now
        self._fingerprint: bytes | None = None
        self._lost_since: float | None = None
        self._lost_reason: str | None = None
        self._ended = False

    def arm(self) -> None:
        """Start judging from now (call when the camera is started)."""
        with self._lock:
            now = self.clock()
            self._last_frame_at = self._last_change_at = self._last_check_at = now
            self._ended = False

    @property
    def lost(self) -> bool:
        with self._lock:
            return self._lost_since is not None

    def observe(self, rgb: npt.NDArray[np.uint8]) -> None:
        """A frame arrived from the camera."""
        fp = frame_fingerprint(rgb)
        with self._lock:
            now = self.clock()
            self._last_frame_at = now
            changed = fp != self._fingerprint
            if changed:
                self._fingerprint = fp
                self._last_change_at = now
            restored = changed and self._lost_since is not None
            if restored:
                reason, seconds = self._lost_reason, now - (self._lost_since or now)
                self._lost_since = self._lost_reason = None
        if restored:
            logger.info("camera restored after %.1f s (%s)", seconds, reason)
            self.emit("camera_restored", {"after_s": round(seconds, 1), "lost_reason": reason})
            self._call(self.on_restored)

    def report_error(self, error: str) -> None:
        """The camera raised an error (the capture thread is reopening it)."""
        with self._lock:
            first = self._mark_lost_locked("error")
        if first:
            self._announce("error", {"error": error})

    def source_ended(self) -> None:
        """A finite source (a video file) ended: stop judging, it is not a fault."""
        with self._lock:
            self._ended = True

    def check(self) -> float | None:
        """Raise ``camera_lost`` when frames stopped or froze. Called by the checker thread."""
        with self._lock:
            now = self.clock()
            self._last_check_at = now
            if not self.settings.enabled or self._ended or self._lost_since is not None:
                return None
            age = now - self._last_frame_at
            still = now - self._last_change_at
            frozen_s = self.settings.frozen_frames_s
            if age >= self.settings.frame_timeout_s:
                reason, fields = "no_frame", {"seconds": round(age, 1)}
            elif frozen_s is not None and still >= frozen_s:
                reason, fields = "frozen", {"seconds": round(still, 1)}
            else:
                return None
            self._mark_lost_locked(reason)
        self._announce(reason, fields)
        return None

    def healthy_for_watchdog(self) -> bool:
        """False once the camera has been lost for ``watchdog_grace_s``, or the checker stopped checking."""
        s = self.settings
        if not s.enabled:
            return True
        with self._lock:
            now = self.clock()
            if self._lost_since is not None and now - self._lost_since >= s.watchdog_grace_s:
                return False
            # a checker that stopped running is as bad as a lost camera: nobody would notice one
            return now - self._last_check_at < s.frame_timeout_s + s.watchdog_grace_s

    def stats(self) -> dict[str, Any]:
        with self._lock:
            now = self.clock()
            return {"camera_lost": self._lost_since is not None, "camera_lost_reason": self._lost_reason,
                    "frame_age_s": round(now - self._last_frame_at, 2), "camera_losses": self.losses}

    # -- helpers ----------------------------------------------------------------------------------

    def _mark_lost_locked(self, reason: str) -> bool:
        """Mark the camera lost; True when it was not already."""
        if self._lost_since is not None:
            return False
        self._lost_since = self.clock()
        self._lost_reason = reason
        self.losses += 1
        return True

    def _announce(self, reason: str, fields: dict[str, Any]) -> None:
        logger.error("camera lost (%s): %s", reason, fields)
        self.emit("camera_lost", {"reason": reason, **fields})
        self._call(self.on_lost)

    def _call(self, fn: Callable[[], None] | None) -> None:
        if fn is None:
            return
        try:
            fn()
        except Exception:
            logger.exception("camera watchdog callback failed")
