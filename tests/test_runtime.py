from pathlib import Path

import pytest

from kiosk.errors import ModelMissingError, RuntimeMissingError
from kiosk.vision.runtime import load_runtime


def test_unknown_runtime_name_is_refused() -> None:
    with pytest.raises(RuntimeMissingError, match="unknown TFLite runtime"):
        load_runtime("tensorflow_lite_magic")


# the runtime's Delegate.__del__ trips over its own failed load; not ours to fix
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_missing_delegate_library_is_named(models: Path) -> None:
    rt = load_runtime()
    with pytest.raises(RuntimeMissingError, match=r"libedgetpu\.so\.1"):
        rt.interpreter(models / "face_detection_short_range.tflite", delegate="edgetpu")


def test_missing_and_garbage_model_files_are_reported(tmp_path: Path) -> None:
    rt = load_runtime()
    with pytest.raises(ModelMissingError, match="does not exist"):
        rt.interpreter(tmp_path / "nope.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelMissingError, match="not a loadable"):
        rt.interpreter(junk)


def test_xnnpack_can_be_switched_off(models: Path) -> None:
    rt = load_runtime()
    interp = rt.interpreter(models / "face_detection_short_range.tflite", xnnpack=False)
    assert interp.get_input_details()[0]["shape"].tolist() == [1, 128, 128, 3]


def test_the_runtime_named_in_the_environment_is_the_one_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    wanted = os.environ.get("KIOSK_TFLITE_RUNTIME")
    rt = load_runtime()
    if wanted:
        assert rt.name == wanted
    else:
        assert rt.name in ("ai_edge_litert", "tflite_runtime")
    monkeypatch.setenv("KIOSK_TFLITE_RUNTIME", "no_such_runtime")
    with pytest.raises(RuntimeMissingError, match="no_such_runtime"):
        load_runtime()
