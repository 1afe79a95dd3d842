"""FaceMesh on a worker thread while the loop embeds: the same landmarks, errors where the caller sees them,
the interpreter free before a failing frame leaves the loop, and the landmarks in turn when no worker can
start."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from kiosk.liveness.background import BackgroundLandmarks, Pending
from kiosk.vision.boxes import Face
from tests import liveness_synth as synth
from tests.loop_fakes import MAIN, RELAY, VICTIM, Rig
from tests.pins import assert_pin_history

RGB = np.zeros((480, 640, 3), np.uint8)


class ThreadRecorder:
    """A landmarker that says which thread ran it, or fails when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.threads: list[str] = []
        self.fail = fail

    def landmarks(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("interpreter failed")
        return np.full((468, 3), face.box[0], np.float32)


class Deferred(ThreadPoolExecutor):
    """An executor that runs a task only when its result is asked for: what the caller waited for ran,
    and nothing else did."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        fut: Future[Any] = Future()
        real_result = fut.result

        def result(timeout: float | None = None) -> Any:
            if not fut.done():
                try:
                    fut.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # as a real worker keeps any error for the waiter
                    fut.set_exception(exc)
            return real_result(timeout)

        fut.result = result  # type: ignore[method-assign]
        return fut


class InterruptedWait(Deferred):
    """The caller is interrupted (Ctrl-C) while it waits for the landmarks: the first ``times`` waits raise
    KeyboardInterrupt with FaceMesh not yet done; a later wait lets it finish."""

    def __init__(self, times: int = 1) -> None:
        super().__init__()
        self.times = times

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut = super().submit(fn, *args, **kwargs)
        finish = fut.result
        calls = []

        def result(timeout: float | None = None) -> Any:
            calls.append(1)
            if len(calls) <= self.times:
                raise KeyboardInterrupt
            return finish(timeout)

        fut.result = result  # type: ignore[method-assign]
        return fut


class NoThreads(ThreadPoolExecutor):
    """An executor at a thread limit: ``submit`` fails as ThreadPoolExecutor's does when no thread starts."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        raise RuntimeError("can't start new thread")


FACES = {0: Face((10.0, 10.0, 60.0, 60.0), 0.9, np.zeros((6, 2))), 2: Face((100.0, 10.0, 150.0, 60.0), 0.9,
                                                                             np.zeros((6, 2)))}


def test_the_worker_computes_each_face_and_the_caller_gets_them_by_index() -> None:
    marker = ThreadRecorder()
    bg = BackgroundLandmarks(marker, worker=True)
    try:
        marks = bg.start(RGB, FACES).result()
    finally:
        bg.close()
    assert sorted(marks) == [0, 2]
    assert marks[0][0, 0] == 10.0 and marks[2][0, 0] == 100.0
    assert len(marker.threads) == 2 and all(t.startswith("facemesh") for t in marker.threads)


def test_without_a_worker_the_landmarks_are_computed_in_the_callers_thread() -> None:
    marker = ThreadRecorder()
    marks = BackgroundLandmarks(marker, worker=False).start(RGB, FACES).result()
    assert sorted(marks) == [0, 2]
    assert marker.threads == [threading.current_thread().name] * 2


def test_no_faces_start_no_work() -> None:
    marker = ThreadRecorder()
    bg = BackgroundLandmarks(marker, worker=True)
    assert bg.start(RGB, {}).result() == {}
    assert marker.threads == [] and bg._pool is None


def test_an_error_of_facemesh_on_the_worker_is_raised_in_the_caller() -> None:
    bg = BackgroundLandmarks(ThreadRecorder(fail=True), worker=True)
    try:
        pending = bg.start(RGB, FACES)
        with pytest.raises(RuntimeError, match="interpreter failed"):
            pending.result()
    finally:
        bg.close()


def test_settle_waits_for_the_worker_and_keeps_its_error_to_itself() -> None:
    marker = ThreadRecorder(fail=True)
    bg = BackgroundLandmarks(marker, worker=True)
    bg._pool = Deferred()
    pending = bg.start(RGB, FACES)
    assert marker.threads == []  # not run yet: only a wait runs it
    pending.settle()
    assert len(marker.threads) == 1  # ran (and failed on the first face) before settle returned
    Pending(done={}).settle()  # nothing to wait for


def test_a_new_start_waits_for_landmarks_an_interrupted_caller_left_running() -> None:
    marker = ThreadRecorder()
    bg = BackgroundLandmarks(marker, worker=True)
    bg._pool = Deferred()
    first = bg.start(RGB, FACES)  # never waited for (its caller was interrupted)
    assert marker.threads == [] and not first.done()
    bg.start(RGB, {0: FACES[0]})
    assert len(marker.threads) == 2 and first.done()  # the first frame's two faces ran before the next began
    bg._pool = Deferred()
    bg.start(RGB, FACES)  # waits for the one face left by the start before
    assert len(marker.threads) == 3
    bg.close()  # and close waits too
    assert len(marker.threads) == 5


def test_an_interrupt_of_the_wait_itself_is_raised_and_the_worker_is_waited_for_again(
        caplog: pytest.LogCaptureFixture) -> None:
    marker = ThreadRecorder()
    bg = BackgroundLandmarks(marker, worker=True)
    bg._pool = InterruptedWait(times=2)
    pending = bg.start(RGB, FACES)
    with pytest.raises(KeyboardInterrupt):
        pending.settle()  # Ctrl-C while waiting: not taken for an error of FaceMesh's, not swallowed
    assert caplog.text == "" and marker.threads == [] and not pending.done()
    with pytest.raises(KeyboardInterrupt):
        bg.close()  # interrupted again while close waits: the frame stays outstanding
    assert bg._pool is not None and marker.threads == []
    bg.close()  # the next wait finishes it, then the worker ends
    assert len(marker.threads) == 2 and pending.done() and bg._pool is None


def test_an_interrupted_shutdown_leaves_no_shut_pool_behind() -> None:
    class StopsOnShutdown(ThreadPoolExecutor):
        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            super().shutdown(wait=wait, cancel_futures=cancel_futures)
            raise KeyboardInterrupt

    marker = ThreadRecorder()
    bg = BackgroundLandmarks(marker, worker=True)
    bg._pool = StopsOnShutdown(max_workers=1, thread_name_prefix="facemesh")
    bg.start(RGB, FACES).result()
    with pytest.raises(KeyboardInterrupt):
        bg.close()
    assert sorted(bg.start(RGB, FACES).result()) == [0, 2]  # a new worker, not FaceMesh in turn for good
    assert bg.worker and all(t.startswith("facemesh") for t in marker.threads)
    bg.close()


def test_settle_logs_an_error_of_facemesh_other_than_the_one_being_raised(caplog: pytest.LogCaptureFixture) -> None:
    bg = BackgroundLandmarks(ThreadRecorder(fail=True), worker=True)
    bg._pool = Deferred()
    pending = bg.start(RGB, FACES)
    pending.settle(OSError("the embedder's own"))
    assert "FaceMesh failed on a frame that failed anyway" in caplog.text
    caplog.clear()
    try:
        pending.result()
    except RuntimeError as err:
        pending.settle(err)  # the very error being raised: not logged twice
    assert caplog.text == ""


def test_a_worker_that_cannot_start_leaves_the_landmarks_in_turn(caplog: pytest.LogCaptureFixture) -> None:
    marker = ThreadRecorder()
    bg = BackgroundLandmarks(marker, worker=True)
    bg._pool = NoThreads(max_workers=1)
    marks = bg.start(RGB, FACES).result()
    assert sorted(marks) == [0, 2]
    assert marker.threads == [threading.current_thread().name] * 2
    assert not bg.worker and "no worker thread for FaceMesh" in caplog.text
    bg.start(RGB, FACES).result()  # and it does not try again on every frame
    assert marker.threads == [threading.current_thread().name] * 4


def test_a_closed_worker_starts_afresh() -> None:
    marker = ThreadRecorder()
    bg = BackgroundLandmarks(marker, worker=True)
    bg.start(RGB, FACES).result()
    bg.close()
    assert bg._pool is None
    assert sorted(bg.start(RGB, FACES).result()) == [0, 2]
    bg.close()


def test_the_default_uses_a_worker_only_with_a_second_core_the_process_may_use(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {2})  # CPUAffinity=, taskset: one core of four
    assert not BackgroundLandmarks(ThreadRecorder()).worker
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 3})
    assert BackgroundLandmarks(ThreadRecorder()).worker
    monkeypatch.delattr("os.sched_getaffinity")  # a platform without it: the machine's cores
    assert BackgroundLandmarks(ThreadRecorder()).worker
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert not BackgroundLandmarks(ThreadRecorder()).worker
    monkeypatch.setattr("os.cpu_count", lambda: None)
    assert not BackgroundLandmarks(ThreadRecorder()).worker


def test_the_loop_waits_for_facemesh_before_an_embedder_error_leaves_the_frame(tmp_path: Path) -> None:
    factory = MockFactory()
    rig = Rig(factory, tmp_path)
    deferred = Deferred()
    assert rig.loop._mesh is not None
    rig.loop._mesh.worker, rig.loop._mesh._pool = True, deferred
    seen: list[np.ndarray] = []
    scene_landmarks = rig.scene.landmarks

    def landmarks(rgb: np.ndarray, face: Face) -> np.ndarray | None:
        out = scene_landmarks(rgb, face)
        seen.append(rgb)
        return out

    rig.loop._mesh.landmarker = type("Marker", (), {"landmarks": staticmethod(landmarks)})()

    def broken(crops: list[np.ndarray]) -> list[np.ndarray]:
        raise OSError("embedder failed")

    rig.scene.embedder.embed = broken
    with pytest.raises(OSError, match="embedder failed"):
        rig.step([(MAIN, synth.pose(synth.model()), VICTIM)])
    assert deferred.submitted == 1 and len(seen) == 1  # the landmarks were waited for before the error left
    assert_pin_history(factory.pin(RELAY), [False])
    rig.door.close()
    rig.events.close()


def test_an_interrupt_while_the_loop_waits_for_facemesh_leaves_the_frame_after_it(tmp_path: Path) -> None:
    rig = Rig(MockFactory(), tmp_path)
    assert rig.loop._mesh is not None
    marker = ThreadRecorder()
    scene_landmarks = rig.scene.landmarks

    def landmarks(rgb: np.ndarray, face: Face) -> np.ndarray | None:
        marker.landmarks(rgb, face)
        return scene_landmarks(rgb, face)

    rig.loop._mesh.worker, rig.loop._mesh._pool = True, InterruptedWait()
    rig.loop._mesh.landmarker = type("Marker", (), {"landmarks": staticmethod(landmarks)})()
    with pytest.raises(KeyboardInterrupt):
        rig.step([(MAIN, synth.pose(synth.model()), VICTIM)])
    assert len(marker.threads) == 1  # FaceMesh finished before the interrupt left process()


def test_when_facemesh_and_the_embedder_both_fail_the_embedders_error_leaves_and_facemeshs_is_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(MockFactory(), tmp_path)
    assert rig.loop._mesh is not None
    rig.loop._mesh.worker, rig.loop._mesh._pool = True, Deferred()
    for fail in (RuntimeError("interpreter failed"), SystemExit(3)):
        caplog.clear()

        def landmarks(rgb: np.ndarray, face: Face, fail: BaseException = fail) -> np.ndarray:
            raise fail

        def broken(crops: list[np.ndarray]) -> list[np.ndarray]:
            raise OSError("embedder failed")

        rig.loop._mesh.landmarker = type("Marker", (), {"landmarks": staticmethod(landmarks)})()
        rig.scene.embedder.embed = broken
        with pytest.raises(OSError, match="embedder failed"):
            rig.step([(MAIN, synth.pose(synth.model()), VICTIM)])
        assert "FaceMesh failed on a frame that failed anyway" in caplog.text


def test_the_loop_ends_its_worker_when_closed_and_when_run_returns(tmp_path: Path) -> None:
    rig = Rig(MockFactory(), tmp_path)
    assert rig.loop._mesh is not None
    rig.loop._mesh.worker = True
    rig.step([(MAIN, synth.pose(synth.model()), VICTIM)])
    assert rig.loop._mesh._pool is not None
    rig.loop.close()
    assert rig.loop._mesh._pool is None


@pytest.mark.parametrize("worker", [True, False])
def test_a_live_head_is_let_in_with_the_landmarks_on_a_worker_or_in_turn(tmp_path: Path, worker: bool) -> None:
    factory = MockFactory()
    rig = Rig(factory, tmp_path)
    assert rig.loop._mesh is not None
    rig.loop._mesh.worker = worker
    marker = ThreadRecorder()
    scene_landmarks = rig.scene.landmarks

    def landmarks(rgb: np.ndarray, face: Face) -> np.ndarray | None:
        marker.landmarks(rgb, face)
        return scene_landmarks(rgb, face)

    rig.loop._mesh.landmarker = type("Marker", (), {"landmarks": staticmethod(landmarks)})()
    head, rng = synth.model(), np.random.default_rng(1)
    try:
        for k in range(150):
            rig.step([(MAIN, synth.pose(head, 30 * np.sin(np.pi * k / 30), noise_px=0.3, rng=rng), VICTIM)])
            if rig.granted():
                break
        assert rig.granted() == 1
        expected = "facemesh" if worker else threading.current_thread().name
        assert marker.threads and all(t.startswith(expected) for t in marker.threads)
        assert_pin_history(factory.pin(RELAY), [False, True])
    finally:
        rig.loop._mesh.close()
        rig.door.close()
        rig.events.close()


@pytest.mark.parametrize("worker", [True, False])
def test_facemesh_starts_before_the_gates_on_a_worker_and_between_gates_and_embedder_in_turn(
        tmp_path: Path, worker: bool) -> None:
    """On the worker FaceMesh overlaps the crop and sharpness gate as well as the embedder; in turn it runs
    after the gates (warm pixels) and before the embedder (which would cool the caches)."""
    rig = Rig(MockFactory(), tmp_path)
    assert rig.loop._mesh is not None
    log: list[str] = []
    deferred = Deferred()
    rig.loop._mesh.worker, rig.loop._mesh._pool = worker, deferred
    real_submit, scene_landmarks, scene_crops = deferred.submit, rig.scene.landmarks, rig.scene.crops
    real_embed = rig.scene.embedder.embed

    def submit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        log.append("submit")
        return real_submit(fn, *args, **kwargs)

    def landmarks(rgb: np.ndarray, face: Face) -> np.ndarray | None:
        log.append("landmarks")
        return scene_landmarks(rgb, face)

    def crops(rgb: np.ndarray, faces: list[Face]) -> list[np.ndarray]:
        log.append("crop")
        return scene_crops(rgb, faces)

    def embed(batch: list[np.ndarray]) -> list[np.ndarray]:
        log.append("embed")
        return real_embed(batch)

    deferred.submit = submit  # type: ignore[method-assign]
    rig.loop._mesh.landmarker = type("Marker", (), {"landmarks": staticmethod(landmarks)})()
    rig.scene.crops, rig.scene.embedder.embed = crops, embed  # type: ignore[method-assign]
    rig.step([(MAIN, synth.pose(synth.model()), VICTIM)])
    if worker:
        assert log == ["submit", "crop", "embed", "landmarks"]  # the deferred task runs when waited for
    else:
        assert log == ["crop", "landmarks", "embed"]
    rig.door.close()
    rig.events.close()


def test_no_two_threads_are_ever_inside_facemesh_even_one_an_interrupt_left_untracked() -> None:
    marker = ThreadRecorder()
    bg = BackgroundLandmarks(marker, worker=True)
    bg._inside.acquire()  # FaceMesh in flight on a thread nothing tracks (a Ctrl-C while it started)
    try:
        pending = bg.start(RGB, FACES)
        assert not pending.done() and marker.threads == []  # the worker waits at the door
    finally:
        bg._inside.release()
    assert sorted(pending.result()) == [0, 2]
    bg.close()


def test_an_error_left_by_an_interrupted_caller_is_logged_at_the_next_wait(caplog: pytest.LogCaptureFixture) -> None:
    bg = BackgroundLandmarks(ThreadRecorder(fail=True), worker=True)
    bg._pool = Deferred()
    bg.start(RGB, FACES)  # the caller was interrupted before it read the outcome
    bg.close()
    assert "FaceMesh failed on a frame that failed anyway" in caplog.text


def test_a_cancelled_frame_leaves_the_callers_error_alone() -> None:
    fut: Future[Any] = Future()
    assert fut.cancel()
    pending = Pending(future=fut)
    pending.settle(OSError("the embedder's own"))  # returns: the interpreter never ran
    assert pending.consumed


def test_a_keyboardinterrupt_raised_by_facemesh_on_its_worker_is_an_error_not_a_ctrl_c() -> None:
    class Raises:
        def landmarks(self, rgb: np.ndarray, face: Face) -> np.ndarray:
            raise KeyboardInterrupt

    bg = BackgroundLandmarks(Raises(), worker=True)
    try:
        with pytest.raises(RuntimeError, match="FaceMesh raised KeyboardInterrupt on its worker"):
            bg.start(RGB, FACES).result()
    finally:
        bg.close()


def test_after_a_thread_limit_a_closed_loop_tries_a_worker_again() -> None:
    marker = ThreadRecorder()
    bg = BackgroundLandmarks(marker, worker=True)
    bg._pool = NoThreads(max_workers=1)
    bg.start(RGB, FACES).result()
    assert not bg.worker
    bg.close()
    assert bg.worker
    bg.start(RGB, FACES).result()
    assert marker.threads[-1].startswith("facemesh")
    bg.close()
