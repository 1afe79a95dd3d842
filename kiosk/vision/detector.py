"""BlazeFace face detector on a TFLite interpreter."""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.vision.anchors import AnchorSpec, generate_anchors
from kiosk.vision.boxes import Face, Letterbox, decode, to_faces, weighted_nms

logger = logging.getLogger(__name__)


class Detector:
    """Finds faces in an RGB frame of any size or aspect ratio.

    The interpreter is injected (see ``kiosk.vision.runtime``), so the class
    can be driven by any object with the TFLite ``Interpreter`` API.
    """

    def __init__(self, interpreter: Any, spec: AnchorSpec, score_threshold: float | None = None,
                 iou_threshold: float = 0.3) -> None:
        self.interpreter = interpreter
        self.spec = spec
        self.score_threshold = spec.score_threshold if score_threshold is None else score_threshold
        self.iou_threshold = iou_threshold
        self.anchors = generate_anchors(spec)
        inp = interpreter.get_input_details()[0]
        if tuple(inp["shape"][1:3]) != (spec.input_size, spec.input_size):
            raise ValueError(f"detector model input is {inp['shape']}, expected {spec.input_size}x{spec.input_size}")
        self._input = inp["index"]
        outputs = interpreter.get_output_details()
        by_width = {int(o["shape"][-1]): o["index"] for o in outputs}
        if 16 not in by_width or 1 not in by_width:
            raise ValueError(f"unexpected detector outputs {[tuple(o['shape']) for o in outputs]}")
        self._boxes, self._scores = by_width[16], by_width[1]
        n = int(next(o["shape"][1] for o in outputs if o["index"] == self._boxes))
        if n != len(self.anchors):
            raise ValueError(f"detector has {n} outputs but {len(self.anchors)} anchors were generated")

    def preprocess(self, rgb: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], Letterbox]:
        h, w = rgb.shape[:2]
        lb = Letterbox.fit(w, h, self.spec.input_size)
        nw, nh = max(round(w * lb.scale), 1), max(round(h * lb.scale), 1)
        interp = cv2.INTER_AREA if lb.scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(rgb, (nw, nh), interpolation=interp)
        canvas = np.zeros((self.spec.input_size, self.spec.input_size, 3), np.float32)
        top, left = int(round(lb.pad_y)), int(round(lb.pad_x))
        canvas[top:top + nh, left:left + nw] = resized.astype(np.float32) / 127.5 - 1.0
        return canvas[None], Letterbox(lb.scale, float(left), float(top), lb.size)

    def detect(self, rgb: npt.NDArray[np.uint8]) -> list[Face]:
        """Faces sorted by score, best first."""
        tensor, lb = self.preprocess(rgb)
        self.interpreter.set_tensor(self._input, tensor)
        self.interpreter.invoke()
        raw_boxes = self.interpreter.get_tensor(self._boxes)[0]
        raw_scores = self.interpreter.get_tensor(self._scores)[0]
        boxes, kps, scores = decode(raw_boxes, raw_scores, self.anchors, self.spec.input_size, self.score_threshold)
        return to_faces(weighted_nms(boxes, kps, scores, self.iou_threshold), lb)


class FallbackDetector:
    """Full range first (its boxes suit FaceNet better, docs/alignment.md); short range when it
    finds nothing, as with a face that fills the frame."""

    def __init__(self, primary: Detector, fallback: Detector) -> None:
        self.primary = primary
        self.fallback = fallback
        self.spec = primary.spec

    def detect(self, rgb: npt.NDArray[np.uint8]) -> list[Face]:
        return self.primary.detect(rgb) or self.fallback.detect(rgb)
