"""Template fusion, photo-set consistency, duplicates, and the per-person gallery (synthetic embeddings)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from kiosk.enrollment import EnrollmentError, duplicate_people, template_from_embeddings
from kiosk.match import Gallery
from kiosk.policy.scoremodel import default_model
from kiosk.policy.templates import consistency, duplicates, fuse, same_person_threshold

F32 = npt.NDArray[np.float32]


def unit(v: npt.ArrayLike) -> F32:
    a = np.asarray(v, np.float32)
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)


def person(rng: np.random.Generator, n: int, spread: float = 0.35, dim: int = 128) -> tuple[F32, F32]:
    """A person's identity direction and n photos scattered around it."""
    centre = unit(rng.normal(size=dim))
    photos = unit(centre + spread * rng.normal(size=(n, dim)) / np.sqrt(dim))
    return centre, photos


def test_fused_template_is_a_unit_vector_closer_to_the_identity_than_its_photos() -> None:
    rng = np.random.default_rng(1)
    centre, photos = person(rng, 5, spread=1.0)
    t = fuse(photos)
    assert np.linalg.norm(t) == pytest.approx(1.0, abs=1e-6)
    assert float(t @ centre) > float(np.max(photos @ centre))


def test_fusion_ignores_photo_order_and_honours_weights() -> None:
    a, b = unit([1.0, 0.0, 0.0]), unit([0.0, 1.0, 0.0])
    assert np.allclose(fuse(np.stack([a, b])), fuse(np.stack([b, a])))
    assert np.allclose(fuse(np.stack([a, b]), [1.0, 1.0]), unit([1.0, 1.0, 0.0]), atol=1e-6)
    leaning = fuse(np.stack([a, b]), [3.0, 1.0])
    assert float(leaning @ a) > float(leaning @ b)
    assert np.allclose(fuse(a), a)


@pytest.mark.parametrize("bad", ["none", "eleven", "negative_weight", "cancel"])
def test_fusion_refuses_what_cannot_be_one_person(bad: str) -> None:
    a = unit([1.0, 0.0])
    with pytest.raises(ValueError):
        if bad == "none":
            fuse(np.zeros((0, 2)))
        elif bad == "eleven":
            fuse(np.stack([a] * 11))
        elif bad == "negative_weight":
            fuse(np.stack([a, a]), [1.0, -1.0])
        else:
            fuse(np.stack([a, -a]))


def test_same_person_threshold_comes_from_the_genuine_distribution() -> None:
    m = default_model()
    t = same_person_threshold(m)
    assert 0.0 < t < m.threshold_for(1e-2)  # far below any door threshold
    assert m.genuine_quantile(0.02, "single") == pytest.approx(t)


def test_a_photo_set_of_one_person_agrees() -> None:
    rng = np.random.default_rng(2)
    _, photos = person(rng, 4)
    verdict = consistency(photos, 0.3)
    assert verdict.ok and verdict.min_score > 0.3 and not verdict.disagreeing


def test_a_photo_set_of_two_people_is_refused_and_the_odd_photo_named() -> None:
    rng = np.random.default_rng(3)
    _, ann = person(rng, 3)
    _, bob = person(rng, 1)
    verdict = consistency(np.concatenate([ann, bob]), 0.3)
    assert not verdict.ok
    assert verdict.outliers == (3,)
    assert {(i, j) for i, j, _ in verdict.disagreeing} == {(0, 3), (1, 3), (2, 3)}
    assert "photo 4" in verdict.message()
    assert "c.jpg" in verdict.message(["a.jpg", "b.jpg", "x.jpg", "c.jpg"])


def test_enrollment_fuses_an_agreeing_set_into_one_row() -> None:
    rng = np.random.default_rng(4)
    _, photos = person(rng, 3)
    t = template_from_embeddings(photos)
    assert t.photos == 3 and t.row().shape == (1, 128) and t.consistency.ok
    assert t.kind == "fused-mean-v1"


def test_enrollment_refuses_a_set_whose_photos_disagree() -> None:
    rng = np.random.default_rng(5)
    _, ann = person(rng, 2)
    _, bob = person(rng, 1)
    with pytest.raises(EnrollmentError, match="likely of two different people"):
        template_from_embeddings(np.concatenate([ann, bob]))


def test_enrollment_can_demand_a_minimum_of_photos() -> None:
    rng = np.random.default_rng(6)
    _, photos = person(rng, 2)
    with pytest.raises(EnrollmentError, match="at least 3"):
        template_from_embeddings(photos, min_photos=3)


def test_duplicate_check_flags_the_same_person_under_another_id_and_nobody_else() -> None:
    rng = np.random.default_rng(7)
    people = [person(rng, 3, spread=0.2) for _ in range(5)]
    labels = [f"p{i}" for i in range(5) for _ in range(3)]
    gallery = Gallery(np.concatenate([p[1] for p in people]), labels)  # a legacy store: photos, not templates
    again = fuse(person(np.random.default_rng(7), 3, spread=0.2)[1])  # p0's photos once more
    hits = duplicate_people(gallery, again)
    assert [h[0] for h in hits] == ["p0"]
    assert duplicate_people(gallery, again, exclude="p0") == []
    assert duplicates(gallery.matrix, gallery.labels, again, 0.999) == []


def test_gallery_from_rows_holds_one_template_per_person() -> None:
    rng = np.random.default_rng(8)
    ann, bob = person(rng, 3)[1], person(rng, 2)[1]
    g = Gallery.from_rows(["ann"] * 3 + ["bob"] * 2, np.concatenate([ann, bob]))
    assert g.labels == ["ann", "bob"] and g.matrix.shape == (2, 128)
    assert np.allclose(g.matrix[0], fuse(ann), atol=1e-6)
    assert len(Gallery.from_rows([], np.zeros((0, 128), np.float32))) == 0


def test_top2_gives_the_best_person_and_the_best_of_anybody_else() -> None:
    rng = np.random.default_rng(9)
    centres = [person(rng, 1)[0] for _ in range(4)]
    g = Gallery(np.stack(centres), ["a", "b", "c", "d"])
    probe = unit(centres[2] + 0.1 * centres[0])
    best = g.top2(probe)
    scores = np.stack(centres) @ probe
    assert best.person == "c" and best.best == pytest.approx(float(scores[2]))
    assert best.second == pytest.approx(float(np.sort(scores)[-2]))


def test_top2_skips_further_rows_of_the_best_person() -> None:
    a = unit([1.0, 0.0, 0.0])
    rows = np.stack([a] * 20 + [unit([0.6, 0.8, 0.0])])  # 20 rows of "ann" outrank "bob"
    g = Gallery(rows, ["ann"] * 20 + ["bob"])
    person_, best, second = g.top2(a)
    assert (person_, best, second) == ("ann", pytest.approx(1.0), pytest.approx(0.6))
    assert Gallery(np.stack([a, a]), ["ann", "ann"]).top2(a).second == -1.0
    assert Gallery(np.zeros((0, 0), np.float32), []).top2(a) == (None, -1.0, -1.0)
