import numpy as np
import pytest

from kiosk.vision.anchors import FULL_RANGE, SHORT_RANGE, generate_anchors
from kiosk.vision.boxes import Letterbox, decode, iou, to_faces, weighted_nms


def test_short_range_has_896_anchors_on_16_and_8_grids() -> None:
    a = generate_anchors(SHORT_RANGE)
    assert a.shape == (896, 2)
    assert a[0] == pytest.approx([0.5 / 16, 0.5 / 16])
    assert a[1] == pytest.approx(a[0])  # two anchors per cell on the stride-8 layer
    assert a[512] == pytest.approx([0.5 / 8, 0.5 / 8])
    assert np.all((a > 0) & (a < 1))


def test_full_range_has_one_anchor_per_cell_of_48x48() -> None:
    a = generate_anchors(FULL_RANGE)
    assert a.shape == (2304, 2)
    assert a[1] == pytest.approx([1.5 / 48, 0.5 / 48])


def test_decode_offsets_box_and_keypoints_from_anchor() -> None:
    anchors = np.array([[0.5, 0.5], [0.25, 0.25]], np.float32)
    raw = np.zeros((2, 16), np.float32)
    raw[0, :4] = [12.8, -12.8, 32.0, 64.0]  # in 128-px detector units
    raw[0, 4:6] = [6.4, 0.0]
    logits = np.array([3.0, -3.0], np.float32)
    boxes, kps, scores = decode(raw, logits, anchors, 128, 0.5)
    assert boxes.shape == (1, 4)
    assert boxes[0] == pytest.approx([0.6 - 0.125, 0.4 - 0.25, 0.6 + 0.125, 0.4 + 0.25])
    assert kps[0, 0] == pytest.approx([0.55, 0.5])
    assert kps[0, 1] == pytest.approx([0.5, 0.5])
    assert scores[0] == pytest.approx(1 / (1 + np.exp(-3)))


def test_iou_of_identical_disjoint_and_half_overlapping_boxes() -> None:
    box = np.array([0.0, 0.0, 1.0, 1.0])
    others = np.array([[0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0], [0.5, 0.0, 1.5, 1.0]])
    assert iou(box, others) == pytest.approx([1.0, 0.0, 1 / 3])


def test_weighted_nms_merges_a_cluster_and_keeps_a_distant_face() -> None:
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.0, 1.1, 1.0], [5.0, 5.0, 6.0, 6.0]])
    kps = np.zeros((3, 6, 2))
    kps[1] += 1.0
    scores = np.array([0.9, 0.3, 0.8])
    out = weighted_nms(boxes, kps, scores, 0.3)
    assert len(out) == 2
    merged, kp, score = out[0]
    assert score == pytest.approx(0.9)
    assert merged[0] == pytest.approx(0.1 * 0.3 / 1.2)  # score-weighted mean of x0
    assert kp[0, 0] == pytest.approx(0.3 / 1.2)
    assert out[1][0] == pytest.approx(boxes[2])


def test_weighted_nms_of_nothing_is_nothing() -> None:
    assert weighted_nms(np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0)) == []


@pytest.mark.parametrize(("w", "h"), [(640, 480), (480, 640), (128, 128), (1920, 1080)])
def test_letterbox_maps_detector_coordinates_back_to_frame_pixels(w: int, h: int) -> None:
    lb = Letterbox.fit(w, h, 128)
    # the frame's corners sit at the padded image's corners in detector space
    top_left = np.array([lb.pad_x / 128, lb.pad_y / 128])
    bottom_right = np.array([(128 - lb.pad_x) / 128, (128 - lb.pad_y) / 128])
    assert lb.to_frame(top_left) == pytest.approx([0, 0], abs=1e-6)
    assert lb.to_frame(bottom_right) == pytest.approx([w, h], abs=1e-6)


def test_to_faces_converts_boxes_and_keypoints_to_frame_pixels() -> None:
    lb = Letterbox.fit(200, 100, 128)
    det = [(np.array([0.25, 0.25, 0.75, 0.75]), np.full((6, 2), 0.5), 0.9)]
    (face,) = to_faces(det, lb)
    assert face.box == pytest.approx((50.0, 0.0, 150.0, 100.0))
    assert face.keypoints[0] == pytest.approx([100.0, 50.0])


def test_primary_face_prefers_a_confident_face_over_a_larger_weak_one() -> None:
    from kiosk.vision.boxes import Face, primary_face

    kp = np.zeros((6, 2))
    real = Face((0, 0, 100, 100), 0.97, kp)
    poster = Face((200, 0, 400, 200), 0.71, kp)
    small = Face((500, 0, 540, 40), 0.95, kp)
    assert primary_face([small, poster, real]) is real
    assert primary_face([]) is None
