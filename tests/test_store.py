from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kiosk.errors import ConfigError
from kiosk.store import Enrollment, Store, StoreError, Tombstone, generate_key, load_key
from kiosk.vision.quant import l2_normalize
from tests.clock import FakeClock

FP = "a" * 64


def _emb(seed: int, n: int = 3) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=(n, 128)))


@pytest.fixture()
def key(tmp_path: Path) -> bytes:
    generate_key(tmp_path / "store.key")
    return load_key(tmp_path / "store.key")


@pytest.fixture()
def store(tmp_path: Path, key: bytes) -> Store:
    return Store(tmp_path / "kiosk.db", key, FP, wall_clock=FakeClock(1_700_000_000.0))


def test_enrolled_person_is_in_the_gallery(store: Store) -> None:
    emb = _emb(1)
    assert store.apply(Enrollment("ann", "Ann", 1, FP, emb)).applied
    g = store.gallery()
    assert g.labels == ["ann"] * 3
    assert np.allclose(g.matrix, emb)


def test_older_revision_never_overwrites_a_newer_one(store: Store) -> None:
    store.apply(Enrollment("ann", "Ann", 5, FP, _emb(1)))
    r = store.apply(Enrollment("ann", "Old Ann", 4, FP, _emb(2)))
    assert not r.applied and r.reason == "stale_revision" and r.revision == 5
    assert store.people()[0]["name"] == "Ann"
    assert not store.apply(Enrollment("ann", "Same", 5, FP, _emb(2))).applied  # a replay


def test_deleted_person_is_not_resurrected_by_an_older_enrollment(store: Store) -> None:
    store.apply(Enrollment("ann", "Ann", 1, FP, _emb(1)))
    r = store.apply(Tombstone("ann", 2))
    assert r.applied and r.erased
    assert len(store.gallery()) == 0
    assert not store.apply(Enrollment("ann", "Ann", 1, FP, _emb(1))).applied
    assert store.apply(Enrollment("ann", "Ann again", 3, FP, _emb(3))).applied


def test_delete_before_enrollment_blocks_the_late_enrollment(store: Store) -> None:
    store.apply(Tombstone("bob", 7))
    assert not store.apply(Enrollment("bob", "Bob", 6, FP, _emb(1))).applied


def test_embeddings_from_another_model_are_refused(store: Store) -> None:
    r = store.apply(Enrollment("ann", "Ann", 1, "b" * 64, _emb(1)))
    assert not r.applied and r.reason == "model_mismatch"
    assert len(store.gallery()) == 0


def test_wrong_embedding_shape_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="embeddings"):
        store.apply(Enrollment("ann", "Ann", 1, FP, np.zeros((2, 64), np.float32)))
    with pytest.raises(StoreError):
        store.apply(Enrollment("ann", "Ann", 1, FP, _emb(1, n=11)))


def test_embeddings_are_encrypted_at_rest_and_erased_on_delete(tmp_path: Path, store: Store) -> None:
    emb = _emb(4)
    store.apply(Enrollment("ann", "Ann", 1, FP, emb))
    raw = emb.astype("<f4").tobytes()
    disk = b"".join(p.read_bytes() for p in tmp_path.glob("kiosk.db*"))
    assert raw[:64] not in disk
    blob = store._db.execute("SELECT ciphertext FROM people").fetchone()[0]
    assert blob[:32] in disk or blob[:32] in (tmp_path / "kiosk.db-wal").read_bytes()
    store.apply(Tombstone("ann", 2))
    disk = b"".join(p.read_bytes() for p in tmp_path.glob("kiosk.db*"))
    assert blob[:32] not in disk


def test_validity_window_uses_the_wall_clock(tmp_path: Path, key: bytes) -> None:
    clock = FakeClock(1000.0)
    store = Store(tmp_path / "k.db", key, FP, wall_clock=clock)
    store.apply(Enrollment("con", "Contractor", 1, FP, _emb(1), valid_from=1000.0, valid_until=2000.0))
    store.apply(Enrollment("off", "Disabled", 1, FP, _emb(2), enabled=False))
    assert store.is_valid("con") and not store.is_valid("off") and not store.is_valid("nobody")
    clock.advance(1000)
    assert not store.is_valid("con")


def test_state_survives_reopening(tmp_path: Path, key: bytes) -> None:
    s = Store(tmp_path / "k.db", key, FP)
    s.apply(Enrollment("ann", "Ann", 3, FP, _emb(1)))
    s.close()
    again = Store(tmp_path / "k.db", key, FP)
    assert again.revision("ann") == 3 and len(again.gallery()) == 3


def test_wrong_key_cannot_read_the_embeddings(tmp_path: Path, key: bytes) -> None:
    from cryptography.exceptions import InvalidTag

    Store(tmp_path / "k.db", key, FP).apply(Enrollment("ann", "Ann", 1, FP, _emb(1)))
    with pytest.raises(InvalidTag):
        Store(tmp_path / "k.db", os.urandom(32), FP).gallery()


def test_key_file_must_be_private_and_32_bytes(tmp_path: Path) -> None:
    p = tmp_path / "k"
    p.write_bytes(os.urandom(32))
    p.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_key(p)
    p.chmod(0o600)
    assert len(load_key(p)) == 32
    p.write_bytes(b"short")
    with pytest.raises(ConfigError, match="32 raw bytes"):
        load_key(p)
    with pytest.raises(ConfigError, match="keygen"):
        load_key(tmp_path / "missing")
