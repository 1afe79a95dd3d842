"""Real footage as another camera records it (``kiosk.pad.camera_shift``): each effect on its own, the
wrapper over a frame source, and a real clip replayed through the loop behind it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiosk.camera.replay import ReplaySource
from kiosk.pad.camera_shift import PRESETS, CameraShift, ShiftedSource, shoot


def _grey(level: int, h: int = 120, w: int = 160) -> np.ndarray:
    return np.full((h, w, 3), level, np.uint8)


def test_the_default_camera_returns_an_equal_copy() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    out = shoot(rgb, CameraShift(), np.random.default_rng(1))
    assert np.array_equal(out, rgb) and out is not rgb and not np.shares_memory(out, rgb)


def test_scale_puts_fewer_pixels_on_the_scene() -> None:
    out = shoot(_grey(90), CameraShift(scale=0.5), np.random.default_rng(0))
    assert out.shape == (60, 80, 3) and out.dtype == np.uint8 and (out == 90).all()


def test_gain_darkens_and_noise_is_fresh_on_every_frame_but_reproducible_from_the_seed() -> None:
    dark = shoot(_grey(200), CameraShift(gain=0.45), np.random.default_rng(0))
    assert (dark == 90).all()
    low = CameraShift(gain=0.45, noise=6.0)
    rng = np.random.default_rng(3)
    a, b = shoot(_grey(200, 200, 200), low, rng), shoot(_grey(200, 200, 200), low, rng)
    assert not np.array_equal(a, b)  # the same scene twice: two different exposures
    assert abs(float(a.mean()) - 90.0) < 0.5 and 5.5 < float(a.astype(np.float32).std()) < 6.5
    again = shoot(_grey(200, 200, 200), low, np.random.default_rng(3))
    assert np.array_equal(a, again)


def test_blur_softens_an_edge() -> None:
    step = _grey(0)
    step[:, 80:] = 255
    out = shoot(step, CameraShift(blur=1.5), np.random.default_rng(0))
    assert 0 < out[0, 79, 0] < 128 < out[0, 80, 0] < 255
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255


def test_jpeg_compresses_as_a_camera_would_an_rgb_frame() -> None:
    import cv2

    rgb = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rgb = np.asarray(cv2.GaussianBlur(rgb, (0, 0), 2.0), np.uint8)  # colour regions: chroma subsampling matters
    out = shoot(rgb, CameraShift(jpeg_quality=30), np.random.default_rng(0))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 30])
    assert ok
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert decoded is not None
    expected = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(out, expected)
    ok, raw = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 30])  # the mistake: RGB read as BGR
    naive = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    assert ok and naive is not None and not np.array_equal(out, naive)
    assert not np.array_equal(out, rgb)


@pytest.mark.parametrize("bad, message", [
    ({"scale": 0.0}, "scale 0.0 outside"), ({"scale": 1.5}, "scale 1.5 outside"),
    ({"blur": -0.5}, "blur -0.5 outside"), ({"blur": float("nan")}, "blur nan outside"),
    ({"noise": -1.0}, "noise -1.0 outside"), ({"noise": float("nan")}, "noise nan outside"),
    ({"gain": 0.0}, "gain 0.0 outside"), ({"jpeg_quality": 0}, "jpeg_quality 0 outside")])
def test_an_impossible_camera_is_refused_with_the_setting_and_value_named(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"camera shift 'broken': {message}"):
        CameraShift("broken", **bad)


def test_the_presets_are_named_by_their_keys_and_start_with_the_clip_as_recorded() -> None:
    assert next(iter(PRESETS)) == "as recorded" and PRESETS["as recorded"] == CameraShift()
    assert all(name == shift.name for name, shift in PRESETS.items())
    assert len({(s.scale, s.blur, s.gain, s.noise, s.jpeg_quality) for s in PRESETS.values()}) == len(PRESETS)


def test_the_wrapper_keeps_time_and_index_and_ends_with_its_source() -> None:
    frames = [_grey(10 * k) for k in range(3)]
    source = ShiftedSource(ReplaySource(frames, fps=10.0), CameraShift(scale=0.5), seed=1)
    source.open()
    got = [source.read() for _ in range(4)]
    source.close()
    assert got[3] is None
    shots = [f for f in got if f is not None]
    assert [(f.index, f.t) for f in shots] == [(0, 0.0), (1, 0.1), (2, 0.2)]
    assert all(f.rgb.shape == (60, 80, 3) and int(f.rgb[0, 0, 0]) == 10 * f.index for f in shots)


def test_a_real_clip_through_a_far_camera_reaches_the_loop_at_its_reduced_size(data: Path, pipeline: Any) -> None:
    from kiosk.decision import DecisionConfig
    from kiosk.pad.present import PresentConfig, Presenter, from_video

    seen: list[tuple[int, ...]] = []

    class Spy(ShiftedSource):
        def read(self) -> Any:
            frame = super().read()
            if frame is not None:
                seen.append(frame.rgb.shape)
            return frame

    clip = data / "videos" / "LivePortrait" / "driving" / "d12.mp4"
    p = from_video(clip, max_seconds=1.0)
    assert callable(p.frames)
    size = p.frames()[0].shape
    presenter = Presenter(pipeline[0], pipeline[1].threshold, PresentConfig(DecisionConfig(liveness=False)))
    o = presenter.present(p, wrap=lambda s: Spy(s, CameraShift(scale=0.5), seed=0))
    assert seen and all(s == (round(size[0] * 0.5), round(size[1] * 0.5), 3) for s in seen)
    assert o.frames == len(seen) and o.usable_frames > 0 and o.granted  # enrolled from the clip as recorded


def test_a_replay_through_a_wrapper_that_changes_nothing_is_the_replay_without_one(data: Path, pipeline: Any) -> None:
    from kiosk.decision import DecisionConfig
    from kiosk.pad.present import PresentConfig, Presenter, from_video

    clip = data / "videos" / "LivePortrait" / "driving" / "d12.mp4"
    presenter = Presenter(pipeline[0], pipeline[1].threshold, PresentConfig(DecisionConfig(liveness=False)))
    plain = presenter.present(from_video(clip, max_seconds=1.0))
    wrapped = presenter.present(from_video(clip, max_seconds=1.0), wrap=lambda s: ShiftedSource(s, CameraShift()))
    assert plain.granted and plain.frames == wrapped.frames and plain.usable_frames == wrapped.usable_frames
    assert plain.decisions == wrapped.decisions and plain.granted_s == wrapped.granted_s
