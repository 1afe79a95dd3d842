"""Keras model -> TFLite flatbuffers, float32 and full-integer int8."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from kiosk.errors import ConversionError

logger = logging.getLogger(__name__)

IO_TYPES: dict[str, Any] = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}


def to_float_tflite(model: Any) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    return bytes(converter.convert())


def to_int8_tflite(
    model: Any,
    calibration: Sequence[npt.NDArray[np.float32]],
    io: str = "int8",
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """Full-integer quantisation (TFLITE_BUILTINS_INT8) calibrated on prewhitened crops, batch 1.

    Every op is integer; with ``io="float"`` only the model's edges convert.
    """
    if not calibration:
        raise ConversionError("calibration set is empty: no face was found in the calibration folder")
    if io not in IO_TYPES:
        raise ConversionError(f"--io must be one of {', '.join(IO_TYPES)}, not {io!r}")

    def representative() -> Iterator[list[npt.NDArray[np.float32]]]:
        for i, x in enumerate(calibration):
            if progress:
                progress(i + 1, len(calibration))
            yield [x[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = IO_TYPES[io]
    converter.inference_output_type = IO_TYPES[io]
    try:
        return bytes(converter.convert())
    except Exception as exc:  # the converter raises many unrelated types
        raise ConversionError(f"int8 conversion failed: {exc}") from exc
