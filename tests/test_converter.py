"""The Keras rebuild and weight loading (TensorFlow extra), and the report the conversion wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kiosk.errors import ConversionError

tf = pytest.importorskip("tensorflow", reason="converter extra (tensorflow-cpu) not installed")
h5py = pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def facenet():  # type: ignore[no-untyped-def]
    from converter.facenet import build_facenet

    return build_facenet()


def test_rebuilt_network_has_every_weighted_layer_of_the_h5_file(facenet, models: Path) -> None:  # type: ignore[no-untyped-def]
    from converter.weights import read_h5_weights

    stored = read_h5_weights(models / "facenet_keras.h5")
    weighted = {layer.name: [tuple(w.shape) for w in layer.weights] for layer in facenet.layers if layer.weights}
    assert set(weighted) == set(stored)
    assert all(weighted[n] == [a.shape for a in stored[n]] for n in weighted)
    assert facenet.output_shape == (None, 128)


def test_batchnorm_layers_have_no_gamma_and_keras_epsilon(facenet) -> None:  # type: ignore[no-untyped-def]
    bns = [layer for layer in facenet.layers if isinstance(layer, tf.keras.layers.BatchNormalization)]
    assert bns and all(not b.scale and b.epsilon == pytest.approx(0.001) for b in bns)


def test_stride_two_convolutions_use_valid_padding(facenet) -> None:  # type: ignore[no-untyped-def]
    convs = [layer for layer in facenet.layers if isinstance(layer, tf.keras.layers.Conv2D)]
    strided = [c for c in convs if c.strides == (2, 2)]
    assert len(strided) == 7 and all(c.padding == "valid" for c in strided)


def _copy_h5(src: Path, dst: Path, mutate: str) -> None:
    with h5py.File(src, "r") as fin, h5py.File(dst, "w") as fout:
        fin.copy("model_weights", fout)
        group = fout["model_weights"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]]
        if mutate == "drop":
            names.remove("Bottleneck")
            group.attrs["layer_names"] = [n.encode() for n in names]
        else:
            wname = "Bottleneck/kernel:0"
            del group["Bottleneck"][wname]
            group["Bottleneck"][wname] = np.zeros((1792, 64), np.float32)


@pytest.mark.parametrize(("mutate", "message"), [("drop", "without weights"), ("shape", "expected weight shapes")])
def test_mis_loaded_weights_fail_loudly(facenet, models: Path, tmp_path: Path, mutate: str, message: str) -> None:  # type: ignore[no-untyped-def]
    from converter.weights import load_h5_weights

    bad = tmp_path / "bad.h5"
    _copy_h5(models / "facenet_keras.h5", bad, mutate)
    with pytest.raises(ConversionError, match=message):
        load_h5_weights(facenet, bad)


def test_scale_sum_is_x0_plus_scaled_x1() -> None:
    from converter.facenet import ScaleSum

    out = ScaleSum(0.17)([tf.constant([[1.0, 2.0]]), tf.constant([[10.0, 100.0]])])
    assert np.asarray(out)[0].tolist() == pytest.approx([2.7, 19.0])


def test_threshold_choice_is_raised_to_meet_the_false_accept_bound() -> None:
    from converter.report import MAX_FAR, choose_threshold

    rng = np.random.default_rng(1)
    same = np.r_[np.ones(200, bool), np.zeros(5000, bool)]
    scores = np.r_[rng.normal(0.8, 0.1, 200), rng.normal(0.0, 0.15, 5000)]
    t = choose_threshold(scores, same)
    assert t["value"] >= t["best_accuracy_threshold"]
    assert np.mean(scores[~same] >= t["value"]) <= MAX_FAR


def test_conversion_report_meets_the_parity_and_accuracy_targets(models: Path) -> None:
    card = json.loads((models / "facenet_int8.json").read_text())
    assert card["input"]["dtype"] == "int8" and card["output"]["dtype"] == "int8"
    # negative embedding values survive output quantisation
    assert card["output"]["zero_point"] > -128
    for name, parity in card["parity"].items():
        assert parity["mean_cosine"] >= 0.98, name
    for name, acc in card["accuracy"].items():
        assert acc["best_accuracy_drop_points"] <= 0.5, name
    assert {"5-celebrity", "johns"} <= set(card["accuracy"])
    assert 0.0 < card["threshold"]["value"] < 1.0 and card["threshold"]["method"]
    assert len(card["calibration"]["fingerprint"]) == 64


@pytest.mark.conversion
@pytest.mark.parametrize("io", ["uint8", "float"])
def test_other_io_types_convert_and_embed(io: str, tmp_path: Path, data: Path, models: Path) -> None:
    """A quick conversion (16 calibration photos) with uint8 or float input/output tensors."""
    from converter.cli import main as convert_main
    from kiosk.imageio import read_rgb
    from kiosk.match import cosine
    from kiosk.vision.pipeline import build_pipeline

    out = tmp_path / f"facenet_{io}.tflite"
    assert convert_main(["--io", io, "--limit", "16", "--no-float", "--eval", str(data / "johns"),
                         "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    expected = {"uint8": "uint8", "float": "float32"}[io]
    assert card["input"]["dtype"] == expected and card["output"]["dtype"] == expected
    if io == "uint8":
        assert 0 < card["output"]["zero_point"] < 255  # negative embedding values stay representable
    assert card["parity"]["johns"]["mean_cosine"] >= 0.98
    pipeline, _ = build_pipeline(out)
    a = pipeline.largest(read_rgb(data / "people/obama/1.jpg"))[1]
    b = pipeline.largest(read_rgb(data / "people/obama/2.jpg"))[1]
    c = pipeline.largest(read_rgb(data / "people/biden/1.jpg"))[1]
    assert cosine(a, b) > cosine(a, c) + 0.3
