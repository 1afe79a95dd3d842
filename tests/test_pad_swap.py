"""The swap attack: a real head earns the live verdict, then a print of an enrolled person is raised over it."""

from __future__ import annotations

import dataclasses
import platform
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiosk.camera.base import Frame
from kiosk.errors import DatasetError
from kiosk.pad.swap import SwapSource, photo_to_frame


def test_photo_to_frame_puts_the_photo_eyes_on_the_frame_eyes() -> None:
    photo = np.array([[80.0, 100.0], [120.0, 100.0]])
    frame = np.array([[300.0, 210.0], [340.0, 240.0]])
    m = photo_to_frame(photo, frame)
    mapped = photo @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(mapped, frame, atol=1e-9)
    assert abs(np.linalg.det(m[:, :2]) - (50.0 / 40.0) ** 2) < 1e-9  # a similarity: scale 50/40 both ways


class _Frames:
    def __init__(self, n: int) -> None:
        self.n, self.k = n, 0

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        if self.k >= self.n:
            return None
        self.k += 1
        return Frame(np.full((64, 64, 3), 200, np.uint8), (self.k - 1) / 10.0, self.k - 1)

    def close(self) -> None:
        pass


def test_a_photo_without_a_face_is_refused() -> None:
    with pytest.raises(DatasetError):
        SwapSource(_Frames(3), np.zeros((32, 32, 3), np.uint8), 0.1, lambda rgb: [])


def test_live_head_then_a_print_of_an_enrolled_person_never_opens_the_door(data: Path, pipeline: Any,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """d3 answers the prompt with a real turn (live); 0.5 s later Aaron Peirsol's photo covers the face.
    The kiosk restarts the track on the new face and the relay never moves. With the check disabled the
    same replay opens the door: the test would see the check go."""
    import kiosk.loop
    from kiosk.continuity import FaceContinuity
    from kiosk.decision import DecisionConfig
    from kiosk.imageio import read_rgb
    from kiosk.liveness.challenge import choose_direction
    from kiosk.liveness.landmarks import build_landmarker
    from kiosk.liveness.settings import LivenessSettings
    from kiosk.pad.present import PresentConfig, Presenter, from_video
    from kiosk.vision.pipeline import build_detector

    seed = next(s for s in range(100) if choose_direction(random.Random(s)) == "left")
    clip = data / "videos" / "LivePortrait" / "driving" / "d3.mp4"
    photos = sorted((data / "lfw-view1" / "images" / "Aaron_Peirsol").glob("*.jpg"))
    config = PresentConfig(DecisionConfig(), liveness=LivenessSettings(), max_seconds=10)
    landmarker = build_landmarker()
    alone = Presenter(pipeline[0], pipeline[1].threshold, config, landmarker, seed=seed).present_cooperative(
        from_video(clip))
    if alone.verdict != "live" and platform.machine() != "x86_64":
        pytest.skip("the clip's answer was not live with this machine's video decoding (docs/deploy-pi.md): "
                    "the swap needs a live head first")
    assert alone.error is None and alone.verdict == "live" and alone.verdict_s is not None
    swap_at = alone.verdict_s + 0.5
    p = dataclasses.replace(from_video(clip), species="print_swap", subject="Aaron_Peirsol",
                            enroll=lambda: [read_rgb(x) for x in photos[1:]])

    detect = build_detector().detect  # the source's own: it runs on the capture thread

    def wrap(source: Any) -> Any:
        return SwapSource(source, read_rgb(photos[0]), swap_at, detect)

    o = Presenter(pipeline[0], pipeline[1].threshold, config, landmarker, seed=seed).present_cooperative(p, wrap=wrap)
    assert o.verdict == "live"  # the real head's verdict, before the swap
    assert o.face_changes >= 1 and not o.granted and not o.door_opened

    class Blind(FaceContinuity):
        def changed(self, track: int, embedding: Any) -> float | None:
            return None

    monkeypatch.setattr(kiosk.loop, "FaceContinuity", Blind)
    blind = Presenter(pipeline[0], pipeline[1].threshold, config, landmarker, seed=seed).present_cooperative(
        p, wrap=wrap)
    assert blind.face_changes == 0 and blind.granted and blind.door_opened
    assert blind.granted_s is not None and blind.granted_s > swap_at  # the print, not the real head, got in
