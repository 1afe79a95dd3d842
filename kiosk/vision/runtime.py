"""The one place that picks a TFLite runtime and builds interpreters.

``ai_edge_litert`` (the maintained successor) is preferred; ``tflite_runtime``
has the same ``Interpreter`` API and is still supported.  Nothing is imported
until an interpreter is asked for.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import ModelMissingError, RuntimeMissingError

logger = logging.getLogger(__name__)

RUNTIMES = ("ai_edge_litert", "tflite_runtime")
EDGETPU_LIBRARY = "libedgetpu.so.1"


@dataclass(frozen=True)
class Runtime:
    name: str
    version: str
    module: Any  # the package's ``interpreter`` module

    def interpreter(
        self,
        model_path: Path,
        *,
        num_threads: int = 2,
        xnnpack: bool = True,
        delegate: str | None = None,
    ) -> Any:
        """Build and allocate an interpreter.

        ``xnnpack=False`` uses the built-in kernels without the default
        XNNPACK delegate; ``delegate`` names a delegate library to load
        (``edgetpu`` is short for ``libedgetpu.so.1``).
        """
        if not Path(model_path).is_file():
            raise ModelMissingError(f"model file {model_path} does not exist")
        delegates = []
        if delegate:
            library = EDGETPU_LIBRARY if delegate == "edgetpu" else delegate
            try:
                delegates.append(self.module.load_delegate(library))
            except (ValueError, OSError) as exc:
                raise RuntimeMissingError(
                    f"cannot load delegate library {library}: {exc}. Install it (for a Coral: "
                    "apt install libedgetpu1-std) or remove the delegate setting"
                ) from exc
        resolver = self.module.OpResolverType
        kind = resolver.AUTO if xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            interp = self.module.Interpreter(
                model_path=str(model_path),
                num_threads=num_threads,
                experimental_delegates=delegates or None,
                experimental_op_resolver_type=kind,
            )
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelMissingError(f"{model_path} is not a loadable TFLite model: {exc}") from exc
        return interp


def load_runtime(name: str = "auto") -> Runtime:
    """Import a runtime by name, or for ``auto`` the one named by ``$KIOSK_TFLITE_RUNTIME``,
    else the first available."""
    if name == "auto":
        name = os.environ.get("KIOSK_TFLITE_RUNTIME", "auto") or "auto"
    candidates = RUNTIMES if name == "auto" else (name,)
    if name != "auto" and name not in RUNTIMES:
        raise RuntimeMissingError(f"unknown TFLite runtime {name!r}; expected one of auto, {', '.join(RUNTIMES)}")
    errors = []
    for candidate in candidates:
        try:
            module = importlib.import_module(f"{candidate}.interpreter")
            package = importlib.import_module(candidate)
        except ImportError as exc:
            errors.append(f"{candidate}: {exc}")
            continue
        version = str(getattr(package, "__version__", "unknown"))
        logger.debug("using TFLite runtime %s %s", candidate, version)
        return Runtime(candidate, version, module)
    raise RuntimeMissingError(
        "no TFLite runtime could be imported (" + "; ".join(errors) + "). "
        "Install ai-edge-litert (pip install ai-edge-litert) or tflite-runtime"
    )
