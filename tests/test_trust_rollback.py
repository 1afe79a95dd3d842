"""A kiosk that knows nothing yet (new, or a reset store) cannot be handed the site's past, and a trust
document is held only once it is stored.

Someone who can write retained topics on the broker can put back an old snapshot, an old key list or a
deleted person's old enrollment. A kiosk with history refuses them as older than what it holds; these
tests are about the kiosk without history and about a store write that fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.mqtt.core import Emit, SyncCore
from kiosk.mqtt.protocol import Signer
from kiosk.mqtt.trust import TrustSettings
from kiosk.trustwatch import TrustWatch
from tests.site import DAY_MS, Kiosk, Site
from tests.trust_kiosk import TOPICS, Deleted, acks, fail_first_save, fresh


def test_an_expired_snapshot_still_deletes_but_does_not_let_a_new_kiosk_admit(tmp_path: Path) -> None:
    site = Site()
    k, core = fresh(tmp_path, site)
    h = Deleted(site, k.now_ms())
    core.handle(TOPICS.keys, h.keys, 0.0)
    # the broker's current snapshot and ann's tombstone were replaced: an old, expired snapshot that lists ann
    # enrolled, and her old record
    assert acks(core.handle(TOPICS.snapshot, h.old, 0.0))[0]["status"] == "applied"
    assert k.trust.expired() and not k.trust.status()["snapshot_current_seen"]
    actions = core.handle(TOPICS.enrollment("ann"), h.ann, 0.0)
    assert acks(actions) == [{"person_id": "ann", "device": "door1", "status": "held", "reason": "no_snapshot",
                              "revision": h.enrolled}]
    assert any(isinstance(a, Emit) and a.fields.get("status") == "held" for a in actions)
    core.handle(TOPICS.enrollment("bob"), h.bob, 0.0)
    assert k.admitted() == set() and not k.store.is_valid("ann") and not k.store.is_valid("bob")
    assert core.stats()["held"] == 2 and core.stats()["refused"] == 0
    again = acks(core.handle(TOPICS.enrollment("ann"), h.ann, 0.5))  # the retained record after a reconnection
    assert again[0]["status"] == "held" and k.admitted() == set()
    # the current snapshot (a site re-signs it every 12 h) arrives: bob is admitted, ann erased
    core.handle(TOPICS.snapshot, h.current, 1.0)
    assert k.admitted() == {"bob"} and k.store.is_valid("bob") and not k.store.is_valid("ann")
    assert k.store.people()[0]["id"] == "ann" and k.store.people()[0]["deleted"]
    assert not k.trust.expired() and k.trust.status()["snapshot_current_seen"]


def test_an_expired_snapshot_applies_its_deletions_on_any_kiosk(tmp_path: Path) -> None:
    site = Site()
    for require in (True, False):
        k = Kiosk(site, tmp_path / f"k{require}.db", os.urandom(32), require_snapshot=require)
        core = SyncCore(TOPICS, k.store, k.trust)
        now = k.now_ms()
        core.handle(TOPICS.keys, site.key_list(now - 40 * DAY_MS), 0.0)
        core.handle(TOPICS.snapshot, site.snapshot({}, now - 40 * DAY_MS + 1, expires_ms=now + DAY_MS), 0.0)
        core.handle(TOPICS.enrollment("ann"), site.enrollment("ann", now - 30 * DAY_MS), 0.0)
        assert k.admitted() == {"ann"}
        # a newer snapshot deleting ann, which expired before it reached this kiosk (an offline week)
        late = site.snapshot({"ann": (now - 20 * DAY_MS, True)}, now - 10 * DAY_MS, expires_ms=now - 7 * DAY_MS)
        assert acks(core.handle(TOPICS.snapshot, late, 1.0))[0]["status"] == "applied"
        assert k.admitted() == set() and k.trust.expired()
        replay = core.handle(TOPICS.enrollment("ann"), site.enrollment("ann", now - 30 * DAY_MS), 2.0)
        assert acks(replay)[0]["status"] in ("refused", "current") and k.admitted() == set()


def test_a_snapshot_that_came_before_the_clock_was_synchronised_counts_once_it_is(tmp_path: Path) -> None:
    """A Raspberry Pi has no real-time clock: at its first boot the snapshot may come before NTP."""
    site = Site()
    for how in ("reconnection", "timer", "restart"):
        key = os.urandom(32)
        k = Kiosk(site, tmp_path / f"{how}.db", key, synced=False, require_snapshot=True)
        core = SyncCore(TOPICS, k.store, k.trust)
        h = Deleted(site, k.now_ms())
        core.handle(TOPICS.keys, h.keys, 0.0)
        assert acks(core.handle(TOPICS.snapshot, h.current, 0.0))[0]["status"] == "applied"
        core.handle(TOPICS.enrollment("bob"), h.bob, 0.0)
        assert k.admitted() == set() and k.trust.expired()  # fail closed while the clock is unknown
        k.synced = True
        k.wall.advance(1)
        if how == "reconnection":  # the retained snapshot again
            core.handle(TOPICS.snapshot, h.current, 1.0)
        elif how == "timer":  # the trust watch's periodic check (every 30 s in the service)
            TrustWatch(k.trust, k.store, lambda kind, fields: None).check()
        else:
            k.store.close()
            k = Kiosk(site, tmp_path / f"{how}.db", key, require_snapshot=True)
            TrustWatch(k.trust, k.store, lambda kind, fields: None).check()
        assert k.admitted() == {"bob"} and k.trust.status()["snapshot_current_seen"], how


def _kept_before_the_rule(site: Site, path: Path, key: bytes, expires_in_days: float) -> None:
    """A store as kiosks kept it before require_snapshot: a snapshot (expiring ``expires_in_days`` from now)
    and an admitted record, no record of freshness."""
    k = Kiosk(site, path, key, require_snapshot=False)
    core = SyncCore(TOPICS, k.store, k.trust)
    now = k.now_ms()
    core.handle(TOPICS.keys, site.key_list(now - 40 * DAY_MS), 0.0)
    core.handle(TOPICS.snapshot, site.snapshot({}, now - 4 * DAY_MS, expires_ms=now + int(expires_in_days * DAY_MS)),
                0.0)
    core.handle(TOPICS.enrollment("bob"), site.enrollment("bob", now - 25 * DAY_MS), 0.0)
    k.store._db.execute("DELETE FROM trust_state WHERE name = 'snapshot_fresh'")
    k.store.close()


def test_an_upgraded_kiosk_admits_again_once_its_snapshot_is_current(tmp_path: Path) -> None:
    """A store kept before the rule has no record of freshness: the snapshot it holds counts as soon as the
    trust watch sees it current (the service checks at start); one that expired waits for the next."""
    site = Site()
    key = os.urandom(32)
    _kept_before_the_rule(site, tmp_path / "k.db", key, expires_in_days=2)
    again = Kiosk(site, tmp_path / "k.db", key, require_snapshot=True)
    assert again.admitted() == set()
    TrustWatch(again.trust, again.store, lambda kind, fields: None).check()
    assert again.admitted() == {"bob"} and again.trust.status()["snapshot_current_seen"]
    _kept_before_the_rule(site, tmp_path / "stale.db", key, expires_in_days=-1)
    stale = Kiosk(site, tmp_path / "stale.db", key, require_snapshot=True)
    TrustWatch(stale.trust, stale.store, lambda kind, fields: None).check()
    assert stale.admitted() == set() and stale.trust.expired()  # until the administrators' next snapshot
    core = SyncCore(TOPICS, stale.store, stale.trust)
    core.handle(TOPICS.snapshot, site.snapshot({}, stale.now_ms() - 1000), 1.0)
    assert stale.admitted() == {"bob"}


def test_a_snapshot_whose_signer_was_revoked_meanwhile_is_not_counted_as_current(tmp_path: Path) -> None:
    site = Site(admins=2)
    a, b = site.admins
    k, core = fresh(tmp_path, site, synced=False)
    now = k.now_ms()
    core.handle(TOPICS.keys, site.key_list(now - 10 * DAY_MS), 0.0)
    core.handle(TOPICS.snapshot, site.snapshot({}, now - 1000, signer=a), 0.0)  # taken while the clock is unknown
    core.handle(TOPICS.enrollment("ann"), site.enrollment("ann", now - 5000, signer=b), 0.0)
    core.handle(TOPICS.keys, site.key_list(now - 500, admins=[b], revoked={a.key_id}), 0.0)  # a was stolen
    k.synced = True
    k.wall.advance(1)
    assert not k.trust.refresh() and k.admitted() == set()
    core.handle(TOPICS.snapshot, site.snapshot({}, k.now_ms() - 100, signer=b), 1.0)  # b's current one
    assert k.admitted() == {"ann"}


def test_a_snapshot_from_a_revoked_key_no_longer_holds_back_a_current_one(tmp_path: Path) -> None:
    """A stolen key's snapshot dated ahead, taken while the clock was unknown: once the key is revoked it no
    longer verifies, and the next snapshot a current key signs is not refused as older than it."""
    site = Site(admins=2)
    a, b = site.admins
    k, core = fresh(tmp_path, site, synced=False)
    now = k.now_ms()
    core.handle(TOPICS.keys, site.key_list(now - 10 * DAY_MS), 0.0)
    core.handle(TOPICS.snapshot, site.snapshot({"ann": (now - 9000, False)}, now + 20 * DAY_MS, signer=a), 0.0)
    core.handle(TOPICS.enrollment("ann"), site.enrollment("ann", now - 9000, signer=b), 0.0)
    core.handle(TOPICS.keys, site.key_list(now - 500, admins=[b], revoked={a.key_id}), 0.0)
    assert not k.trust.status()["snapshot_current_seen"] and k.trust.expired()
    k.synced = True
    k.wall.advance(1)
    deleted = site.snapshot({"ann": (now - 1000, True)}, k.now_ms() - 100, signer=b)
    assert acks(core.handle(TOPICS.snapshot, deleted, 1.0))[0]["status"] == "applied"
    assert k.admitted() == set() and not k.store.is_valid("ann")


def test_the_trust_watch_goes_on_when_the_store_cannot_record_a_current_snapshot(tmp_path: Path) -> None:
    site = Site()
    k, core = fresh(tmp_path, site, synced=False)
    h = Deleted(site, k.now_ms())
    core.handle(TOPICS.keys, h.keys, 0.0)
    core.handle(TOPICS.snapshot, h.current, 0.0)
    k.synced = True
    k.wall.advance(1)
    fail_first_save(k)
    events: list[str] = []
    watch = TrustWatch(k.trust, k.store, lambda kind, fields: events.append(kind))
    watch.check()  # the store refuses: logged, and the alarm is raised all the same
    assert events == ["snapshot_expired"] and not k.trust.status()["snapshot_current_seen"]
    watch.check()  # the next check records it
    assert events == ["snapshot_expired", "snapshot_valid"] and k.trust.status()["snapshot_current_seen"]


def _two_admins(tmp_path: Path, key: bytes, keys_days_ago: int) -> tuple[Site, Kiosk, SyncCore, int]:
    """A site of two administrators and a kiosk that requires a snapshot, holding their key list."""
    site = Site(admins=2)
    k = Kiosk(site, tmp_path / "k.db", key, require_snapshot=True)
    core = SyncCore(TOPICS, k.store, k.trust)
    now = k.now_ms()
    core.handle(TOPICS.keys, site.key_list(now - keys_days_ago * DAY_MS), 0.0)
    return site, k, core, now


def test_a_restart_during_a_key_rotation_keeps_admitting_offline(tmp_path: Path) -> None:
    key = os.urandom(32)
    site, k, core, now = _two_admins(tmp_path, key, 10)
    a, b = site.admins
    core.handle(TOPICS.snapshot, site.snapshot({}, now - 1000, signer=a), 0.0)
    core.handle(TOPICS.enrollment("ann"), site.enrollment("ann", now - 5000, signer=b), 0.0)
    core.handle(TOPICS.keys, site.key_list(now - 500, admins=[b], revoked={a.key_id}), 0.0)  # a rotated out
    assert k.admitted() == {"ann"}
    k.store.close()
    again = Kiosk(site, tmp_path / "k.db", key, require_snapshot=True)  # its snapshot's signer is gone
    assert not again.trust.status()["snapshot_missing"] and again.admitted() == {"ann"}
    assert again.trust.expired()  # with the alarm on until the next snapshot


def test_a_rotation_opens_no_way_back_to_an_older_snapshot(tmp_path: Path) -> None:
    """The current snapshot (signed by a) refuses ann's older record; a is rotated out; someone puts back an
    older snapshot b signed: it is still older than the one held, before and after a restart."""
    key = os.urandom(32)
    site, k, core, now = _two_admins(tmp_path, key, 30)
    a, b = site.admins
    old_b = site.snapshot({"ann": (now - 25 * DAY_MS, False)}, now - 20 * DAY_MS, expires_ms=now + DAY_MS, signer=b)
    core.handle(TOPICS.snapshot, site.snapshot({"ann": (now - 2 * DAY_MS, False)}, now - DAY_MS, signer=a), 0.0)
    ann = site.enrollment("ann", now - 25 * DAY_MS, signer=b)
    core.handle(TOPICS.enrollment("ann"), ann, 0.0)
    assert k.admitted() == set()  # older than the snapshot says (the newer record withheld): refused
    core.handle(TOPICS.keys, site.key_list(now - 500, admins=[b], revoked={a.key_id}), 0.0)
    [ack] = acks(core.handle(TOPICS.snapshot, old_b, 1.0))
    assert ack["status"] == "refused" and ack["reason"] == "stale_snapshot" and k.admitted() == set()
    assert k.trust.expired()  # the snapshot held says nothing current any more
    k.store.close()
    again = Kiosk(site, tmp_path / "k.db", key, require_snapshot=True)
    core = SyncCore(TOPICS, again.store, again.trust)
    [ack] = acks(core.handle(TOPICS.snapshot, old_b, 2.0))
    assert ack["reason"] == "stale_snapshot"
    assert acks(core.handle(TOPICS.enrollment("ann"), ann, 2.0))[0]["reason"] == "older_than_snapshot"
    assert again.admitted() == set()  # its refusals held across the restart
    newer = site.snapshot({"ann": (now - 25 * DAY_MS, False)}, again.now_ms() - 100, signer=b)  # b re-signs
    core.handle(TOPICS.snapshot, newer, 3.0)
    core.handle(TOPICS.enrollment("ann"), ann, 3.0)
    assert again.admitted() == {"ann"} and not again.trust.expired()


def test_a_snapshot_dated_ahead_that_gives_way_keeps_its_refusals(tmp_path: Path) -> None:
    """a's clock runs two days fast: its snapshot, taken before the clock was synchronised, refuses bob's older
    record. a is rotated out, so the snapshot gives way to one b signs; b's older snapshot put back on the
    broker is taken, but does not undo what a's said, also after a restart."""
    key = os.urandom(32)
    site, k, core, now = _two_admins(tmp_path, key, 30)
    a, b = site.admins
    r1 = now - 20 * DAY_MS
    old_b = site.snapshot({"bob": (r1, False)}, now - 10 * DAY_MS, expires_ms=now + 3 * DAY_MS, signer=b)
    core.handle(TOPICS.snapshot, old_b, 0.0)
    bob_r1 = site.enrollment("bob", r1, signer=b)
    core.handle(TOPICS.enrollment("bob"), bob_r1, 0.0)
    assert k.admitted() == {"bob"}
    k.store.close()
    k = Kiosk(site, tmp_path / "k.db", key, synced=False, require_snapshot=True)  # a reboot, before NTP
    core = SyncCore(TOPICS, k.store, k.trust)
    r2 = now + 2 * DAY_MS  # bob re-enrolled by a (that record withheld)
    core.handle(TOPICS.snapshot, site.snapshot({"bob": (r2, False)}, r2 + 1, signer=a), 0.0)
    assert k.admitted() == set()
    k.synced = True
    k.wall.advance(60)
    core.handle(TOPICS.keys, site.key_list(k.now_ms() - 1000, admins=[b], revoked={a.key_id}), 1.0)
    assert acks(core.handle(TOPICS.snapshot, old_b, 2.0))[0]["status"] == "applied"
    [ack] = acks(core.handle(TOPICS.enrollment("bob"), bob_r1, 2.0))
    assert ack["reason"] == "older_than_snapshot" and k.admitted() == set()
    assert k.trust.status()["snapshot_refusals_kept"] == 1
    k.store.close()
    again = Kiosk(site, tmp_path / "k.db", key, require_snapshot=True)
    assert again.trust.admits("bob", r1) == "older_than_snapshot" and again.admitted() == set()
    # bob's revision is kept up to a day ahead of the clock when a's snapshot gave way: a record of bob after
    # that is admitted (here, a's own, once it is no longer ahead of the clock, signed by a's new key)
    again.wall.advance(DAY_MS / 1000)
    a_new = Signer(Ed25519PrivateKey.generate())
    site.admins = [a_new, b]
    core = SyncCore(TOPICS, again.store, again.trust)
    core.handle(TOPICS.keys, site.key_list(again.now_ms() - 1000), 3.0)
    assert acks(core.handle(TOPICS.enrollment("bob"), site.enrollment("bob", r2, signer=a_new), 3.0))[0]["status"] \
        == "applied"
    assert again.admitted() == {"bob"}


def test_a_snapshot_dated_ahead_by_a_current_key_gives_way_once_the_clock_is_known(tmp_path: Path) -> None:
    """A new kiosk's first boot, before NTP: it takes a snapshot a dated ten days ahead (a's clock is fast).
    Once the clock is synchronised that snapshot counts as nothing current (the alarm is on, nobody admitted)
    and does not hold back b's correct one until the wall clock reaches its date."""
    site = Site(admins=2)
    a, b = site.admins
    k, core = fresh(tmp_path, site, synced=False)
    now = k.now_ms()
    core.handle(TOPICS.keys, site.key_list(now - 30 * DAY_MS), 0.0)
    core.handle(TOPICS.enrollment("bob"), site.enrollment("bob", now - 20 * DAY_MS, signer=b), 0.0)
    core.handle(TOPICS.enrollment("cy"), site.enrollment("cy", now - 20 * DAY_MS, seed=3, signer=b), 0.0)
    ahead = site.snapshot({"bob": (now - 20 * DAY_MS, False), "cy": (now + 10 * DAY_MS, True)}, now + 10 * DAY_MS,
                          signer=a)
    assert acks(core.handle(TOPICS.snapshot, ahead, 0.0))[0]["status"] == "applied"
    k.synced = True
    k.wall.advance(60)
    assert not k.trust.refresh() and k.trust.expired() and k.admitted() == set()
    good = site.snapshot({"bob": (now - 20 * DAY_MS, False)}, k.now_ms() - 1000, signer=b)  # cy's deletion missing
    [ack] = acks(core.handle(TOPICS.snapshot, good, 1.0))
    assert ack["status"] == "applied" and k.admitted() == {"bob"} and not k.trust.expired()
    # cy's deletion is kept, but only up to a day ahead of the clock when a's snapshot gave way
    cap = now + 60_000 + DAY_MS
    k.wall.advance(60)  # (cap + 1 is not ahead of the clock any more)
    assert k.trust.admits("cy", cap) == "deleted_in_snapshot" and k.trust.admits("cy", cap + 1) is None
    k.store.close()
    again = Kiosk(site, tmp_path / "k.db", os.urandom(32), require_snapshot=True)  # trust state kept, and so is that
    again.wall.advance(120)
    assert again.trust.admits("cy", cap) == "deleted_in_snapshot" and again.trust.admits("bob", now) is None


def test_held_records_survive_a_restart_and_wait_for_the_snapshot(tmp_path: Path) -> None:
    site = Site()
    key = os.urandom(32)
    k = Kiosk(site, tmp_path / "k2.db", key, require_snapshot=True)
    core = SyncCore(TOPICS, k.store, k.trust)
    h = Deleted(site, k.now_ms())
    core.handle(TOPICS.keys, h.keys, 0.0)
    core.handle(TOPICS.enrollment("bob"), h.bob, 0.0)
    k.store.close()
    again = Kiosk(site, tmp_path / "k2.db", key, require_snapshot=True)
    assert again.admitted() == set() and again.store.store_health()["set_aside"] == {"no_snapshot": 1}
    SyncCore(TOPICS, again.store, again.trust).handle(TOPICS.snapshot, h.current, 0.0)
    assert again.admitted() == {"bob"}


def test_without_the_requirement_a_kiosk_admits_before_any_snapshot(tmp_path: Path) -> None:
    site = Site()
    k = Kiosk(site, tmp_path / "k.db", os.urandom(32), require_snapshot=False)
    core = SyncCore(TOPICS, k.store, k.trust)
    h = Deleted(site, k.now_ms())
    core.handle(TOPICS.keys, h.keys, 0.0)
    assert acks(core.handle(TOPICS.enrollment("bob"), h.bob, 0.0))[0]["status"] == "applied"
    assert k.admitted() == {"bob"}
    assert TrustSettings().require_snapshot  # the service's default is the requirement


def test_the_retained_tombstone_of_a_person_the_snapshot_deleted_is_current_not_refused(tmp_path: Path) -> None:
    site = Site()
    k, core = fresh(tmp_path, site)
    h = Deleted(site, k.now_ms())
    core.handle(TOPICS.keys, h.keys, 0.0)
    core.handle(TOPICS.snapshot, h.current, 0.0)  # erases ann at the snapshot's revision (= her tombstone's)
    for reconnection in range(3):  # the retained tombstone again after every reconnection
        [ack] = acks(core.handle(TOPICS.enrollment("ann"), h.tombstone, float(reconnection)))
        assert ack["status"] == "current" and ack["revision"] == h.deleted
    assert core.stats()["refused"] == 0 and core.stats()["suppressed"] == 0
    # and a deletion the kiosk missed is still applied past a snapshot that lists the person as enrolled
    later = site.tombstone("bob", k.now_ms() - 1000)
    assert acks(core.handle(TOPICS.enrollment("bob"), later, 5.0))[0]["status"] == "deleted"
    assert k.admitted() == set()


def test_turning_the_snapshot_requirement_off_is_said_at_start(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    Kiosk(Site(), tmp_path / "off.db", os.urandom(32), require_snapshot=False)
    assert any("trust.require_snapshot = false" in r.getMessage() for r in caplog.records)
    caplog.clear()
    Kiosk(Site(), tmp_path / "on.db", os.urandom(32), require_snapshot=True)
    assert not any("require_snapshot" in r.getMessage() for r in caplog.records)
