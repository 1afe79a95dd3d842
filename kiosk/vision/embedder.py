"""FaceNet embedder on a TFLite interpreter, float or integer I/O."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from kiosk.vision.quant import dequantize, l2_normalize, prewhiten, quantize


class Embedder:
    """Aligned 160x160 RGB crops -> unit-length embeddings.

    Input and output quantisation parameters are read from the model, never
    assumed: they change with the calibration set.
    """

    def __init__(self, interpreter: Any) -> None:
        self.interpreter = interpreter
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        self._in, self._out = inp["index"], out["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self.input_dtype = np.dtype(inp["dtype"])
        self.input_quant = (float(inp["quantization"][0]), int(inp["quantization"][1]))
        self.output_dtype = np.dtype(out["dtype"])
        self.output_quant = (float(out["quantization"][0]), int(out["quantization"][1]))
        self.size = int(out["shape"][-1])
        if self.input_dtype != np.float32 and self.input_quant[0] == 0.0:
            raise ValueError("integer model input has no quantisation parameters")

    @property
    def crop_size(self) -> int:
        return self.input_shape[1]

    def input_tensor(self, crop: npt.NDArray[np.uint8]) -> npt.NDArray[Any]:
        x = prewhiten(crop)[None]
        if self.input_dtype == np.float32:
            return x
        scale, zp = self.input_quant
        return quantize(x, scale, zp, self.input_dtype)

    def raw_output(self) -> npt.NDArray[np.float32]:
        y = self.interpreter.get_tensor(self._out)
        if self.output_dtype == np.float32:
            return np.asarray(y, np.float32).reshape(-1)
        scale, zp = self.output_quant
        return dequantize(y, scale, zp).reshape(-1)

    def embed(self, crops: list[npt.NDArray[np.uint8]] | npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """(N, size) unit-length embeddings, one invoke per crop (batch size 1)."""
        out = np.empty((len(crops), self.size), np.float32)
        for i, crop in enumerate(crops):
            if crop.shape[:2] != self.input_shape[1:3]:
                raise ValueError(f"crop is {crop.shape[:2]}, model expects {self.input_shape[1:3]}")
            self.interpreter.set_tensor(self._in, self.input_tensor(crop))
            self.interpreter.invoke()
            out[i] = self.raw_output()
        return l2_normalize(out)
