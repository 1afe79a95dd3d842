"""Shared fixtures: the real photos beside the project, the fetched/converted models, and gpiozero's mock pins."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from hypothesis import settings

from tests.admin_site import admins, broker, site  # noqa: F401  (the administrators' site, shared by the admin tests)
from tests.pad_fixtures import printed  # noqa: F401  (a rendered print, shared by the self-test's tests)

# Property tests check results, not speed: hypothesis' 200 ms deadline per example fails them at random on a
# shared machine (a quantisation round trip did, under load).
settings.register_profile("kiosk", deadline=None)
settings.load_profile("kiosk")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _rigs_closed() -> Iterator[None]:
    """Loops driven frame by frame (``tests/loop_fakes.Rig``) end their FaceMesh worker with the test."""
    yield
    fakes = sys.modules.get("tests.loop_fakes")  # only tests that built a rig imported it
    if fakes is not None:
        fakes.close_rigs()


@pytest.fixture(scope="session")
def data() -> Path:
    if not (SHARED_DATA / "README.md").is_file():
        pytest.fail(f"test photos not found at {SHARED_DATA}: clone the project beside ../shared")
    return SHARED_DATA


@pytest.fixture(scope="session")
def models() -> Path:
    from kiosk.artifacts import models_dir

    root = models_dir()
    if not (root / "facenet_int8.tflite").is_file():
        pytest.fail(f"{root}/facenet_int8.tflite missing: run `kiosk models fetch && kiosk-convert` (./dev.sh test does)")
    return root


@pytest.fixture(scope="session")
def pipeline(models: Path):  # type: ignore[no-untyped-def]
    from kiosk.vision.pipeline import build_pipeline

    return build_pipeline(models / "facenet_int8.tflite")


@pytest.fixture()
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    from kiosk.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture()
def factory() -> Iterator[MockFactory]:
    """gpiozero's MockFactory: pins that record every state they are driven to; reset after the test."""
    f = MockFactory()
    yield f
    f.reset()
