"""What the self-test's tests share: a printed photo rendered once per module, and a sequence folder's bare bones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiosk.pad.meta import SequenceMeta, write_meta
from kiosk.pad.render import RenderSettings, render_photo


@pytest.fixture(scope="module")
def printed(data: Path, pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A print held still of one lfw-view1 person, 20 frames, enrolled from the person's other photos."""
    photos = sorted((data / "lfw-view1" / "images" / "Abdullah_Gul").glob("*.jpg"))
    return render_photo("print_still", photos[0], photos[1:], "Abdullah_Gul", tmp_path_factory.mktemp("pad") / "seq", 4,
                        pipeline[0].detect, RenderSettings(frames=20))


def sequence(folder: Path, species: str) -> Path:
    """A sequence folder with one empty frame and its meta.json: enough for collecting, not for presenting."""
    folder.mkdir(parents=True)
    (folder / "frame_00000.jpg").write_bytes(b"")
    write_meta(folder, SequenceMeta(species, "A", "/x.jpg", 0, 15.0, 1, enroll_photos=["/y.jpg"]))
    return folder
