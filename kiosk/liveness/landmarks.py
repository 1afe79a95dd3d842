"""MediaPipe FaceMesh on a TFLite interpreter: 468 landmarks of one detected face."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.artifacts import Manifest, artifact_path
from kiosk.vision.boxes import Face, sigmoid
from kiosk.vision.runtime import load_runtime

from .roi import MESH_INPUT, face_roi

logger = logging.getLogger(__name__)

MESH_ARTIFACT = "face_landmark"
N_LANDMARKS = 468
# Below this face-presence probability the mesh is not a face: no evidence.
MIN_PRESENCE = 0.5


class Landmarker:
    """Runs FaceMesh on the ROI of a BlazeFace face; the interpreter is injected."""

    def __init__(self, interpreter: Any, min_presence: float = MIN_PRESENCE) -> None:
        self.interpreter = interpreter
        self.min_presence = min_presence
        inp = interpreter.get_input_details()[0]
        if tuple(inp["shape"][1:4]) != (MESH_INPUT, MESH_INPUT, 3):
            raise ValueError(f"FaceMesh input is {inp['shape']}, expected 1x{MESH_INPUT}x{MESH_INPUT}x3")
        self._input = inp["index"]
        outputs = interpreter.get_output_details()
        sizes = {int(np.prod(o["shape"])): o["index"] for o in outputs}
        if N_LANDMARKS * 3 not in sizes or 1 not in sizes:
            raise ValueError(f"unexpected FaceMesh outputs {[tuple(o['shape']) for o in outputs]}")
        self._points, self._presence = sizes[N_LANDMARKS * 3], sizes[1]
        self.last_presence = 0.0

    def crop(self, rgb: npt.NDArray[np.uint8], face: Face) -> tuple[npt.NDArray[np.float32], Any]:
        """The 192x192 model input in [0, 1] and the ROI it was cut from."""
        patch, roi = self._patch(rgb, face)
        return patch.astype(np.float32) * (1.0 / 255.0), roi

    def _patch(self, rgb: npt.NDArray[np.uint8], face: Face) -> tuple[npt.NDArray[np.uint8], Any]:
        roi = face_roi(face)
        patch = cv2.warpAffine(rgb, roi.matrix, (MESH_INPUT, MESH_INPUT),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=(0, 0, 0))
        return np.asarray(patch, np.uint8), roi

    def _fill_input(self, rgb: npt.NDArray[np.uint8], face: Face) -> Any:
        """``crop`` written straight into the interpreter's input tensor (no copy through
        ``set_tensor``); the view is dropped before ``invoke``, as TFLite requires."""
        patch, roi = self._patch(rgb, face)
        view = self.interpreter.tensor(self._input)()
        np.multiply(patch, np.float32(1.0 / 255.0), out=view[0], dtype=np.float32)
        del view
        return roi

    def landmarks(self, rgb: npt.NDArray[np.uint8], face: Face) -> npt.NDArray[np.float32] | None:
        """(468, 3) landmarks in frame pixels (z scaled like x), or None when the mesh sees no face."""
        roi = self._fill_input(rgb, face)
        self.interpreter.invoke()
        self.last_presence = float(sigmoid(self.interpreter.get_tensor(self._presence)).reshape(-1)[0])
        if self.last_presence < self.min_presence:
            return None
        raw = self.interpreter.get_tensor(self._points).reshape(N_LANDMARKS, 3)
        return roi.project(raw)


def build_landmarker(*, runtime: str = "auto", threads: int = 2, root: Path | None = None) -> Landmarker:
    """FaceMesh from the models folder, its sha256 checked against the manifest."""
    path = artifact_path(MESH_ARTIFACT, root, Manifest.load())
    return Landmarker(load_runtime(runtime).interpreter(path, num_threads=threads))
