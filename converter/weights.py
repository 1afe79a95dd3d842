"""Loading ``facenet_keras.h5`` weights by layer name with h5py.

Every weighted layer of the file must land on a layer of the rebuilt model
with identical shapes, and every weighted layer of the model must be filled;
anything else is a ``ConversionError`` rather than a quietly wrong network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kiosk.errors import ConversionError


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def read_h5_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """Layer name -> weight arrays in the file's stored order."""
    try:
        with h5py.File(path, "r") as f:
            group = f.get("model_weights", f)
            out: dict[str, list[np.ndarray]] = {}
            for layer in group.attrs["layer_names"]:
                g = group[_s(layer)]
                names = [_s(n) for n in g.attrs.get("weight_names", [])]
                if names:
                    out[_s(layer)] = [np.asarray(g[n]) for n in names]
            return out
    except (OSError, KeyError) as exc:
        raise ConversionError(f"{path} is not a Keras HDF5 weights file: {exc}") from exc


def load_h5_weights(model: Any, path: Path) -> int:
    """Assign weights by layer name; returns the number of layers loaded."""
    stored = read_h5_weights(path)
    weighted = {layer.name: layer for layer in model.layers if layer.weights}
    missing = sorted(set(weighted) - set(stored))
    unused = sorted(set(stored) - set(weighted))
    if missing or unused:
        raise ConversionError(
            f"layer names differ between the model and {path.name}: "
            f"{len(missing)} without weights (e.g. {missing[:3]}), {len(unused)} unused (e.g. {unused[:3]})"
        )
    for name, layer in weighted.items():
        arrays = stored[name]
        expected = [tuple(w.shape) for w in layer.weights]
        found = [a.shape for a in arrays]
        if expected != found:
            raise ConversionError(f"layer {name}: expected weight shapes {expected}, file has {found}")
        layer.set_weights(arrays)
    return len(weighted)
