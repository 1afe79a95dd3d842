"""The real detector and int8 embedder on the shared photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiosk.errors import NoFaceError
from kiosk.imageio import read_rgb
from kiosk.match import cosine

pytestmark = pytest.mark.models


def _embed(pipeline: Any, path: Path) -> np.ndarray:
    return pipeline[0].largest(read_rgb(path), str(path))[1]


def test_same_person_in_different_photos_is_above_threshold(pipeline: Any, data: Path) -> None:
    threshold = pipeline[1].threshold
    people = data / "people"
    for person in ("obama", "biden", "kit_harington"):
        photos = sorted((people / person).glob("*.jpg"))
        ref = _embed(pipeline, photos[0])
        for other in photos[1:]:
            assert cosine(ref, _embed(pipeline, other)) >= threshold, f"{person}: {other.name}"


def test_different_people_are_below_threshold(pipeline: Any, data: Path) -> None:
    threshold = pipeline[1].threshold
    people = data / "people"
    firsts = {p.name: _embed(pipeline, p / "1.jpg") for p in sorted(people.iterdir()) if p.is_dir()}
    names = sorted(firsts)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            assert cosine(firsts[names[a]], firsts[names[b]]) < threshold, (names[a], names[b])


@pytest.mark.parametrize("scene", ["obama-240p.jpg", "obama-480p.jpg", "obama-720p.jpg", "obama-1080p.jpg",
                                   "obama_small.jpg"])
def test_obama_is_recognised_at_every_resolution(pipeline: Any, data: Path, scene: str) -> None:
    ref = _embed(pipeline, data / "people" / "obama" / "1.jpg")
    assert cosine(ref, _embed(pipeline, data / "scenes" / scene)) >= pipeline[1].threshold


@pytest.mark.parametrize(("scene", "faces"), [("two_people.jpg", 2), ("kit_with_rose.jpg", 2)])
def test_multi_face_scenes_find_every_face(pipeline: Any, data: Path, scene: str, faces: int) -> None:
    found = pipeline[0].detect(read_rgb(data / "scenes" / scene))
    assert len(found) == faces
    boxes = sorted(f.box[0] for f in found)
    assert boxes[1] - boxes[0] > 50  # distinct faces, not one face twice


def test_kit_and_rose_are_told_apart_in_one_photo(pipeline: Any, data: Path) -> None:
    rgb = read_rgb(data / "scenes" / "kit_with_rose.jpg")
    faces = pipeline[0].detect(rgb)
    emb = pipeline[0].embed(rgb, faces)
    kit = _embed(pipeline, data / "people" / "kit_harington" / "1.jpg")
    rose = _embed(pipeline, data / "people" / "rose_leslie" / "1.jpg")
    kit_scores = [cosine(kit, e) for e in emb]
    rose_scores = [cosine(rose, e) for e in emb]
    assert int(np.argmax(kit_scores)) != int(np.argmax(rose_scores))
    assert max(kit_scores) >= pipeline[1].threshold and max(rose_scores) >= pipeline[1].threshold


def test_full_range_detector_finds_faces_too(models: Path, data: Path) -> None:
    from kiosk.vision.pipeline import build_detector

    faces = build_detector("full").detect(read_rgb(data / "scenes" / "two_people.jpg"))
    assert len(faces) == 2


def test_a_photo_without_a_face_raises_no_face(pipeline: Any) -> None:
    rgb = np.full((240, 320, 3), 127, np.uint8)
    with pytest.raises(NoFaceError, match="no face"):
        pipeline[0].largest(rgb, "grey.png")


def test_int8_embedder_reads_quantisation_from_the_model(pipeline: Any) -> None:
    emb = pipeline[0].embedder
    card = pipeline[1].data
    assert emb.input_dtype.name == card["input"]["dtype"]
    assert emb.input_quant == pytest.approx((card["input"]["scale"], card["input"]["zero_point"]))
    assert emb.size == 128
