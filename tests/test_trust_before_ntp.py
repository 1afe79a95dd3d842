"""What a kiosk takes while its clock is not synchronised (a Raspberry Pi boots without a real-time clock).

Someone who can publish on the broker may put back, before NTP, a snapshot or a key list that was once
dated ahead (an administrator's or the root's fast clock): it is newer, by its date, than the one held.
Once the clock is known it gives way; nothing it replaced in the meantime may be undone by it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kiosk.mqtt.core import SyncCore
from kiosk.mqtt.revocations import RELEASE_SKEW_MS
from tests.site import DAY_MS, Kiosk, Site
from tests.trust_kiosk import TOPICS, acks, eve_enrolled

HOUR_MS = 3_600_000


def _started(tmp_path: Path, admins: int, require_snapshot: bool = False) -> tuple[
        bytes, Path, Site, Kiosk, SyncCore, int]:
    """A kiosk of a site of ``admins`` administrators, its clock synchronised: store key, path, site, kiosk,
    its sync core and the time."""
    key, path = os.urandom(32), tmp_path / "k.db"
    site = Site(admins=admins)
    k = Kiosk(site, path, key, require_snapshot=require_snapshot)
    return key, path, site, k, SyncCore(TOPICS, k.store, k.trust), k.now_ms()


def bert_revoked_before_ntp(tmp_path: Path) -> tuple[bytes, Path, Site, Kiosk, SyncCore, bytes]:
    """The root's list dated thirty days ahead taken on an earlier boot; on this one, before NTP, the current list
    (revoking bert) refused as stale and kept. Store key, path, site, kiosk, its core, and another of the
    root's fast-clock lists, dated twelve hours ahead (listing bert), not yet put back."""
    key, path, site, k, core, now = _started(tmp_path, 2)
    alice, bert = site.admins
    core.handle(TOPICS.keys, site.key_list(now - 40 * DAY_MS), 0.0)
    earlier_ahead, ahead = site.key_list(now + 12 * HOUR_MS), site.key_list(now + 30 * DAY_MS)
    k, core = _reboot(k, key, path)
    assert acks(core.handle(TOPICS.keys, ahead, 1.0))[0]["status"] == "applied"
    revoking = site.key_list(now - HOUR_MS, admins=[alice], revoked={bert.key_id})
    k, core = _reboot(k, key, path)
    assert acks(core.handle(TOPICS.keys, revoking, 2.0))[0]["reason"] == "stale_key_list"
    return key, path, site, k, core, earlier_ahead


def _reboot(k: Kiosk, key: bytes, path: Path) -> tuple[Kiosk, SyncCore]:
    """The same kiosk after a reboot, before NTP."""
    k.store.close()
    again = Kiosk(k.site, path, key, synced=False, require_snapshot=True)
    return again, SyncCore(TOPICS, again.store, again.trust)


def _ntp(k: Kiosk) -> None:
    k.synced = True
    k.wall.advance(60)


def test_a_snapshot_dated_ahead_put_back_before_ntp_keeps_the_refusals_of_the_one_it_replaced(
        tmp_path: Path) -> None:
    """carol was re-enrolled an hour ago (that record withheld): the current snapshot refuses her old one.
    Before NTP, bert's snapshot from his laptop ten days fast (carol at her old revision) replaces it; once
    the clock is known it gives way to any, an older one put back among them. carol stays refused, across a
    restart too, until a snapshot taken with the clock known says as much."""
    key, path, site, k, core, now = _started(tmp_path, 2, require_snapshot=True)
    alice, bert = site.admins
    old_rev, new_rev = now - 30 * DAY_MS, now - 2 * HOUR_MS
    core.handle(TOPICS.keys, site.key_list(now - 40 * DAY_MS), 0.0)
    old = site.snapshot({"carol": (old_rev, False)}, now - 20 * DAY_MS, expires_ms=now + DAY_MS, signer=alice)
    core.handle(TOPICS.snapshot, old, 0.0)
    carol = site.enrollment("carol", old_rev, signer=alice)
    core.handle(TOPICS.enrollment("carol"), carol, 0.0)
    ahead = site.snapshot({"carol": (old_rev, False)}, now + 3 * DAY_MS, signer=bert)
    current = site.snapshot({"carol": (new_rev, False)}, now - HOUR_MS, expires_ms=now + 2 * DAY_MS, signer=alice)
    core.handle(TOPICS.snapshot, current, 1.0)
    assert k.admitted() == set()

    k, core = _reboot(k, key, path)
    assert acks(core.handle(TOPICS.snapshot, ahead, 2.0))[0]["status"] == "applied"
    assert k.trust.admits("carol", old_rev) == "older_than_snapshot"  # no clock: refused meanwhile too
    _ntp(k)
    assert acks(core.handle(TOPICS.snapshot, old, 3.0))[0]["status"] == "applied"  # the one dated ahead gives way
    [ack] = acks(core.handle(TOPICS.enrollment("carol"), carol, 3.0))
    assert ack["reason"] == "older_than_snapshot" and k.admitted() == set()
    assert k.trust.status()["snapshot_refusals_kept"] == 1
    k.store.close()
    again = Kiosk(site, path, key, require_snapshot=True)
    assert again.trust.admits("carol", old_rev) == "older_than_snapshot" and again.admitted() == set()
    # the administrators' next snapshot says as much: the floor has nothing left to keep
    core = SyncCore(TOPICS, again.store, again.trust)
    core.handle(TOPICS.snapshot, site.snapshot({"carol": (new_rev, False)}, again.now_ms() - 1000), 4.0)
    assert again.trust.status()["snapshot_refusals_kept"] == 0
    assert again.trust.admits("carol", old_rev) == "older_than_snapshot"


def test_refusals_kept_before_ntp_are_capped_a_day_ahead_of_the_clock_once_it_is_known(tmp_path: Path) -> None:
    """Two snapshots dated ahead, one replacing the other before NTP: what the first gave cy (a revision
    twenty days ahead) is kept, but once the clock is known only up to a day after it, so cy is not locked
    out until the wall clock reaches that date."""
    key, path = os.urandom(32), tmp_path / "k.db"
    site = Site()
    k = Kiosk(site, path, key, synced=False)
    core = SyncCore(TOPICS, k.store, k.trust)
    now = k.now_ms()
    core.handle(TOPICS.keys, site.key_list(now - 30 * DAY_MS), 0.0)
    core.handle(TOPICS.snapshot, site.snapshot({"cy": (now + 20 * DAY_MS, True)}, now + 20 * DAY_MS), 0.0)
    core.handle(TOPICS.snapshot, site.snapshot({}, now + 25 * DAY_MS), 1.0)
    assert k.trust.admits("cy", now + 10 * DAY_MS) == "deleted_in_snapshot"
    _ntp(k)
    cap = k.now_ms() + DAY_MS
    k.trust.refresh()  # the trust watch, once the clock is synchronised: the cap is stored
    k.wall.advance(60)  # (cap + 1 is no longer ahead of the clock)
    assert k.trust.admits("cy", cap) == "deleted_in_snapshot" and k.trust.admits("cy", cap + 1) is None
    k.store.close()
    again = Kiosk(site, path, key)
    again.wall.advance(7200)
    assert again.trust.admits("cy", cap) == "deleted_in_snapshot" and again.trust.admits("cy", cap + 1) is None


def _revoked_then_rebooted(tmp_path: Path, key: bytes) -> tuple[Site, Kiosk, SyncCore, dict[str, bytes]]:
    """The root's laptop once ran thirty days fast: its list (still naming bert) was refused as from the
    future; bert's laptop was stolen since and a list revoking his key taken. The kiosk then reboots."""
    path = tmp_path / "k.db"
    site = Site(admins=2)
    alice, bert = site.admins
    k = Kiosk(site, path, key)
    core = SyncCore(TOPICS, k.store, k.trust)
    now = k.now_ms()
    lists = {"old": site.key_list(now - 40 * DAY_MS), "ahead": site.key_list(now + 30 * DAY_MS),
             "current": site.key_list(now - HOUR_MS, admins=[alice], revoked={bert.key_id})}
    core.handle(TOPICS.keys, lists["old"], 0.0)
    assert acks(core.handle(TOPICS.keys, lists["ahead"], 0.5))[0]["reason"] == "from_the_future"
    assert acks(core.handle(TOPICS.keys, lists["current"], 1.0))[0]["status"] == "applied"
    k.store.close()
    k = Kiosk(site, path, key, synced=False)
    return site, k, SyncCore(TOPICS, k.store, k.trust), lists


def test_a_key_list_dated_ahead_put_back_before_ntp_does_not_undo_a_revocation(tmp_path: Path) -> None:
    """bert puts the root's list dated ahead back on the broker before NTP: it is taken, but his key stays
    revoked; once the clock is known it gives way to the current list, or to the old one put back, and his
    key stays revoked through all of it, across a restart too."""
    key = os.urandom(32)
    site, k, core, lists = _revoked_then_rebooted(tmp_path, key)
    alice, bert = site.admins
    assert acks(core.handle(TOPICS.keys, lists["ahead"], 2.0))[0]["status"] == "applied"
    assert bert.key_id not in set(k.trust.keys()) and bert.key_id in k.trust.revoked()
    _ntp(k)
    [ack] = acks(core.handle(TOPICS.keys, lists["old"], 3.0))  # it gives way, to any list the root signed
    assert ack["status"] == "applied" and bert.key_id not in set(k.trust.keys())
    forged = site.enrollment("mallory", k.now_ms() - 1000, signer=bert)
    assert acks(core.handle(TOPICS.enrollment("mallory"), forged, 4.0))[0]["reason"] == "revoked_key"
    k.store.close()
    again = Kiosk(site, tmp_path / "k.db", key)
    assert set(again.trust.keys()) == {alice.key_id} and bert.key_id in again.trust.revoked()


def test_the_root_re_admits_a_key_kept_revoked_only_with_a_list_taken_with_the_clock_known(tmp_path: Path) -> None:
    """A key kept revoked is admitted again by a list the root signs after the revocation, listing it,
    once the kiosk takes it with its clock synchronised (before that, it may be one put back)."""
    site, k, core, lists = _revoked_then_rebooted(tmp_path, os.urandom(32))
    alice, bert = site.admins
    core.handle(TOPICS.keys, lists["ahead"], 2.0)
    _ntp(k)
    [ack] = acks(core.handle(TOPICS.keys, lists["current"], 3.0))
    assert ack["status"] == "applied"  # not stale: the list dated ahead gave way
    assert bert.key_id not in set(k.trust.keys()) and k.trust.status()["key_revocations_kept"] == 1
    readmitted = site.key_list(k.now_ms() - 1000, admins=[alice, bert])
    assert acks(core.handle(TOPICS.keys, readmitted, 4.0))[0]["status"] == "applied"
    assert set(k.trust.keys()) == {alice.key_id, bert.key_id} and k.trust.status()["key_revocations_kept"] == 0


def test_the_roots_next_list_re_admits_though_its_clock_drifted_a_little_ahead(tmp_path: Path) -> None:
    """An offline root's laptop drifts: its next list, dated seconds ahead of the kiosk's clock, re-admits
    the key kept revoked. One dated further ahead than RELEASE_SKEW_MS is taken but re-admits nothing: it
    could be one of the root's older lists of fast-clock days, and it is judged when taken, never again."""
    for ahead_ms, readmits in ((2000, True), (RELEASE_SKEW_MS + 60_000, False)):
        site, k, core, lists = _revoked_then_rebooted(tmp_path / str(ahead_ms), os.urandom(32))
        alice, bert = site.admins
        core.handle(TOPICS.keys, lists["ahead"], 2.0)
        _ntp(k)
        assert acks(core.handle(TOPICS.keys, lists["current"], 3.0))[0]["status"] == "applied"
        readmitted = site.key_list(k.now_ms() + ahead_ms, admins=[alice, bert])
        assert acks(core.handle(TOPICS.keys, readmitted, 4.0))[0]["status"] == "applied"
        k.wall.advance(3600)  # an hour later the retained list comes again
        core.handle(TOPICS.keys, readmitted, 5.0)
        k.trust.refresh()
        assert (bert.key_id in set(k.trust.keys())) is readmits


def test_a_key_that_only_a_list_dated_ahead_revoked_stays_revoked_until_a_list_dated_after_it(
        tmp_path: Path) -> None:
    """The root's laptop, thirty days fast, once signed a list revoking carl by mistake; put back before
    NTP it is taken, and once the clock is known gives way, carl's key kept revoked under its date: the
    root's next list by a correct clock does not re-admit him (nothing tells it from one of the root's
    older lists of those days, dated ahead too), a new key of his does, and so does a list dated after
    the bad one, taken once the clock has reached its date (within five minutes)."""
    key, path, site, k, core, now = _started(tmp_path, 3)
    alice, carl, carl_new = site.admins
    current = site.key_list(now - DAY_MS, admins=[alice, carl])
    core.handle(TOPICS.keys, current, 0.0)
    ahead = site.key_list(now + 30 * DAY_MS, admins=[alice], revoked={carl.key_id})
    k, core = _reboot(k, key, path)
    core.handle(TOPICS.keys, ahead, 1.0)
    _ntp(k)
    assert acks(core.handle(TOPICS.keys, current, 2.0))[0]["status"] == "applied"  # it gives way
    k.wall.advance(60)
    following = site.key_list(k.now_ms() - 1000, admins=[alice, carl, carl_new])
    assert acks(core.handle(TOPICS.keys, following, 3.0))[0]["status"] == "applied"
    assert set(k.trust.keys()) == {alice.key_id, carl_new.key_id}
    k.wall.advance(30 * DAY_MS // 1000)
    after_it = site.key_list(now + 30 * DAY_MS + 1000, admins=[alice, carl])
    assert acks(core.handle(TOPICS.keys, after_it, 4.0))[0]["status"] == "applied"
    assert set(k.trust.keys()) == {alice.key_id, carl.key_id} and k.trust.status()["key_revocations_kept"] == 0


def test_an_older_list_of_the_roots_fast_clock_days_does_not_re_admit_a_key_a_later_one_revoked(
        tmp_path: Path) -> None:
    """The root's clock ran fast: it signed a list of alice and carl dated twenty hours ahead, then one
    dated thirty days ahead revoking carl, taken before NTP. Once the clock is known it gives way to the
    current list, carl kept revoked under its own date; put back once the wall clock has passed its date,
    the older list, dated after the clock at that moment, does not re-admit him."""
    key, path, site, k, core, now = _started(tmp_path, 2)
    alice, carl = site.admins
    current = site.key_list(now - DAY_MS)
    core.handle(TOPICS.keys, current, 0.0)
    older = site.key_list(now + 20 * HOUR_MS)
    k, core = _reboot(k, key, path)
    core.handle(TOPICS.keys, site.key_list(now + 30 * DAY_MS, admins=[alice], revoked={carl.key_id}), 1.0)
    _ntp(k)
    k.trust.refresh()
    assert acks(core.handle(TOPICS.keys, current, 2.0))[0]["status"] == "applied"
    k.wall.advance(21 * HOUR_MS // 1000)
    assert acks(core.handle(TOPICS.keys, older, 3.0))[0]["status"] == "applied"
    assert set(k.trust.keys()) == {alice.key_id} and carl.key_id in k.trust.revoked()


def test_a_revoking_key_list_refused_before_ntp_is_taken_once_the_clock_is_known(tmp_path: Path) -> None:
    """The kiosk took the root's list dated thirty days ahead (alice, bert) before NTP on an earlier boot;
    bert's laptop was stolen since and the root, its clock fixed, revoked him. On the next boot the current
    list comes before NTP: the one held looks newer, so it is refused as stale, but it is kept, bert's key
    is no administrator key meanwhile, and once the clock is known it replaces the one dated ahead, across
    a restart too."""
    key, path, site, k, core, now = _started(tmp_path, 2)
    alice, bert = site.admins
    core.handle(TOPICS.keys, site.key_list(now - 40 * DAY_MS), 0.0)
    k, core = _reboot(k, key, path)
    assert acks(core.handle(TOPICS.keys, site.key_list(now + 30 * DAY_MS), 1.0))[0]["status"] == "applied"
    revoking = site.key_list(now - HOUR_MS, admins=[alice], revoked={bert.key_id})
    k, core = _reboot(k, key, path)
    assert acks(core.handle(TOPICS.keys, revoking, 2.0))[0]["reason"] == "stale_key_list"
    assert set(k.trust.keys()) == {alice.key_id} and bert.key_id in k.trust.revoked()
    k, core = _reboot(k, key, path)  # kept in the store
    assert set(k.trust.keys()) == {alice.key_id}
    _ntp(k)
    k.trust.refresh()  # the trust watch's next check
    assert k.trust.status()["key_list_issued_at_ms"] == now - HOUR_MS
    forged = site.enrollment("mallory", k.now_ms() - 1000, signer=bert)
    assert acks(core.handle(TOPICS.enrollment("mallory"), forged, 3.0))[0]["reason"] == "revoked_key"


def test_a_key_list_refused_before_ntp_that_proves_stale_once_the_clock_is_known_is_dropped(
        tmp_path: Path) -> None:
    """An old list put back before NTP, revoking bert whom the current list admits again: refused as stale
    and kept, bert's key out meanwhile; the one held is not dated ahead, so once the clock is known the old
    one is dropped and bert's key is an administrator key again."""
    key, path, site, k, core, now = _started(tmp_path, 2)
    alice, bert = site.admins
    old = site.key_list(now - 40 * DAY_MS, admins=[alice], revoked={bert.key_id})
    core.handle(TOPICS.keys, site.key_list(now - DAY_MS), 0.0)
    k, core = _reboot(k, key, path)
    assert acks(core.handle(TOPICS.keys, old, 1.0))[0]["reason"] == "stale_key_list"
    assert bert.key_id not in set(k.trust.keys())
    _ntp(k)
    k.trust.refresh()
    assert set(k.trust.keys()) == {alice.key_id, bert.key_id} and k.trust.status()["key_list_issued_at_ms"] == \
        now - DAY_MS
    k, core = _reboot(k, key, path)
    assert set(k.trust.keys()) == {alice.key_id, bert.key_id}


def test_the_current_snapshot_refused_before_ntp_refuses_at_once_and_is_taken_once_the_clock_is_known(
        tmp_path: Path) -> None:
    """The kiosk took bert's snapshot dated three days ahead before NTP on an earlier boot; dan has left
    since, and alice's current snapshot deletes him. On the next boot it comes before NTP and is refused as
    stale (the one held looks newer), but what it refuses holds at once: dan's old record, put back on his
    topic, is refused; the one held, put back re-encoded, does not take its kept place. Once the clock is
    known it replaces the one dated ahead and erases dan."""
    key, path, site, k, core, now = _started(tmp_path, 2, require_snapshot=True)
    alice, bert = site.admins
    dan_rev = now - 10 * DAY_MS
    core.handle(TOPICS.keys, site.key_list(now - 40 * DAY_MS), 0.0)
    core.handle(TOPICS.snapshot, site.snapshot({"dan": (dan_rev, False)}, now - 2 * DAY_MS, signer=alice), 0.0)
    dan = site.enrollment("dan", dan_rev, signer=alice)
    assert acks(core.handle(TOPICS.enrollment("dan"), dan, 0.0))[0]["status"] == "applied"
    ahead = site.snapshot({"dan": (dan_rev, False)}, now + 3 * DAY_MS, signer=bert)
    k, core = _reboot(k, key, path)
    assert acks(core.handle(TOPICS.snapshot, ahead, 1.0))[0]["status"] == "applied"
    current = site.snapshot({"dan": (now - HOUR_MS, True)}, now - HOUR_MS + 1, signer=alice)
    k, core = _reboot(k, key, path)
    assert acks(core.handle(TOPICS.snapshot, current, 2.0))[0]["reason"] == "stale_snapshot"
    assert k.trust.admits("dan", dan_rev) == "deleted_in_snapshot" and "dan" not in k.admitted()
    core.handle(TOPICS.enrollment("dan"), dan, 2.0)  # his topic holds his old record again
    assert "dan" not in k.admitted()
    respaced = ahead.replace(b',"', b', "', 1)  # the one held, re-encoded: still that one, not a later one to keep
    assert respaced != ahead and acks(core.handle(TOPICS.snapshot, respaced, 2.5))[0]["status"] == "applied"
    _ntp(k)
    k.trust.refresh()  # the trust watch's next check
    assert k.trust.status()["snapshot_issued_at_ms"] == now - HOUR_MS + 1
    assert k.store.revision("dan") == now - HOUR_MS and "dan" not in k.admitted()  # erased
    k.store.close()
    again = Kiosk(site, path, key, require_snapshot=True)
    assert again.trust.admits("dan", dan_rev) == "deleted_in_snapshot" and "dan" not in again.admitted()


def test_an_old_snapshot_refused_before_ntp_is_dropped_once_the_clock_is_known(tmp_path: Path) -> None:
    """An old snapshot put back before NTP is refused as stale and kept; the one held is not dated ahead,
    so once the clock is known the old one is dropped, and ann, whom it predates, is still admitted."""
    key, path = os.urandom(32), tmp_path / "k.db"
    site = Site()
    k = Kiosk(site, path, key, require_snapshot=True)
    core = SyncCore(TOPICS, k.store, k.trust)
    now = k.now_ms()
    ann_rev = now - 2 * DAY_MS
    core.handle(TOPICS.keys, site.key_list(now - 40 * DAY_MS), 0.0)
    old = site.snapshot({"ann": (now - 9 * DAY_MS, False)}, now - 8 * DAY_MS)
    core.handle(TOPICS.snapshot, site.snapshot({"ann": (ann_rev, False)}, now - DAY_MS), 0.0)
    core.handle(TOPICS.enrollment("ann"), site.enrollment("ann", ann_rev), 0.0)
    k, core = _reboot(k, key, path)
    assert acks(core.handle(TOPICS.snapshot, old, 1.0))[0]["reason"] == "stale_snapshot"
    _ntp(k)
    k.trust.refresh()
    assert k.trust.status()["snapshot_issued_at_ms"] == now - DAY_MS and k.admitted() == {"ann"}
    assert k.store.load_state("snapshot_refused_before_ntp") is None


def test_records_a_key_list_kept_before_ntp_set_aside_are_admitted_again_when_it_is_dropped(
        tmp_path: Path) -> None:
    """The old list put back before NTP revokes bert while it is kept: ann, whose record he signed, is set
    aside. Once the clock is known it is dropped as stale, and ann is admitted again at once, not at the
    next change of trust."""
    key, path, site, k, core, now = _started(tmp_path, 2)
    alice, bert = site.admins
    old = site.key_list(now - 40 * DAY_MS, admins=[alice], revoked={bert.key_id})
    core.handle(TOPICS.keys, site.key_list(now - DAY_MS), 0.0)
    core.handle(TOPICS.enrollment("ann"), site.enrollment("ann", now - 2 * DAY_MS, signer=bert), 0.0)
    k.store.close()
    k = Kiosk(site, path, key, synced=False)
    core = SyncCore(TOPICS, k.store, k.trust)
    assert acks(core.handle(TOPICS.keys, old, 1.0))[0]["reason"] == "stale_key_list"
    assert k.admitted() == set()
    _ntp(k)
    k.trust.refresh()
    assert bert.key_id in set(k.trust.keys()) and k.admitted() == {"ann"}


def test_a_list_put_back_before_ntp_that_pushes_the_revoking_one_out_keeps_its_revocations(
        tmp_path: Path) -> None:
    """The kiosk took the root's list dated thirty days ahead; the current list, revoking bert, comes before
    NTP and is kept. bert puts back another list of the root's fast-clock days (listing him, dated twelve
    hours ahead): it is dated later, so it takes the place of the kept one, but bert's key stays revoked,
    before NTP, once the clock is known (it is taken then, dated ahead of the clock: it re-admits nobody),
    and across a restart."""
    key, path, site, k, core, earlier_ahead = bert_revoked_before_ntp(tmp_path)
    bert = site.admins[1]
    assert acks(core.handle(TOPICS.keys, earlier_ahead, 2.5))[0]["reason"] == "stale_key_list"
    assert bert.key_id not in set(k.trust.keys())
    _ntp(k)
    k.trust.refresh()
    assert k.trust.status()["key_list_issued_at_ms"] == json.loads(earlier_ahead)["issued_at_ms"]
    forged = site.enrollment("mallory", k.now_ms() - 1000, signer=bert)
    assert acks(core.handle(TOPICS.enrollment("mallory"), forged, 3.0))[0]["reason"] == "revoked_key"
    k, core = _reboot(k, key, path)
    assert bert.key_id not in set(k.trust.keys())


def test_a_copy_of_the_held_list_re_encoded_is_that_list_and_pushes_out_no_kept_one(tmp_path: Path) -> None:
    """The kiosk took the root's list dated thirty days ahead on an earlier boot; since, the root listed dave,
    and dave deleted eve (tombstone, then his snapshot). On the next boot, before NTP, the list is kept, and
    dave's snapshot with it; his tombstone is not. The list held, put back with one space added, still
    verifies: it is the list held (the signature covers the canonical form), not a later one to take the kept
    place. Once the clock is known the kept list is taken, then dave's snapshot: eve stays out."""
    key, path, site, k, core, now = _started(tmp_path, 2, require_snapshot=True)
    alice, dave = site.admins
    eve_enrolled(core, site, now)
    ahead = site.key_list(now + 30 * DAY_MS, admins=[alice])
    k, core = _reboot(k, key, path)
    core.handle(TOPICS.keys, ahead, 1.0)
    current = site.key_list(now - 2 * HOUR_MS, admins=[alice, dave])
    snap = site.snapshot({"eve": (now - HOUR_MS, True)}, now - HOUR_MS + 1, signer=dave)
    k, core = _reboot(k, key, path)
    assert acks(core.handle(TOPICS.keys, current, 2.0))[0]["reason"] == "stale_key_list"
    assert acks(core.handle(TOPICS.snapshot, snap, 2.1))[0]["reason"] == "unknown_key"
    tomb = site.tombstone("eve", now - HOUR_MS, signer=dave)
    assert acks(core.handle(TOPICS.enrollment("eve"), tomb, 2.2))[0]["reason"] == "unknown_key"
    respaced = ahead.replace(b',"', b', "', 1)
    assert respaced != ahead and acks(core.handle(TOPICS.keys, respaced, 3.0))[0]["status"] == "applied"
    _ntp(k)
    k.trust.refresh()  # the trust watch's next check
    assert k.trust.status()["key_list_issued_at_ms"] == now - 2 * HOUR_MS
    assert k.trust.status()["snapshot_issued_at_ms"] == now - HOUR_MS + 1
    assert k.store.revision("eve") == now - HOUR_MS and "eve" not in k.admitted()


def test_a_snapshot_signed_by_a_key_only_the_list_kept_before_ntp_adds_is_judged_with_it(
        tmp_path: Path) -> None:
    """The kiosk took the root's list dated thirty days ahead on an earlier boot; since, the root listed a
    new administrator, dave, and dave's snapshot deletes eve. On the next boot both come before NTP: the
    list is refused as stale and kept, dave's snapshot refused `unknown_key` but kept with it, across a
    restart too; once the clock is known the list is taken, then the snapshot, and eve is erased."""
    key, path, site, k, core, now = _started(tmp_path, 2, require_snapshot=True)
    alice, dave = site.admins
    eve_enrolled(core, site, now)
    k, core = _reboot(k, key, path)
    core.handle(TOPICS.keys, site.key_list(now + 30 * DAY_MS, admins=[alice]), 1.0)
    current = site.key_list(now - 2 * HOUR_MS, admins=[alice, dave])
    snap = site.snapshot({"eve": (now - HOUR_MS, True)}, now - HOUR_MS + 1, signer=dave)
    k, core = _reboot(k, key, path)
    assert acks(core.handle(TOPICS.keys, current, 2.0))[0]["reason"] == "stale_key_list"
    assert acks(core.handle(TOPICS.snapshot, snap, 2.1))[0]["reason"] == "unknown_key"
    k, core = _reboot(k, key, path)  # both kept in the store
    _ntp(k)
    k.trust.refresh()
    assert k.trust.status()["key_list_issued_at_ms"] == now - 2 * HOUR_MS
    assert k.trust.status()["snapshot_issued_at_ms"] == now - HOUR_MS + 1
    assert k.store.revision("eve") == now - HOUR_MS and "eve" not in k.admitted()
