"""The commands people run, including every kind of bad input."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.errors import ImageFormatError, ImageReadError, ModelIntegrityError, NoFaceError

pytestmark = pytest.mark.models
Run = Callable[..., tuple[int, str, str]]


def test_compare_same_person_json(run_cli: Run, data: Path, models: Path) -> None:
    code, out, _ = run_cli("compare", data / "people/obama/1.jpg", data / "people/obama/2.jpg", "--json")
    assert code == 0
    result = json.loads(out)
    assert set(result) >= {"similarity", "distance", "same", "threshold", "faces"}
    assert result["same"] is True and result["similarity"] >= result["threshold"]
    assert len(result["faces"]) == 2 and len(result["faces"][0]["box"]) == 4


def test_compare_different_people_writes_annotated_image(run_cli: Run, data: Path, tmp_path: Path) -> None:
    out_img = tmp_path / "cmp.jpg"
    code, out, _ = run_cli("compare", data / "people/obama/1.jpg", data / "people/biden/1.jpg", "--out", out_img)
    assert code == 0 and "different people" in out
    img = cv2.imread(str(out_img))
    assert img is not None and img.shape[0] == 480 + 40 and img.shape[1] > 480


def test_greyscale_alpha_and_16_bit_photos_are_compared(run_cli: Run, data: Path, tmp_path: Path) -> None:
    bgr = cv2.imread(str(data / "people/obama/2.jpg"))
    grey, alpha, deep = tmp_path / "g.png", tmp_path / "a.png", tmp_path / "d.png"
    cv2.imwrite(str(grey), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(alpha), cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(deep), bgr.astype(np.uint16) * 257)
    for path in (grey, alpha, deep, data / "scenes/32bit.png"):
        code, out, err = run_cli("compare", data / "people/obama/1.jpg", path, "--json")
        assert code == 0, err
        assert "similarity" in json.loads(out)


def _corrupt(tmp: Path) -> Path:
    p = tmp / "corrupt.jpg"
    p.write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
    return p


def _tiny(tmp: Path) -> Path:
    p = tmp / "tiny.png"
    cv2.imwrite(str(p), np.zeros((12, 12, 3), np.uint8))
    return p


def _faceless(tmp: Path) -> Path:
    p = tmp / "wall.png"
    cv2.imwrite(str(p), np.full((200, 200, 3), 180, np.uint8))
    return p


@pytest.mark.parametrize(
    ("make", "code", "message"),
    [
        (lambda t: t / "missing.jpg", ImageReadError.exit_code, "cannot read file"),
        (_corrupt, ImageReadError.exit_code, "not a readable image"),
        (_tiny, ImageFormatError.exit_code, "at least 32 px"),
        (_faceless, NoFaceError.exit_code, "no face found"),
    ],
)
def test_bad_input_gives_one_clear_line_and_its_exit_code(
    run_cli: Run, data: Path, tmp_path: Path, make: Callable[[Path], Path], code: int, message: str
) -> None:
    got, _out, err = run_cli("compare", data / "people/obama/1.jpg", make(tmp_path))
    assert got == code
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("kiosk: error:")]) == 1


def test_model_with_wrong_hash_is_refused(run_cli: Run, data: Path, models: Path, tmp_path: Path) -> None:
    bad = tmp_path / "facenet_int8.tflite"
    shutil.copy(models / "facenet_int8.json", tmp_path / "facenet_int8.json")
    bad.write_bytes((models / "facenet_int8.tflite").read_bytes()[:-10] + b"0123456789")
    code, _, err = run_cli("compare", data / "people/obama/1.jpg", data / "people/obama/2.jpg", "--model", bad)
    assert code == ModelIntegrityError.exit_code and "sha256" in err


def test_exit_codes_are_distinct() -> None:
    from kiosk import errors

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.KioskError)]
    codes = [c.exit_code for c in classes if c is not errors.KioskError]
    assert len(codes) == len(set(codes))


def test_eval_identities_json_and_plot(run_cli: Run, data: Path, tmp_path: Path) -> None:
    plot = tmp_path / "roc.png"
    code, out, _ = run_cli("eval", "--identities", data / "johns", "--json", "--plot", plot)
    assert code == 0
    r = json.loads(out)
    for key in ("n_pairs", "n_skipped", "threshold", "accuracy_at_threshold", "best_accuracy", "best_threshold",
                "auc", "tar_at_far"):
        assert key in r
    assert set(r["tar_at_far"]) == {"0.01", "0.001"}
    assert r["best_accuracy"] >= 0.99 and r["auc"] >= 0.99
    assert cv2.imread(str(plot)) is not None


def test_eval_pairs_counts_pairs_with_no_face_as_skipped(run_cli: Run, data: Path, tmp_path: Path) -> None:
    _faceless(tmp_path)
    csv = tmp_path / "pairs.csv"
    people = data / "people"
    csv.write_text(
        "img1,img2,same\n"
        f"{people}/obama/1.jpg,{people}/obama/2.jpg,1\n"
        f"{people}/biden/1.jpg,{people}/biden/2.jpg,true\n"
        f"{people}/obama/1.jpg,{people}/biden/1.jpg,0\n"
        f"{people}/kit_harington/1.jpg,{people}/rose_leslie/1.jpg,false\n"
        f"{people}/obama/1.jpg,wall.png,0\n"
    )
    code, out, _ = run_cli("eval", "--pairs", csv, "--images", tmp_path, "--json")
    assert code == 0
    r = json.loads(out)
    assert r["n_pairs"] == 4 and r["n_skipped"] == 1 and r["accuracy_at_threshold"] == 1.0


def test_models_list_shows_every_artifact(run_cli: Run) -> None:
    code, out, _ = run_cli("models", "list", "--json")
    assert code == 0
    names = {row["name"] for row in json.loads(out)}
    assert {"facenet_keras", "blazeface_short_range", "5-celebrity"} <= names
