"""Capture on its own thread, newest frame wins, lost cameras reopened with backoff.

With a ``FrameWatchdog`` attached, every frame is reported to it and it is
the one voice for ``camera_lost``/``camera_restored`` (errors, silence and
frozen pictures alike); without one, errors are reported here as before.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from kiosk.camera.base import CameraError, Frame, FrameSource
from kiosk.camera.watchdog import FrameWatchdog
from kiosk.door.relay import Emit

logger = logging.getLogger(__name__)


class Capture:
    """Reads a ``FrameSource`` on a thread and hands over only the newest frame.

    A frame the consumer has not taken when the next arrives is dropped and
    counted. ``lockstep=True`` (replayed sequences) waits for the consumer
    instead, so every frame of a recording is processed, and reads the next
    frame only when the consumer asks for it: a replay that advances a
    simulated clock on ``read`` then never moves it while the previous frame is
    still being processed, so a replay gives the same result on any machine.
    """

    def __init__(self, source: FrameSource, emit: Emit, *, lockstep: bool = False,
                 backoff_s: tuple[float, float] = (0.5, 10.0), on_lost: Callable[[], None] | None = None,
                 watchdog: FrameWatchdog | None = None) -> None:
        self.source = source
        self.watchdog = watchdog
        self.on_lost = on_lost  # runs on the capture thread the moment the camera fails
        self.emit = emit
        self.lockstep = lockstep
        self.backoff_s = backoff_s
        self.dropped = 0
        self.captured = 0
        self.reconnects = 0
        self.healthy = threading.Event()
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._slot: queue.Queue[Frame] = queue.Queue(maxsize=1)
        self._asked = threading.Event()  # lockstep: the consumer wants the next frame
        self._waiting = False  # lockstep: the consumer asked and has not had its frame yet (consumer's thread only)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the source and start reading; a source that will not open is retried with backoff."""
        if self.watchdog is not None:
            self.watchdog.arm()
        try:
            self.source.open()
            self.healthy.set()
        except CameraError as exc:
            self._pending: CameraError | None = exc
        else:
            self._pending = None
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def get(self, timeout: float) -> Frame | None:
        if self.lockstep and not self._waiting:
            # One request per frame: asking again after a timeout, while the source is still reading,
            # would read the frame after next as soon as this one is handed over, moving a replay's
            # clock on while the loop is still on this one (results would then depend on the load).
            self._waiting = True
            self._asked.set()
        try:
            frame = self._slot.get(timeout=timeout)
        except queue.Empty:
            return None
        self._waiting = False
        return frame

    @property
    def finished(self) -> bool:
        """The source ended and every frame was handed over."""
        return self.ended.is_set() and self._slot.empty()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.source.close()
        except CameraError as exc:
            logger.warning("closing camera: %s", exc)

    def stats(self) -> dict[str, Any]:
        watched = {} if self.watchdog is None else self.watchdog.stats()
        healthy = self.healthy.is_set() and not watched.get("camera_lost", False)
        return {"frames_captured": self.captured, "frames_dropped": self.dropped,
                "camera_reconnects": self.reconnects, **watched, "camera_healthy": healthy}

    def _put(self, frame: Frame) -> None:
        if self.lockstep:
            while not self._stop.is_set():
                try:
                    self._slot.put(frame, timeout=0.1)
                    return
                except queue.Full:
                    continue
            return
        try:
            self._slot.put_nowait(frame)
        except queue.Full:
            try:
                self._slot.get_nowait()
                self.dropped += 1
            except queue.Empty:
                pass
            self._slot.put_nowait(frame)

    def _run(self) -> None:
        if self._pending is not None:
            self._recover(self._pending)
        while not self._stop.is_set():
            if self.lockstep and not self._asked.wait(0.1):
                continue
            try:
                frame = self.source.read()
            except CameraError as exc:
                self._recover(exc)
                continue
            except Exception as exc:  # a driver bug must not end the thread unseen: the camera is lost
                logger.exception("the camera source raised")
                self._recover(CameraError(f"{type(exc).__name__}: {exc}"))
                continue
            if frame is None:
                if self.watchdog is not None:
                    self.watchdog.source_ended()
                self.ended.set()
                return
            self.captured += 1
            if self.watchdog is not None:
                self.watchdog.observe(frame.rgb)
            self._asked.clear()  # the request is answered (a failed read above stays asked: read again)
            self._put(frame)

    def _recover(self, exc: CameraError) -> None:
        self.healthy.clear()
        if self.on_lost is not None:
            self.on_lost()
        if self.watchdog is not None:
            self.watchdog.report_error(str(exc))
        else:
            logger.error("camera lost: %s", exc)
            self.emit("camera_lost", {"error": str(exc)})
        delay, limit = self.backoff_s
        while not self._stop.wait(delay):
            try:
                self.source.close()
                self.source.open()
            except CameraError as again:
                logger.warning("camera still unavailable (%s); retrying in %.1f s", again, min(delay * 2, limit))
                delay = min(delay * 2, limit)
                continue
            self.reconnects += 1
            self.healthy.set()
            if self.watchdog is None:
                logger.info("camera restored")
                self.emit("camera_restored", {"reconnects": self.reconnects})
            else:
                logger.info("camera reopened; restored once it delivers a fresh frame")
            return
