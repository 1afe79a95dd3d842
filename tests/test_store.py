"""The store keeps signed records, verifies them on every load, and cannot be edited into a grant."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosk.errors import ConfigError
from kiosk.match import fuse_rows
from kiosk.mqtt.protocol import parse
from kiosk.store import Enrollment, Store, StoreError, Tombstone, generate_key, load_key
from tests.site import FP, SITE, Kiosk, Site, emb


@pytest.fixture()
def key(tmp_path: Path) -> bytes:
    generate_key(tmp_path / "store.key")
    return load_key(tmp_path / "store.key")


@pytest.fixture()
def site() -> Site:
    return Site()


@pytest.fixture()
def kiosk(tmp_path: Path, key: bytes, site: Site) -> Kiosk:
    k = Kiosk(site, tmp_path / "kiosk.db", key)
    k.trust.on_key_list(site.key_list(k.now_ms() - 10_000))
    return k


def test_signed_enrollment_is_in_the_gallery(kiosk: Kiosk, site: Site) -> None:
    now = kiosk.now_ms()
    assert kiosk.receive(site.enrollment("ann", now, seed=1), "ann").applied  # type: ignore[attr-defined]
    g = kiosk.store.gallery()
    assert g.labels == ["ann"]  # the photos' rows are fused into one template per person
    assert np.allclose(g.matrix, fuse_rows(emb(1))[None])
    assert kiosk.store.is_valid("ann")


def test_older_revision_never_overwrites_a_newer_one(kiosk: Kiosk, site: Site) -> None:
    now = kiosk.now_ms()
    kiosk.receive(site.enrollment("ann", now, seed=1))
    r = kiosk.receive(site.enrollment("ann", now - 5, seed=2))
    assert not r.applied and r.reason == "stale_revision" and r.revision == now  # type: ignore[attr-defined]
    assert not kiosk.receive(site.enrollment("ann", now, seed=1)).applied  # type: ignore[attr-defined]  # a replay
    assert np.allclose(kiosk.store.gallery().matrix, fuse_rows(emb(1))[None])


def test_deleted_person_is_not_resurrected_by_an_older_enrollment(kiosk: Kiosk, site: Site) -> None:
    now = kiosk.now_ms()
    kiosk.receive(site.enrollment("ann", now - 10))
    r = kiosk.receive(site.tombstone("ann", now))
    assert r.applied and r.erased  # type: ignore[attr-defined]
    assert kiosk.admitted() == set()
    assert not kiosk.receive(site.enrollment("ann", now - 10)).applied  # type: ignore[attr-defined]
    assert kiosk.receive(site.enrollment("ann", now + 10, seed=3)).applied  # type: ignore[attr-defined]
    assert kiosk.admitted() == {"ann"}


def test_an_unsigned_enrollment_is_refused(kiosk: Kiosk) -> None:
    with pytest.raises(StoreError, match="not signed"):
        kiosk.store.apply(Enrollment("ann", "Ann", 5, FP, emb(1)))
    assert kiosk.admitted() == set()


def test_the_signed_payload_wins_over_the_fields_handed_with_it(kiosk: Kiosk, site: Site) -> None:
    payload = site.enrollment("ann", kiosk.now_ms(), enabled=False)
    record = parse(payload, kiosk.trust.keys(), SITE)
    assert isinstance(record, Enrollment)
    forged = Enrollment("ann", "Ann", record.revision, FP, emb(9), enabled=True, signed=payload)
    assert kiosk.store.apply(forged).applied
    assert not kiosk.store.is_valid("ann")
    assert np.allclose(kiosk.store.gallery().matrix, fuse_rows(emb(1))[None])


def test_embeddings_from_another_model_are_refused(kiosk: Kiosk, site: Site) -> None:
    other = site.admin.enrollment(SITE, Enrollment("ann", "Ann", kiosk.now_ms(), "b" * 64, emb(1)))
    r = kiosk.receive(other)
    assert not r.applied and r.reason == "model_mismatch"  # type: ignore[attr-defined]
    assert kiosk.admitted() == set()


def test_embeddings_and_signed_payload_are_encrypted_at_rest_and_erased_on_delete(
        tmp_path: Path, kiosk: Kiosk, site: Site) -> None:
    payload = site.enrollment("ann", kiosk.now_ms() - 5, seed=4)
    kiosk.receive(payload)
    raw = emb(4).astype("<f4").tobytes()
    disk = b"".join(p.read_bytes() for p in tmp_path.glob("kiosk.db*"))
    assert raw[:64] not in disk
    assert json.loads(payload)["embeddings"][0][:40].encode() not in disk
    blob = kiosk.store._db.execute("SELECT signed_ct FROM people").fetchone()[0]
    assert blob[:32] in disk
    assert kiosk.receive(site.tombstone("ann", kiosk.now_ms())).erased  # type: ignore[attr-defined]
    disk = b"".join(p.read_bytes() for p in tmp_path.glob("kiosk.db*"))
    assert blob[:32] not in disk


def test_validity_window_comes_from_the_signed_record_and_needs_a_synchronised_clock(kiosk: Kiosk, site: Site) -> None:
    t = kiosk.wall()
    kiosk.receive(site.enrollment("con", kiosk.now_ms(), valid_from=t - 10, valid_until=t + 1000))
    kiosk.receive(site.enrollment("off", kiosk.now_ms(), seed=2, enabled=False))
    kiosk.receive(site.enrollment("staff", kiosk.now_ms(), seed=3))
    assert kiosk.store.is_valid("con") and not kiosk.store.is_valid("off") and not kiosk.store.is_valid("nobody")
    kiosk.synced = False
    kiosk.wall.advance(1)
    assert not kiosk.store.is_valid("con")  # a window without a known clock fails closed
    assert kiosk.store.is_valid("staff")  # no window: no date needed
    kiosk.synced = True
    kiosk.wall.advance(1000)
    assert not kiosk.store.is_valid("con")


def _edit(path: Path, sql: str, *args: object) -> None:
    db = sqlite3.connect(path)
    db.execute(sql, args)
    db.commit()
    db.close()


def _reopen(k: Kiosk, path: Path, key: bytes, site: Site) -> Kiosk:
    k.store.close()
    return Kiosk(site, path, key, events=k.events)


@pytest.mark.parametrize(("pid", "column", "value"), [
    ("dis", "enabled", 1), ("exp", "valid_until", 4_000_000_000.0), ("exp", "valid_from", None),
    ("exp", "valid_until", None), ("dis", "name", "Mallory"), ("dis", "revision", 2**60)])
def test_editing_a_clear_column_admits_nobody_and_quarantines_the_row(
        tmp_path: Path, key: bytes, kiosk: Kiosk, site: Site, pid: str, column: str, value: object) -> None:
    t = kiosk.wall()
    kiosk.receive(site.enrollment("dis", kiosk.now_ms(), enabled=False))
    kiosk.receive(site.enrollment("exp", kiosk.now_ms(), seed=2, valid_from=t - 100, valid_until=t - 10))
    kiosk.receive(site.enrollment("ok", kiosk.now_ms(), seed=3))
    assert not kiosk.store.is_valid("dis") and not kiosk.store.is_valid("exp")
    _edit(tmp_path / "kiosk.db", f"UPDATE people SET {column} = ? WHERE id = ?", value, pid)
    again = _reopen(kiosk, tmp_path / "kiosk.db", key, site)
    assert not again.store.is_valid("dis") and not again.store.is_valid("exp") and again.store.is_valid("ok")
    assert pid not in again.admitted()
    reason = "undecryptable" if column == "revision" else "edited"  # the revision is bound into the ciphertext
    assert again.store.quarantined == {pid: reason}
    assert ("store_quarantine", {"person": pid, "reason": reason}) in again.events
    assert again.store.store_health()["quarantined"] == {pid: reason}


def test_re_encrypting_an_edited_payload_with_the_store_key_still_admits_nobody(
        tmp_path: Path, key: bytes, kiosk: Kiosk, site: Site) -> None:
    kiosk.receive(site.enrollment("dis", kiosk.now_ms(), enabled=False))
    nonce, blob, rev = kiosk.store._db.execute("SELECT signed_nonce, signed_ct, revision FROM people").fetchone()
    aad = f"signed\x00dis\x00{rev}".encode()
    body = json.loads(AESGCM(key).decrypt(nonce, blob, aad))
    body["enabled"] = True  # an attacker with the SD card has the store key too
    forged = AESGCM(key).encrypt(nonce, json.dumps(body).encode(), aad)
    _edit(tmp_path / "kiosk.db", "UPDATE people SET signed_ct = ?, enabled = 1", forged)
    again = _reopen(kiosk, tmp_path / "kiosk.db", key, site)
    assert again.admitted() == set() and not again.store.is_valid("dis")
    assert again.store.quarantined == {"dis": "bad_signature"}


def test_a_corrupted_row_is_quarantined_and_the_others_still_load(
        tmp_path: Path, key: bytes, kiosk: Kiosk, site: Site) -> None:
    kiosk.receive(site.enrollment("ann", kiosk.now_ms(), seed=1))
    kiosk.receive(site.enrollment("bob", kiosk.now_ms(), seed=2))
    blob = kiosk.store._db.execute("SELECT signed_ct FROM people WHERE id = 'bob'").fetchone()[0]
    _edit(tmp_path / "kiosk.db", "UPDATE people SET signed_ct = ? WHERE id = 'bob'", bytes([blob[0] ^ 1]) + blob[1:])
    again = _reopen(kiosk, tmp_path / "kiosk.db", key, site)
    assert again.admitted() == {"ann"}
    assert again.store.quarantined == {"bob": "undecryptable"}
    assert ("store_quarantine", {"person": "bob", "reason": "undecryptable"}) in again.events
    health = again.store.store_health()
    assert not health["ok"] and health["admitted"] == 1
    other = Kiosk(site, tmp_path / "kiosk.db", key)  # another process writes: the running store reloads
    other.receive(site.enrollment("cid", again.now_ms(), seed=3))
    again.wall.advance(2)
    assert again.admitted() == {"ann", "cid"}
    assert sum(kind == "store_quarantine" for kind, _ in again.events) == 1  # reported once, not at every load
    # the retained record from the broker repairs it, at the same revision
    rev = again.store.revision("bob")
    assert again.receive(site.enrollment("bob", rev, seed=2)).applied  # type: ignore[arg-type, attr-defined]
    assert again.admitted() == {"ann", "bob", "cid"} and again.store.quarantined == {}


def test_a_store_opened_with_the_wrong_key_starts_and_uses_nothing(
        tmp_path: Path, key: bytes, kiosk: Kiosk, site: Site) -> None:
    kiosk.receive(site.enrollment("ann", kiosk.now_ms()))
    kiosk.store.close()
    other = Kiosk(site, tmp_path / "kiosk.db", os.urandom(32))
    assert other.admitted() == set()
    assert other.store.quarantined == {"ann": "undecryptable"}


def test_a_store_without_trust_admits_nobody(tmp_path: Path, key: bytes, kiosk: Kiosk, site: Site) -> None:
    kiosk.receive(site.enrollment("ann", kiosk.now_ms()))
    kiosk.store.close()
    bare = Store(tmp_path / "kiosk.db", key, FP)
    assert len(bare.gallery()) == 0 and not bare.is_valid("ann")
    assert bare.store_health()["set_aside"] == {"no_trust": 1}


def test_key_list_and_snapshot_survive_a_restart_offline(tmp_path: Path, key: bytes, kiosk: Kiosk, site: Site) -> None:
    now = kiosk.now_ms()
    kiosk.receive(site.enrollment("ann", now - 10))
    kiosk.snapshot(site.snapshot({"ann": (now - 10, False), "bob": (now - 5, True)}, now))
    again = _reopen(kiosk, tmp_path / "kiosk.db", key, site)
    assert again.admitted() == {"ann"}
    assert again.trust.admits("bob", now - 100) == "deleted_in_snapshot"
    assert again.trust.status()["key_list_issued_at_ms"] is not None


V1_SCHEMA = """
CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT NOT NULL, enabled INTEGER NOT NULL, valid_from REAL,
    valid_until REAL, revision INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, model_fp TEXT,
    n_embeddings INTEGER NOT NULL DEFAULT 0, nonce BLOB, ciphertext BLOB, updated_at REAL NOT NULL);
"""


def _write_v1_store(path: Path, key: bytes, rows: list[tuple[str, int, bool]]) -> None:
    """A store exactly as the previous version wrote it: clear columns, embeddings encrypted, no signature."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(V1_SCHEMA)
    for i, (pid, rev, deleted) in enumerate(rows):
        if deleted:
            db.execute("INSERT INTO people (id, name, enabled, revision, deleted, n_embeddings, updated_at) "
                       "VALUES (?, '', 0, ?, 1, 0, 0)", (pid, rev))
            continue
        e = emb(i)
        nonce = os.urandom(12)
        blob = AESGCM(key).encrypt(nonce, e.astype("<f4").tobytes(), f"{pid}\x00{rev}\x00{FP}".encode())
        db.execute("INSERT INTO people VALUES (?, ?, 1, NULL, NULL, ?, 0, ?, ?, ?, ?, 0)",
                   (pid, pid.title(), rev, FP, len(e), nonce, blob))
    db.commit()
    db.close()


def test_a_store_written_by_the_previous_version_migrates(tmp_path: Path, key: bytes, site: Site) -> None:
    t_ms = 1_799_999_000_000
    _write_v1_store(tmp_path / "kiosk.db", key, [("ann", t_ms, False), ("bob", t_ms + 1, True)])
    k = Kiosk(site, tmp_path / "kiosk.db", key)
    k.trust.on_key_list(site.key_list(k.now_ms()))
    people = {p["id"]: p for p in k.store.people()}
    assert people["ann"]["status"] == "inactive:unsigned" and people["bob"]["deleted"]
    assert k.admitted() == set()  # an unsigned row is never used
    assert k.store.store_health()["set_aside"] == {"unsigned": 1}
    # the retained signed record (same revision) replaces it; the old tombstone still blocks bob's past
    assert k.receive(site.enrollment("ann", t_ms, seed=0)).applied  # type: ignore[attr-defined]
    assert not k.receive(site.enrollment("bob", t_ms)).applied  # type: ignore[attr-defined]
    assert k.admitted() == {"ann"}
    assert k.store._db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_an_erasure_is_reported_only_after_the_checkpoint_succeeds(
        tmp_path: Path, kiosk: Kiosk, site: Site) -> None:
    kiosk.receive(site.enrollment("ann", kiosk.now_ms() - 10))
    reader = sqlite3.connect(tmp_path / "kiosk.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM people").fetchone()  # holds a read snapshot of the WAL
    r = kiosk.receive(site.tombstone("ann", kiosk.now_ms()))
    assert r.applied and not r.erased  # type: ignore[attr-defined]
    assert len(kiosk.sleeps) == 4  # retried with back-off before giving up
    assert kiosk.events[-1] == ("erase_incomplete", {"people": ["ann"],
                                                      "detail": "a reader holds the WAL; retried later"})
    assert kiosk.store.store_health()["pending_erasure"] == ["ann"]
    reader.execute("COMMIT")
    reader.close()
    assert kiosk.store.retry_erasure()
    assert kiosk.store.store_health()["pending_erasure"] == []


def test_the_running_store_sees_a_change_made_by_another_process(tmp_path: Path, key: bytes, kiosk: Kiosk,
                                                                site: Site) -> None:
    kiosk.receive(site.enrollment("ann", kiosk.now_ms()))
    assert kiosk.admitted() == {"ann"}
    token = kiosk.store.change_token()
    other = Kiosk(site, tmp_path / "kiosk.db", key)  # a local `kiosk enroll` in another process
    assert other.receive(site.enrollment("bob", kiosk.now_ms(), seed=2)).applied  # type: ignore[attr-defined]
    assert kiosk.store.changed_since(token)
    kiosk.wall.advance(2)  # the service polls at most once a second
    assert kiosk.admitted() == {"ann", "bob"}
    token = kiosk.store.change_token()
    assert not kiosk.store.changed_since(token)


def test_wrong_embedding_shape_is_refused(kiosk: Kiosk, site: Site) -> None:
    body = json.loads(site.enrollment("ann", kiosk.now_ms()))
    body["embeddings"] = [base64.b64encode(np.ones(64, "<f4").tobytes()).decode()]
    body.pop("signature")
    body.pop("key_id")
    with pytest.raises(Exception, match="bad_embedding"):
        kiosk.receive(site.admin.sign(body))


def test_an_unsigned_tombstone_erases(kiosk: Kiosk, site: Site) -> None:
    kiosk.receive(site.enrollment("ann", kiosk.now_ms() - 10))
    assert kiosk.store.apply(Tombstone("ann", kiosk.now_ms())).erased
    assert kiosk.admitted() == set()


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


def test_the_store_file_is_created_private(tmp_path: Path, key: bytes) -> None:
    Store(tmp_path / "new.db", key, FP).close()
    assert (tmp_path / "new.db").stat().st_mode & 0o077 == 0


def test_a_row_rewritten_on_disk_while_running_is_verified_again_and_quarantined(
        tmp_path: Path, kiosk: Kiosk, site: Site) -> None:
    kiosk.receive(site.enrollment("ann", kiosk.now_ms(), seed=1))
    kiosk.receive(site.enrollment("bob", kiosk.now_ms(), seed=2, enabled=False))
    assert kiosk.admitted() == {"ann", "bob"}
    blob = kiosk.store._db.execute("SELECT signed_ct FROM people WHERE id = 'bob'").fetchone()[0]
    _edit(tmp_path / "kiosk.db", "UPDATE people SET signed_nonce = ?, signed_ct = ?, enabled = 1 WHERE id = 'bob'",
          os.urandom(12), blob)
    kiosk.wall.advance(2)
    assert kiosk.admitted() == {"ann"} and not kiosk.store.is_valid("bob")
    assert kiosk.store.quarantined == {"bob": "undecryptable"}
    assert ("store_quarantine", {"person": "bob", "reason": "undecryptable"}) in kiosk.events
