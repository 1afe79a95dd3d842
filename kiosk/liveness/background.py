"""FaceMesh on a worker thread while the loop embeds the same frame's faces.

The two models share nothing and the runtimes release the GIL while they run, so on a machine with a
second core the landmarks of a frame cost the loop little more than the embedder's time. The landmarks are
the same (the same interpreter, the same input); only when they are ready changes. The caller always
waits for them before it goes on, so the interpreter is never used by two threads at once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from kiosk.vision.boxes import Face

logger = logging.getLogger(__name__)

Marks = dict[int, Any]  # face index -> (468, 3) landmarks, or None when the mesh saw no face


class Pending:
    """The landmarks of one frame, computed or being computed."""

    def __init__(self, future: Future[Marks] | None = None, done: Marks | None = None) -> None:
        self._future = future
        self._done = done
        self.consumed = future is None  # FaceMesh's outcome (landmarks or error) reached somebody

    def result(self) -> Marks:
        """The landmarks; an error of FaceMesh is raised here, in the caller's thread."""
        if self._future is None:
            return self._done or {}
        try:
            out = self._future.result()
        except BaseException as err:
            if self._outcome(err):
                self.consumed = True
            raise
        self.consumed = True
        return out

    def _outcome(self, err: BaseException) -> bool:
        """Whether ``err``, raised out of the wait, is FaceMesh's own outcome (not an interrupt of the wait)."""
        f = self._future
        return f is not None and f.done() and not f.cancelled() and f.exception(timeout=0) is err

    def done(self) -> bool:
        """Whether FaceMesh is finished with this frame (the interpreter is free)."""
        return self._future is None or self._future.done()

    def settle(self, raising: BaseException | None = None) -> None:
        """Wait until the worker is done with the interpreter, whatever it returned: for a caller that is
        itself failing with ``raising`` (its own error is the one to raise; the interpreter must be free for
        the next frame). An error of FaceMesh's other than ``raising`` is logged, not lost; an interrupt
        of the wait itself (Ctrl-C) is raised, with the worker still running (the next ``start`` waits)."""
        future = self._future
        if future is None or future.cancelled():  # never ran: the interpreter was not used
            self.consumed = True
            return
        try:
            future.result()
        except BaseException as err:
            if not self._outcome(err):
                raise  # raised in this thread while it waited, not by FaceMesh
            if err is not raising:
                logger.warning("FaceMesh failed on a frame that failed anyway", exc_info=True)
        self.consumed = True


def usable_cores() -> int:
    """The cores this process may run on (its affinity: ``CPUAffinity=``, ``taskset``, a cpuset), else
    the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        return os.cpu_count() or 1


def second_core() -> bool:
    """Whether FaceMesh gets a worker thread by default: only with a core for it beside the caller's."""
    return usable_cores() > 1


def mesh_threads(configured: int | None, vision_threads: int, worker: bool) -> int:
    """FaceMesh's interpreter threads: ``liveness.threads`` when set; else one on a worker (it shares the
    cores with the embedder running at the same time: one thread was the cheaper here, docs/liveness.md
    "Cost"), and ``vision.threads`` in turn."""
    if configured is not None:
        return configured
    return 1 if worker else vision_threads


class BackgroundLandmarks:
    """Starts a frame's landmarks on one worker thread, or computes them at once when there is no worker.

    ``worker``: True, False, or None for "when the process may use more than one core" (on one core the worker
    would only take turns with the embedder). A worker that cannot start (a thread limit) leaves the
    landmarks computed in turn: the kiosk must not stop for it.
    """

    def __init__(self, landmarker: Any, worker: bool | None = None) -> None:
        self.landmarker = landmarker
        self._configured = second_core() if worker is None else worker
        self.worker = self._configured
        self._pool: ThreadPoolExecutor | None = None
        self._outstanding: Pending | None = None  # the last landmarks started on the worker
        # Held by whichever thread is inside FaceMesh: whatever an interrupt leaves untracked (a Ctrl-C
        # while the first thread starts), no two threads are ever in the interpreter at once.
        self._inside = threading.Lock()

    def start(self, rgb: npt.NDArray[np.uint8], faces: Mapping[int, Face]) -> Pending:
        """The landmarks of ``faces``. Whatever an earlier start left running (a caller interrupted while it
        waited) is waited for first: the interpreter is only ever used by one thread at a time."""
        self.wait()
        if not faces:
            return Pending(done={})
        todo = dict(faces)

        def run() -> Marks:
            with self._inside:
                return {i: self.landmarker.landmarks(rgb, face) for i, face in todo.items()}

        def on_worker() -> Marks:
            try:
                return run()
            except Exception:
                raise
            except BaseException as err:  # no Ctrl-C reaches a worker thread: FaceMesh's own, as an error
                raise RuntimeError(f"FaceMesh raised {type(err).__name__} on its worker") from err

        submit = self._submitter()
        if submit is not None:
            try:
                self._outstanding = Pending(future=submit(on_worker))
                return self._outstanding
            except RuntimeError:  # shut down, or no thread could start: in turn
                logger.warning("no worker thread for FaceMesh: landmarks computed in turn", exc_info=True)
                self.worker = False
        return Pending(done=run())

    def _submitter(self) -> Callable[[Callable[[], Marks]], Future[Marks]] | None:
        if not self.worker:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facemesh")
        return self._pool.submit

    def wait(self) -> None:
        """Wait until the worker no longer uses the interpreter (its result, or error, goes unused)."""
        pending = self._outstanding
        if pending is not None and not pending.consumed:
            pending.settle()  # an interrupt here keeps it outstanding: the next wait waits again
        self._outstanding = None

    def close(self) -> None:
        """Let the worker thread end (a later ``start`` starts another, and tries a worker again after a
        thread limit). Returns once no thread is inside FaceMesh."""
        self.wait()
        pool, self._pool = self._pool, None  # an interrupted shutdown leaves no shut pool to submit to
        if pool is not None:
            pool.shutdown(wait=True)
        with self._inside:  # whatever an interrupt left untracked has left the interpreter
            pass
        self.worker = self._configured
