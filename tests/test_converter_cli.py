"""Converter command-line behaviour that needs no TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.errors import ConversionError


def test_edgetpu_without_its_compiler_fails_with_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from converter.cli import _edgetpu

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConversionError, match="edgetpu_compiler on PATH"):
        _edgetpu(tmp_path / "facenet_int8.tflite")


def test_edgetpu_compiler_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from converter.cli import _edgetpu

    fake = tmp_path / "edgetpu_compiler"
    fake.write_text("#!/bin/sh\necho 'Model not quantized' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConversionError, match="Model not quantized"):
        _edgetpu(tmp_path / "facenet_int8.tflite")


def test_io_choices_are_int8_uint8_and_float() -> None:
    from converter.cli import build_parser

    assert build_parser().parse_args(["--io", "uint8"]).io == "uint8"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--io", "int16"])
