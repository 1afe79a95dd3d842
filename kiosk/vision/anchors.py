"""SSD anchors for MediaPipe's BlazeFace models (pure numpy).

Mirrors MediaPipe's ``SsdAnchorsCalculator`` with ``fixed_anchor_size``:
consecutive layers that share a stride are grouped onto one feature map, each
layer contributing one anchor per aspect ratio plus one interpolated anchor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class AnchorSpec:
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int  # aspect ratios (1.0) + interpolated anchor, if any
    score_threshold: float
    name: str


SHORT_RANGE = AnchorSpec(128, (8, 16, 16, 16), 2, 0.5, "short")
FULL_RANGE = AnchorSpec(192, (4,), 1, 0.6, "full")
SPECS = {"short": SHORT_RANGE, "full": FULL_RANGE}


def generate_anchors(spec: AnchorSpec) -> npt.NDArray[np.float32]:
    """Anchor centres as an (N, 2) array of (x, y) in [0, 1]; width and height are 1."""
    out: list[npt.NDArray[np.float32]] = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        same = 0
        while layer < len(spec.strides) and spec.strides[layer] == stride:
            same += 1
            layer += 1
        size = int(np.ceil(spec.input_size / stride))
        ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        centres = np.stack([(xs + 0.5) / size, (ys + 0.5) / size], axis=-1).reshape(-1, 1, 2)
        per_cell = same * spec.anchors_per_layer
        out.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2).astype(np.float32))
    return np.concatenate(out, axis=0)
