"""The FaceMesh wrapper without a TFLite runtime: a stand-in interpreter with FaceMesh's tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiosk.errors import ModelMissingError
from kiosk.liveness.landmarks import N_LANDMARKS, Landmarker, build_landmarker
from kiosk.vision.boxes import Face


class MeshInterpreter:
    """Speaks the TFLite Interpreter calls the Landmarker makes; answers with fixed tensors."""

    def __init__(self, points: np.ndarray, presence_logit: float, size: int = 192) -> None:
        self.points, self.logit, self.size = points, presence_logit, size
        self.buffer = np.zeros((1, size, size, 3), np.float32)  # the input tensor's memory
        self.inputs: list[np.ndarray] = []  # what the model saw at each invoke

    def get_input_details(self) -> list[dict[str, Any]]:
        return [{"index": 0, "shape": np.array([1, self.size, self.size, 3])}]

    def get_output_details(self) -> list[dict[str, Any]]:
        return [{"index": 1, "shape": np.array([1, 1, 1, N_LANDMARKS * 3])}, {"index": 2, "shape": np.array([1, 1, 1, 1])}]

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        assert index == 0 and value.shape == self.buffer.shape and value.dtype == self.buffer.dtype
        self.buffer[...] = value

    def tensor(self, index: int) -> Any:
        """Like TFLite's: a callable giving a numpy view of the tensor's memory."""
        assert index == 0
        return lambda: self.buffer

    def invoke(self) -> None:
        self.inputs.append(self.buffer.copy())

    def get_tensor(self, index: int) -> np.ndarray:
        if index == 1:
            return self.points.reshape(1, 1, 1, -1).astype(np.float32)
        return np.array([[[[self.logit]]]], np.float32)


def _face() -> Face:
    kps = np.zeros((6, 2))
    kps[0], kps[1] = (170.0, 200.0), (230.0, 200.0)
    return Face((150.0, 160.0, 250.0, 280.0), 0.9, kps)


def test_landmarks_are_projected_from_the_mesh_input_to_frame_pixels() -> None:
    pts = np.zeros((N_LANDMARKS, 3))
    pts[0] = (96.0, 96.0, 19.2)  # input centre
    pts[1] = (0.0, 0.0, 0.0)  # input corner
    interp = MeshInterpreter(pts, presence_logit=5.0)
    rgb = np.full((480, 640, 3), 200, np.uint8)
    lm = Landmarker(interp).landmarks(rgb, _face())
    assert lm is not None and lm.shape == (N_LANDMARKS, 3)
    side = 120 * 1.5
    np.testing.assert_allclose(lm[0], [200.0, 220.0, 19.2 * side / 192], rtol=1e-5)
    np.testing.assert_allclose(lm[1, :2], [200 - side / 2, 220 - side / 2], rtol=1e-5)
    tensor = interp.inputs[-1]
    assert tensor.shape == (1, 192, 192, 3) and tensor.dtype == np.float32
    assert tensor.max() == pytest.approx(200 / 255, rel=1e-6)


def test_low_face_presence_gives_no_landmarks() -> None:
    lm = Landmarker(MeshInterpreter(np.zeros((N_LANDMARKS, 3)), presence_logit=-3.0))
    assert lm.landmarks(np.zeros((480, 640, 3), np.uint8), _face()) is None
    assert lm.last_presence < 0.5


def test_a_model_with_the_wrong_input_is_refused() -> None:
    with pytest.raises(ValueError, match="192x192"):
        Landmarker(MeshInterpreter(np.zeros((N_LANDMARKS, 3)), 5.0, size=128))


def test_missing_mesh_model_says_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match="kiosk models fetch"):
        build_landmarker(root=tmp_path)


@pytest.mark.parametrize(("liveness_threads", "cores", "expected"),
                         [(None, 1, 3), (None, 2, 1), (None, None, 3), (1, 1, 1), (2, 4, 2)])
def test_facemesh_gets_its_own_threads_one_beside_the_embedder_or_the_vision_threads(
        monkeypatch: pytest.MonkeyPatch, liveness_threads: int | None, cores: int | None, expected: int) -> None:
    """Unset: one thread when FaceMesh runs on its worker beside the embedder (more than one core), the
    vision threads in turn (one core); set: what is set."""
    from contextlib import ExitStack

    import kiosk.liveness
    from kiosk.config import Settings
    from kiosk.liveness.settings import LivenessSettings
    from kiosk.service import build_liveness

    asked: list[int] = []

    def fake_landmarker(*, runtime: str, threads: int, root: Path) -> object:
        asked.append(threads)
        return object()

    monkeypatch.setattr(kiosk.liveness, "build_landmarker", fake_landmarker)
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores or 1)))
    settings = Settings(vision={"threads": 3}, liveness=LivenessSettings(threads=liveness_threads))
    with ExitStack() as stack:
        assert build_liveness(settings, lambda: 0.0, None, None, stack) is not None
    assert asked == [expected]


def test_facemesh_threads_out_of_range_are_refused_by_name() -> None:
    from pydantic import ValidationError

    from kiosk.liveness.settings import LivenessSettings

    for bad in (0, 17):
        with pytest.raises(ValidationError, match="threads"):
            LivenessSettings(threads=bad)
