"""Why a print folded along the nose passes for a head: exact geometry, no renderer, no camera noise.

    .venv/bin/python -m benchmarks.fold_geometry

FaceMesh's 468 landmarks (x, y and its depth z) of one real frontal face (the first frame of
``LivePortrait/driving/d3.mp4``) are the head. The fold is the same points printed flat and folded
along a vertical line through the nose tip, both halves folded back by the given angle. Both are
turned about the vertical axis in front of a pinhole camera; the table gives, against the unturned
view, what the flatness cue measures (homography residual and shape change, IOD), the turn the
challenge reads (nose offset across the eyes) and how far the nose tip leaves the straight line
through the forehead and the nasion (IOD): zero for any print folded or bent about vertical lines.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.liveness import geometry as g

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIP = DATA / "videos" / "LivePortrait" / "driving" / "d3.mp4"
F64 = npt.NDArray[np.float64]
FOCAL, DISTANCE, IOD_PX = 560.0, 700.0, 60.0
UPPER_MIDLINE, NOSE_TIP = (151, 9, 8, 168), (1, 4)


def midline_offset(points: F64) -> float:
    """Signed distance (IOD) of the nose tip from the line through the forehead and the nasion."""
    p = points[list(UPPER_MIDLINE), :2]
    c = p.mean(axis=0)
    d = np.linalg.svd(p - c)[2][0]
    d = d if d[1] >= 0 else -d
    tip = points[list(NOSE_TIP), :2].mean(axis=0)
    return float((tip - c) @ np.array([-d[1], d[0]])) / g.inter_ocular(g.rigid(points))


def turned(points: F64, yaw_deg: float) -> F64:
    t = math.radians(yaw_deg)
    r = np.array([[math.cos(t), 0.0, math.sin(t)], [0.0, 1.0, 0.0], [-math.sin(t), 0.0, math.cos(t)]])
    q = points @ r.T
    z = q[:, 2] + DISTANCE
    return np.column_stack([FOCAL * q[:, 0] / z, FOCAL * q[:, 1] / z, np.zeros(len(q))])


def folded(head: F64, angle_deg: float) -> F64:
    a = math.radians(angle_deg)
    x = head.copy()
    d = x[:, 0] - head[1, 0]
    x[:, 0] = head[1, 0] + d * math.cos(a)
    x[:, 2] = np.abs(d) * math.sin(a)
    return x


def row(name: str, obj: F64, yaws: tuple[float, ...]) -> str:
    base = turned(obj, 0.0)
    cells = []
    for yaw in yaws:
        cur = turned(obj, yaw)
        a, b = g.rigid(base), g.rigid(cur)
        cells.append(f"{g.homography_residual(a, b):7.3f}{g.similarity_residual(a, b):7.3f}"
                     f"{g.yaw_pitch(b)[0] - g.yaw_pitch(a)[0]:+7.3f}{midline_offset(cur) - midline_offset(base):+7.3f}")
    return f"{name:<16}" + "  |".join(cells)


def main() -> int:
    if not CLIP.is_file():
        print(f"benchmarks.fold_geometry: the real clip is missing at {CLIP}", file=sys.stderr)
        return 1
    from kiosk.liveness.landmarks import build_landmarker
    from kiosk.vision.boxes import primary_face
    from kiosk.vision.pipeline import build_detector

    cap = cv2.VideoCapture(str(CLIP))
    ok, bgr = cap.read()
    cap.release()
    if not ok:
        print(f"benchmarks.fold_geometry: cannot read {CLIP}", file=sys.stderr)
        return 1
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    face = primary_face(build_detector("auto").detect(rgb))
    marks = build_landmarker().landmarks(rgb, face) if face is not None else None
    if marks is None:
        print("benchmarks.fold_geometry: no face in the clip's first frame", file=sys.stderr)
        return 1
    head = np.asarray(marks, np.float64)
    head[:, :2] -= head[:, :2].mean(axis=0)
    head *= IOD_PX / g.inter_ocular(g.rigid(head))
    flat = head.copy()
    flat[:, 2] = 0.0
    yaws = (10.0, 20.0)
    print("per turn: homography residual, shape change, turn read, nose off the midline (all IOD)")
    print(f"{'':<16}" + "  |".join(f"{f'turned {y:.0f} deg':^28}" for y in yaws))
    print(row("head", head, yaws))
    print(row("flat print", flat, yaws))
    for angle in (20.0, 30.0, 45.0, 60.0):
        print(row(f"fold {angle:.0f} deg", folded(flat, angle), yaws))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
