"""BlazeFace output decoding, weighted NMS and letterboxing (pure numpy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

# MediaPipe's keypoint order; "right" is the subject's right (image left).
KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")


@dataclass(frozen=True)
class Face:
    """One detected face in frame pixel coordinates."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    keypoints: F64  # (6, 2) x, y

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def as_dict(self) -> dict[str, object]:
        return {
            "box": [round(v, 1) for v in self.box],
            "score": round(self.score, 4),
            "keypoints": {n: [round(float(x), 1), round(float(y), 1)] for n, (x, y) in zip(KEYPOINTS, self.keypoints)},
        }


@dataclass(frozen=True)
class Letterbox:
    """Maps between a frame and the square, padded detector input."""

    scale: float  # detector pixels per frame pixel
    pad_x: float  # padding in detector pixels
    pad_y: float
    size: int

    @classmethod
    def fit(cls, width: int, height: int, size: int) -> Letterbox:
        scale = size / max(width, height)
        return cls(scale, (size - width * scale) / 2.0, (size - height * scale) / 2.0, size)

    def to_frame(self, xy_norm: F64) -> F64:
        """Normalised detector coordinates (..., 2) -> frame pixels."""
        px = xy_norm * self.size
        return np.stack([(px[..., 0] - self.pad_x) / self.scale, (px[..., 1] - self.pad_y) / self.scale], axis=-1)


def sigmoid(x: npt.NDArray[np.floating]) -> F64:
    return 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -100.0, 100.0)))


def decode(raw_boxes: F32, raw_scores: F32, anchors: F32, input_size: int, threshold: float) -> tuple[F64, F64, F64]:
    """Decode regressors (N, 16) and logits (N,) against anchors (N, 2).

    Returns boxes (M, 4) as normalised x0, y0, x1, y1, keypoints (M, 6, 2)
    and scores (M,) for the anchors scoring at least ``threshold``.
    """
    scores = sigmoid(raw_scores.reshape(-1))
    keep = scores >= threshold
    raw = raw_boxes.reshape(-1, raw_boxes.shape[-1])[keep].astype(np.float64) / input_size
    anc = anchors[keep].astype(np.float64)
    cx = raw[:, 0] + anc[:, 0]
    cy = raw[:, 1] + anc[:, 1]
    w, h = raw[:, 2], raw[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = raw[:, 4:16].reshape(-1, 6, 2) + anc[:, None, :]
    return boxes, kps, scores[keep]


def iou(box: F64, others: F64) -> F64:
    """IoU of one box (4,) against many (M, 4)."""
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(boxes: F64, kps: F64, scores: F64, iou_threshold: float = 0.3) -> list[tuple[F64, F64, float]]:
    """MediaPipe's WEIGHTED non-maximum suppression.

    Each cluster of overlapping detections becomes one, its box and keypoints
    the score-weighted mean of the cluster, its score the best in it.
    """
    order = np.argsort(-scores, kind="stable")
    remaining = order
    out: list[tuple[F64, F64, float]] = []
    while remaining.size:
        top = remaining[0]
        overlap = iou(boxes[top], boxes[remaining])
        cluster = remaining[overlap > iou_threshold]
        cluster = cluster if cluster.size else remaining[:1]
        weights = scores[cluster] / scores[cluster].sum()
        box = (boxes[cluster] * weights[:, None]).sum(axis=0)
        kp = (kps[cluster] * weights[:, None, None]).sum(axis=0)
        out.append((box, kp, float(scores[top])))
        remaining = remaining[overlap <= iou_threshold]
        remaining = remaining[remaining != top]
    return out


def to_faces(detections: list[tuple[F64, F64, float]], letterbox: Letterbox) -> list[Face]:
    faces = []
    for box, kp, score in detections:
        corners = letterbox.to_frame(box.reshape(2, 2))
        faces.append(Face(tuple(float(v) for v in corners.reshape(4)), score, letterbox.to_frame(kp)))  # type: ignore[arg-type]
    return faces


# A candidate must score at least this fraction of the best detection to be
# chosen as the photo's subject: large, weak false positives (a window, a
# poster) otherwise win "largest face" over a real one.
PRIMARY_MIN_RELATIVE_SCORE = 0.8


def primary_face(faces: list[Face]) -> Face | None:
    """The largest face among the confident ones; None when there is none."""
    if not faces:
        return None
    best = max(f.score for f in faces)
    return max((f for f in faces if f.score >= PRIMARY_MIN_RELATIVE_SCORE * best), key=lambda f: f.area)
