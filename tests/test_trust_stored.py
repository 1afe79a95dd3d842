"""Trust documents a kiosk holds are stored first: the installed key list, a store write that fails, and the
size a snapshot or key list may have."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.errors import ConfigError
from kiosk.mqtt.core import SyncCore, SyncSettings
from kiosk.mqtt.protocol import ProtocolError, Signer
from kiosk.mqtt.revocations import Revocations
from kiosk.mqtt.trust import REVOKED, SiteTrust, TrustSettings
from tests.site import DAY_MS, SITE, Kiosk, Site
from tests.test_trust_before_ntp import HOUR_MS, _ntp, _reboot, bert_revoked_before_ntp
from tests.trust_kiosk import TOPICS, acks, fail_first_save


def test_a_new_kiosk_with_the_installed_key_list_refuses_an_older_one(tmp_path: Path) -> None:
    site = Site()
    lost = Signer(Ed25519PrivateKey.generate())  # a lost laptop's key, revoked by the second list
    now = int(Kiosk(site, tmp_path / "clock.db", os.urandom(32)).wall() * 1000)
    first = site.key_list(now - 10 * DAY_MS, admins=[site.admin, lost])
    second = site.key_list(now - 5 * DAY_MS, admins=[site.admin], revoked={lost.key_id})
    k = Kiosk(site, tmp_path / "pinned.db", os.urandom(32), require_snapshot=True)
    trust = SiteTrust(k.store, SITE, k.clock, root_key=site.root.private.public_key(), pinned_key_list=second)
    core = SyncCore(TOPICS, k.store, trust)
    [ack] = acks(core.handle(TOPICS.keys, first, 0.0))  # put back on the broker by whoever holds the lost key
    assert ack["status"] == "refused" and ack["reason"] == "stale_key_list"
    assert lost.key_id in trust.revoked() and lost.key_id not in set(trust.keys())
    forged = site.enrollment("mallory", now - 1000, signer=lost)
    assert acks(core.handle(TOPICS.enrollment("mallory"), forged, 0.0))[0]["reason"] == "revoked_key"
    assert k.admitted() == set()


def test_the_installed_key_list_gives_way_to_a_newer_one_and_must_verify(tmp_path: Path) -> None:
    site = Site()
    k = Kiosk(site, tmp_path / "k.db", os.urandom(32))
    now = k.now_ms()
    root = site.root.private.public_key()
    newer = site.key_list(now - DAY_MS)
    k.trust.on_key_list(newer)  # the store holds a list newer than the installed file
    trust = SiteTrust(k.store, SITE, k.clock, root_key=root, pinned_key_list=site.key_list(now - 2 * DAY_MS))
    assert trust.status()["key_list_issued_at_ms"] == now - DAY_MS
    with pytest.raises(ConfigError, match=r"trust\.key_list does not verify"):
        SiteTrust(k.store, SITE, k.clock, root_key=root, pinned_key_list=Site().key_list(now))
    settings = TrustSettings(key_list=tmp_path / "keys.json")
    (tmp_path / "keys.json").write_bytes(newer)
    with pytest.raises(ConfigError, match=r"trust\.root_key is not"):
        SiteTrust.from_files(k.store, SITE, settings, [])
    with pytest.raises(ConfigError, match="not readable"):
        SiteTrust.from_files(k.store, SITE, TrustSettings(root_key=tmp_path / "root.pub",
                                                          key_list=tmp_path / "missing.json"), [])


def test_a_snapshot_that_could_not_be_stored_is_not_held_and_its_next_copy_applies(tmp_path: Path) -> None:
    site = Site()
    k = Kiosk(site, tmp_path / "k.db", os.urandom(32))
    core = SyncCore(TOPICS, k.store, k.trust)
    now = k.now_ms()
    core.handle(TOPICS.keys, site.key_list(now - 100_000), 0.0)
    core.handle(TOPICS.enrollment("ann"), site.enrollment("ann", now - 90_000), 0.0)
    snap = site.snapshot({"ann": (now - 50_000, True)}, now - 40_000)
    failed = fail_first_save(k)
    [ack] = acks(core.handle(TOPICS.snapshot, snap, 0.0))
    assert failed == ["snapshot"] and ack["status"] == "refused" and ack["reason"] == "store_error"
    assert k.trust.status()["snapshot_missing"]
    core.handle(TOPICS.snapshot, snap, 100.0)  # the retained copy after a reconnection
    assert k.admitted() == set() and not k.store.is_valid("ann")


def test_a_key_list_that_could_not_be_stored_is_not_held_and_its_next_copy_applies(tmp_path: Path) -> None:
    site = Site()
    lost = Signer(Ed25519PrivateKey.generate())
    k = Kiosk(site, tmp_path / "k.db", os.urandom(32))
    core = SyncCore(TOPICS, k.store, k.trust)
    now = k.now_ms()
    core.handle(TOPICS.keys, site.key_list(now - 100_000, admins=[site.admin, lost]), 0.0)
    core.handle(TOPICS.enrollment("mallory"), site.enrollment("mallory", now - 90_000, signer=lost), 0.0)
    assert k.admitted() == {"mallory"}
    revoking = site.key_list(now - 50_000, admins=[site.admin], revoked={lost.key_id})
    fail_first_save(k)
    assert acks(core.handle(TOPICS.keys, revoking, 0.0))[0]["status"] == "refused"
    assert lost.key_id not in k.trust.revoked()
    core.handle(TOPICS.keys, revoking, 100.0)
    assert lost.key_id in k.trust.revoked() and k.admitted() == set()


def test_a_kept_list_pushed_out_stays_kept_until_its_revocations_are_stored(tmp_path: Path) -> None:
    """The kiosk took the root's list dated thirty days ahead on an earlier boot; the current one, revoking
    bert, comes before NTP and is kept. bert puts back another list of the root's fast-clock days, listing
    him and dated later than the kept one: it would take the kept place, but the revocations of the one it
    pushes out cannot be stored (a full disk). It is refused then, and the current list stays kept, across a
    restart too; its next copy takes the place, bert's revocation stored first, and a restart keeps it."""
    key, path, site, k, core, earlier_ahead = bert_revoked_before_ntp(tmp_path)
    bert = site.admins[1]
    failed = fail_first_save(k)
    assert acks(core.handle(TOPICS.keys, earlier_ahead, 2.5))[0]["reason"] == "store_error"
    assert failed == [REVOKED] and bert.key_id not in set(k.trust.keys())
    k, core = _reboot(k, key, path)
    assert bert.key_id not in set(k.trust.keys())  # the current list is still the one kept
    assert acks(core.handle(TOPICS.keys, earlier_ahead, 3.0))[0]["reason"] == "stale_key_list"  # a reconnection
    k, core = _reboot(k, key, path)
    assert bert.key_id not in set(k.trust.keys())  # its revocation stored before the list left the store
    _ntp(k)
    k.trust.refresh()
    forged = site.enrollment("mallory", k.now_ms() - 1000, signer=bert)
    assert acks(core.handle(TOPICS.enrollment("mallory"), forged, 4.0))[0]["reason"] == "revoked_key"
    assert "mallory" not in k.admitted()


def test_sync_max_snapshot_bytes_is_the_limit_for_snapshots_and_key_lists(tmp_path: Path) -> None:
    site = Site()
    k = Kiosk(site, tmp_path / "k.db", os.urandom(32))
    now = k.now_ms()
    revoked = {f"{i:016x}" for i in range(4000)}  # a long-lived site's revocations: over the old 64 KiB
    keys = site.key_list(now - 100_000, revoked=revoked)
    assert len(keys) > 64 * 1024
    core = SyncCore(TOPICS, k.store, k.trust)
    assert acks(core.handle(TOPICS.keys, keys, 0.0))[0]["status"] == "applied"
    people = {f"person-{i:08d}": (now - 10_000, False) for i in range(2000)}
    snap = site.snapshot(people, now - 5_000)
    small = SyncCore(TOPICS, k.store, k.trust, SyncSettings(max_snapshot_bytes=64 * 1024))
    assert len(snap) > 64 * 1024
    assert acks(small.handle(TOPICS.snapshot, snap, 0.0))[0]["reason"] == "oversized"
    k.trust.on_snapshot(snap, max_bytes=len(snap))  # a limit raised in the settings is the one applied
    with pytest.raises(ProtocolError, match="oversized"):
        k.trust.on_snapshot(site.snapshot(people, now - 4_000), max_bytes=64 * 1024)


def test_revocations_held_but_not_stored_are_stored_by_the_next_hold_that_requires_it(tmp_path: Path) -> None:
    """A kept revocation whose optional write failed (a full disk) is held in memory only. A later hold of the
    same revocations that must be stored (before a kept list leaves the store) stores them, rather than
    finding them already held and skipping the write: after a restart bert stays revoked."""
    key, path = os.urandom(32), tmp_path / "k.db"
    site = Site(admins=2)
    k = Kiosk(site, path, key)
    bert = site.admins[1].key_id
    kept = Revocations(SITE, {bert: k.now_ms() - HOUR_MS})
    failed = fail_first_save(k)
    assert k.trust._hold(REVOKED, kept, required=False)
    assert failed == [REVOKED] and k.store.load_state(REVOKED) is None
    assert not k.trust._hold(REVOKED, kept)  # no change to report, but stored now
    k.store.close()
    again = Kiosk(site, path, key, synced=False)
    assert bert in Revocations.decode(again.store.load_state(REVOKED), SITE).kept
