"""FaceMesh through the project's runtime on a real clip and on a rendered flat attack."""

from __future__ import annotations

import platform
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from kiosk.imageio import read_rgb
from kiosk.liveness import geometry as g
from kiosk.liveness.cues import LivenessResult, Verdict
from kiosk.liveness.judge import LivenessJudge
from kiosk.liveness.landmarks import Landmarker, build_landmarker
from kiosk.liveness.prompters import LogPrompter
from kiosk.liveness.settings import LivenessSettings
from kiosk.vision.boxes import primary_face
from kiosk.vision.pipeline import build_detector
from tests.clock import FakeClock
from tests.liveness_render import render_print

pytestmark = pytest.mark.models

# A webcam clip whose subject turns his head within the first seconds.
TURNING_CLIP = "videos/LivePortrait/driving/d12.mp4"


@pytest.fixture(scope="module")
def parts(models: Path) -> tuple[Any, Landmarker]:
    return build_detector("auto", root=models), build_landmarker(root=models)


def _clip(path: Path, fps: float = 15.0, seconds: float = 6.0) -> Iterator[tuple[float, np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    src_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    step = max(1, round(src_fps / fps))
    i = 0
    try:
        while i / src_fps <= seconds:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % step == 0:
                yield i / src_fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()


def _judge_frames(parts: tuple[Any, Landmarker], frames: Iterator[tuple[float, np.ndarray]],
                  mode: str = "passive", meshed: list[float] | None = None, **settings: Any) -> list[LivenessResult]:
    """The judge fed as the loop feeds it: FaceMesh only on the frames the judge says are due."""
    detector, landmarker = parts
    judge = LivenessJudge(LivenessSettings(mode=mode, **settings), FakeClock(0.0), LogPrompter(), random.Random(1))
    results = []
    for t, rgb in frames:
        if not judge.due(1, t):
            results.append(judge.current(1))
            continue
        if meshed is not None:
            meshed.append(t)
        face = primary_face(detector.detect(rgb))
        lm = landmarker.landmarks(rgb, face) if face is not None else None
        results.append(judge.observe(1, lm, now=t, frame=rgb))
    return results


def test_landmarks_of_a_real_face_fall_on_its_features(parts: tuple[Any, Landmarker], data: Path) -> None:
    detector, landmarker = parts
    rgb = read_rgb(data / "people" / "obama" / "1.jpg")
    face = primary_face(detector.detect(rgb))
    assert face is not None
    lm = landmarker.landmarks(rgb, face)
    assert lm is not None and lm.shape == (468, 3) and lm.dtype == np.float32
    assert landmarker.last_presence > 0.9
    x0, _, x1, _ = face.box
    rig = g.rigid(lm)
    assert np.all((rig[:, 0] > x0 - 0.1 * face.width) & (rig[:, 0] < x1 + 0.1 * face.width))
    a, b = g.eye_centres(rig)
    # the mesh's eye centres agree with the detector's eye keypoints within a fifth of the eye distance
    assert np.linalg.norm(a - face.keypoints[0]) < 0.2 * g.inter_ocular(rig)
    assert np.linalg.norm(b - face.keypoints[1]) < 0.2 * g.inter_ocular(rig)
    assert lm[1, 2] < lm[234, 2]  # the nose tip is nearer the camera than the side of the face


def test_mesh_on_a_faceless_region_is_no_evidence(parts: tuple[Any, Landmarker], data: Path) -> None:
    detector, landmarker = parts
    rgb = read_rgb(data / "people" / "obama" / "1.jpg")
    face = primary_face(detector.detect(rgb))
    assert face is not None
    blank = np.full_like(rgb, 128)
    assert landmarker.landmarks(blank, face) is None


# This clip's passive parallax sits at the default threshold: its best pair leaves 0.1085 IOD on x86_64,
# five frames clear 0.10 and the verdict is live; on an emulated Cortex-A76 the decoded frames differ by
# about one grey level (OpenCV's video decoding there), the face boxes by a few pixels, and only two frames
# clear 0.10. The tests below hold on both: real parallax is seen, nothing is called flat.
# Those five pairs stand 13.5-16.2 times above the clip's own landmark jitter: under the passive bar
# (passive_noise_factor, 18), so at the defaults this person is asked to turn; the geometry is checked
# with the bar as low as a prompted turn's.
AS_PROMPTED = {"passive_noise_factor": LivenessSettings().noise_factor}


def _parallax_frames(results: list[LivenessResult]) -> int:
    return max(int(r.values.get("live_frames", 0)) for r in results)


def test_real_clip_of_a_turning_head_shows_parallax(parts: tuple[Any, Landmarker], data: Path) -> None:
    results = _judge_frames(parts, _clip(data / TURNING_CLIP), **AS_PROMPTED)
    assert _parallax_frames(results) >= 2
    assert all(r.verdict is not Verdict.FLAT for r in results)
    assert results[-1].verdict is Verdict.LIVE or platform.machine() != "x86_64"  # the margin: see above
    # at the defaults the same turn, unprompted, is no verdict either way: the prompt decides
    assert {r.verdict for r in _judge_frames(parts, _clip(data / TURNING_CLIP))} == {Verdict.PENDING}


def test_a_faster_camera_is_sampled_down_to_the_calibrated_rate(parts: tuple[Any, Landmarker], data: Path) -> None:
    """At the clip's own 25 frames per second, FaceMesh runs on every other frame (evenly, 12.5 per second,
    never faster than the 15 it was calibrated at) and the verdict stands."""
    meshed: list[float] = []
    results = _judge_frames(parts, _clip(data / TURNING_CLIP, fps=100.0), meshed=meshed, **AS_PROMPTED)
    assert len(results) > len(meshed)  # frames in between reuse the last result
    rate = (len(meshed) - 1) / (meshed[-1] - meshed[0])  # until a verdict: a final one needs no more
    assert rate == pytest.approx(12.5), rate
    assert _parallax_frames(results) >= 1 and all(r.verdict is not Verdict.FLAT for r in results)
    live_at = next((i for i, r in enumerate(results) if r.verdict is Verdict.LIVE), None)
    assert live_at is None or live_at < len(results) - 1  # after a verdict FaceMesh stops
    assert live_at is not None or platform.machine() != "x86_64"  # the margin: see above


def test_rendered_print_turned_in_3d_is_never_live(parts: tuple[Any, Landmarker], data: Path, tmp_path: Path) -> None:
    paths = render_print(data / "lfw-view1" / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg", tmp_path)
    frames = [(k / 15.0, read_rgb(p)) for k, p in enumerate(paths)]
    passive = _judge_frames(parts, iter(frames))
    assert any(r.values.get("motion", 0.0) > 0.0 for r in passive)  # the mesh saw the print
    assert all(r.verdict is not Verdict.LIVE for r in passive)
    # with the challenge, the same print ends denied
    later = [(t + k * 3.0, rgb) for k in range(3) for t, rgb in frames]
    challenged = _judge_frames(parts, iter(later), mode="challenge")
    assert all(r.verdict is not Verdict.LIVE for r in challenged)
    assert challenged[-1].verdict is Verdict.FLAT
