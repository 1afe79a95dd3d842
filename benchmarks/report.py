"""How every benchmark ends: its table on stdout and, when asked, its results as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def save(res: dict[str, Any], path: Path | None) -> None:
    """The results as indented JSON at ``path`` (nothing when None)."""
    if path is not None:
        path.write_text(json.dumps(res, indent=2) + "\n")


def finish(text: str, res: dict[str, Any], path: Path | None) -> int:
    """Print the report, save the results, and give the exit status."""
    print(text)
    save(res, path)
    return 0
