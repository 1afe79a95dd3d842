"""The JSON manifest written beside a converted embedder, and its checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.artifacts import sha256_file
from kiosk.errors import ModelIntegrityError, ModelMissingError

DEFAULT_MODEL = "facenet_int8.tflite"


def card_path(model: Path) -> Path:
    return model.with_suffix(".json")


@dataclass(frozen=True)
class ModelCard:
    path: Path
    data: dict[str, Any]

    @property
    def sha256(self) -> str:
        return str(self.data["sha256"])

    @property
    def threshold(self) -> float:
        return float(self.data["threshold"]["value"])

    @property
    def fingerprint(self) -> str:
        """Identifies the embedding space: embeddings from different models never mix."""
        return self.sha256

    @classmethod
    def load(cls, model: Path, verify: bool = True) -> ModelCard:
        """Read the card beside ``model`` and check the model's sha256 against it."""
        if not model.is_file():
            raise ModelMissingError(f"model {model} does not exist: run `kiosk-convert` (see README)")
        path = card_path(model)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ModelMissingError(f"{path} is missing: every model needs the manifest kiosk-convert writes") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelIntegrityError(f"{path} is not a readable model manifest: {exc}") from exc
        if verify:
            digest = sha256_file(model)
            if digest != data.get("sha256"):
                raise ModelIntegrityError(
                    f"{model} has sha256 {digest[:16]}…, its manifest says {str(data.get('sha256'))[:16]}…: "
                    "the file was changed or truncated; rebuild it with kiosk-convert"
                )
        return cls(path, data)
