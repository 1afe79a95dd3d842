"""Records signed by a key that only the key list kept before NTP adds, or revokes: judged again once it is.

The kiosk took the root's list dated thirty days ahead on an earlier boot; since, the root listed a new
administrator, dave. On the next boot the current list comes before NTP and is kept (``kiosk.mqtt.deferred``);
dave's records come right after it and are refused ``unknown_key``: that list may be an old one put back. Once
the clock is known the list is taken, and the broker must deliver dave's retained records again: the sync
core asks for it (``Resubscribe``) and the adapter subscribes again, through a real mosquitto here. It asks for
the key list and the snapshot again too, first: another list put back before NTP may have pushed the current
one out of the kept place, and dave's snapshot, kept with it, is dropped for want of his key.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.events import EventSink
from kiosk.mqtt.adapter import KioskMqtt
from kiosk.mqtt.client import make_client
from kiosk.mqtt.core import Resubscribe, SyncCore
from kiosk.mqtt.deferred import KEY_LIST_KEPT, SNAPSHOT_KEPT
from kiosk.outbox import Outbox
from kiosk.trustwatch import TrustWatch
from tests.admin_site import publish_raw
from tests.broker import Mosquitto
from tests.mqtt_kiosk import TIMEOUT
from tests.site import DAY_MS, Kiosk, Site
from tests.test_trust_before_ntp import _ntp
from tests.trust_kiosk import TOPICS, acks, eve_enrolled

HOUR_MS = 3_600_000


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


class Seen:
    """What the kiosk reports (events) and changes (store), for a test to wait on."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.changes: list[tuple[str, bool]] = []
        self.cond = threading.Condition()

    def event(self, event: dict[str, Any]) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def change(self, person: str, deleted: bool) -> None:
        with self.cond:
            self.changes.append((person, deleted))
            self.cond.notify_all()

    def refused(self, person: str | None, reason: str) -> bool:
        return any(e["type"] == "sync_error" and e.get("person") == person and e.get("reason") == reason
                   for e in self.events)

    def wait(self, done: Callable[[], bool]) -> None:
        with self.cond:
            assert self.cond.wait_for(done, TIMEOUT), (self.events[-5:], self.changes)


def _adapter(tmp_path: Path, broker: Mosquitto, k: Kiosk) -> tuple[KioskMqtt, Seen]:
    """The kiosk's MQTT adapter on the broker, not started, and what it reports."""
    seen = Seen()
    events = EventSink(None, "door1")
    events.publishers.append(seen.event)
    outbox = Outbox(tmp_path / "outbox.db")
    kiosk = KioskMqtt(make_client("kiosk-door1"), "127.0.0.1", broker.port, TOPICS, k.store, events, outbox, k.trust)
    kiosk.on_change = seen.change
    return kiosk, seen


def _rebooted_with_the_list_dated_ahead(tmp_path: Path, site: Site, key: bytes) -> tuple[Kiosk, int]:
    """eve enrolled by alice, a current snapshot held; then, before NTP, the root's list dated ahead taken.
    The kiosk and the time, after the next reboot (before NTP again)."""
    path = tmp_path / "k.db"
    alice = site.admins[0]
    k = Kiosk(site, path, key, require_snapshot=True)
    core = SyncCore(TOPICS, k.store, k.trust)
    now = k.now_ms()
    eve_enrolled(core, site, now)
    k.store.close()
    k = Kiosk(site, path, key, synced=False, require_snapshot=True)
    SyncCore(TOPICS, k.store, k.trust).handle(TOPICS.keys, site.key_list(now + 30 * DAY_MS, admins=[alice]), 1.0)
    k.store.close()
    return Kiosk(site, path, key, synced=False, require_snapshot=True), now


def _dave_deleted_eve_before_ntp(tmp_path: Path, site: Site) -> tuple[Kiosk, SyncCore, int, bytes]:
    """Rebooted before NTP holding the list dated ahead: the current list (adding dave) kept, dave's tombstone of
    eve refused ``unknown_key``. The kiosk, its core, the time and the tombstone."""
    alice, dave = site.admins
    k, now = _rebooted_with_the_list_dated_ahead(tmp_path, site, os.urandom(32))
    core = SyncCore(TOPICS, k.store, k.trust)
    tombstone = site.tombstone("eve", now - HOUR_MS, signer=dave)
    assert acks(core.handle(TOPICS.keys, site.key_list(now - 2 * HOUR_MS, admins=[alice, dave]), 1.0))[0][
        "reason"] == "stale_key_list"
    assert acks(core.handle(TOPICS.enrollment("eve"), tombstone, 1.0))[0]["reason"] == "unknown_key"
    return k, core, now, tombstone


def test_records_signed_by_a_key_only_the_list_kept_before_ntp_adds_are_delivered_again_once_it_is_taken(
        broker: Mosquitto, tmp_path: Path) -> None:
    """dave deletes eve and enrolls fay; the broker retains both records and the current list. Before NTP
    both records are refused `unknown_key` and eve is still admitted; once the clock is known the trust
    watch takes the list, the kiosk subscribes to the records again, the broker delivers them again, and
    eve's tombstone is in force (erased, refused) and fay's enrollment effective."""
    site = Site(admins=2)
    alice, dave = site.admins
    k, now = _rebooted_with_the_list_dated_ahead(tmp_path, site, os.urandom(32))
    publish_raw(broker.port, TOPICS.keys, site.key_list(now - 2 * HOUR_MS, admins=[alice, dave]))
    publish_raw(broker.port, TOPICS.enrollment("eve"), site.tombstone("eve", now - HOUR_MS, signer=dave))
    publish_raw(broker.port, TOPICS.enrollment("fay"), site.enrollment("fay", now - HOUR_MS, seed=5, signer=dave))

    kiosk, seen = _adapter(tmp_path, broker, k)
    kiosk.start()
    try:
        seen.wait(lambda: seen.refused("eve", "unknown_key") and seen.refused("fay", "unknown_key"))
        assert seen.refused(None, "stale_key_list")
        assert k.store.revision("eve") == now - 10 * DAY_MS and k.admitted() == {"eve"}

        k.synced = True  # NTP
        k.wall.advance(60)
        k.trust.refresh()  # the trust watch's next check: the list kept is taken
        assert dave.key_id in set(k.trust.keys())
        kiosk.tick()  # the adapter's timer
        seen.wait(lambda: {("eve", True), ("fay", False)} <= set(seen.changes))
        assert k.store.revision("eve") == now - HOUR_MS and k.admitted() == {"fay"}
    finally:
        kiosk.stop(0.5)
        kiosk.outbox.close()
        k.store.close()


def test_the_sync_core_asks_once_for_the_records_again_when_the_list_kept_is_taken(tmp_path: Path) -> None:
    """Before the clock is known, and after it while the list is still kept, nothing is asked for; the
    trust watch takes it, and the next tick asks once for the retained records, which then verify."""
    site = Site(admins=2)
    k, core, _now, tombstone = _dave_deleted_eve_before_ntp(tmp_path, site)
    assert core.tick(2.0) == []
    k.synced = True
    k.wall.advance(60)
    assert core.tick(3.0) == []  # the trust watch has not judged it yet
    k.trust.refresh()
    assert core.tick(4.0) == [Resubscribe((TOPICS.keys, TOPICS.snapshot, TOPICS.enrollments))]
    assert core.tick(5.0) == [] and SyncCore(TOPICS, k.store, k.trust).tick(5.0) == []
    assert acks(core.handle(TOPICS.enrollment("eve"), tombstone, 6.0))[0]["status"] == "deleted"
    assert k.admitted() == set()


def test_a_record_refused_while_an_old_list_put_back_revoked_its_key_is_judged_again_when_it_is_dropped(
        tmp_path: Path) -> None:
    """An old list revoking bert, put back before NTP, is kept: gus, whom bert enrolled, is refused
    `revoked_key` meanwhile. Once the clock is known it is dropped as stale, bert's key is valid again,
    and the records are asked for again: gus's, delivered again, is applied."""
    key, path = os.urandom(32), tmp_path / "k.db"
    site = Site(admins=2)
    alice, bert = site.admins
    k = Kiosk(site, path, key)
    now = k.now_ms()
    SyncCore(TOPICS, k.store, k.trust).handle(TOPICS.keys, site.key_list(now - DAY_MS), 0.0)
    k.store.close()
    k = Kiosk(site, path, key, synced=False)
    core = SyncCore(TOPICS, k.store, k.trust)
    old = site.key_list(now - 40 * DAY_MS, admins=[alice], revoked={bert.key_id})
    assert acks(core.handle(TOPICS.keys, old, 1.0))[0]["reason"] == "stale_key_list"
    gus = site.enrollment("gus", now - HOUR_MS, signer=bert)
    assert acks(core.handle(TOPICS.enrollment("gus"), gus, 1.0))[0]["reason"] == "revoked_key"
    k.synced = True
    k.wall.advance(60)
    k.trust.refresh()
    assert core.tick(2.0) == [Resubscribe((TOPICS.keys, TOPICS.snapshot, TOPICS.enrollments))]
    assert acks(core.handle(TOPICS.enrollment("gus"), gus, 3.0))[0]["status"] == "applied"
    assert k.admitted() == {"gus"}


def test_the_current_list_pushed_out_before_ntp_by_one_put_back_is_taken_once_the_clock_is_known(
        broker: Mosquitto, tmp_path: Path) -> None:
    """The current list adds dave; dave's snapshot marks eve deleted and dave's tombstone deletes her. Before
    NTP the list is kept, dave's snapshot kept with it, the tombstone refused; then another of the root's
    fast-clock lists, without dave, is put back (not retained) and takes the kept place. Once the clock is
    known that one is dropped, and dave's snapshot with it for want of his key: eve is still admitted. The
    kiosk asks for every retained sync message again, in order, without reconnecting: the current list is
    taken, then dave's snapshot, which erases eve, then the tombstone, seen again."""
    site = Site(admins=2)
    alice, dave = site.admins
    k, now = _rebooted_with_the_list_dated_ahead(tmp_path, site, os.urandom(32))
    current = site.key_list(now - 2 * HOUR_MS, admins=[alice, dave])
    put_back = site.key_list(now + 10 * DAY_MS, admins=[alice])  # between the current one and the one held
    publish_raw(broker.port, TOPICS.keys, current)
    publish_raw(broker.port, TOPICS.snapshot, site.snapshot({"eve": (now - HOUR_MS, True)}, now - HOUR_MS,
                                                            signer=dave))
    publish_raw(broker.port, TOPICS.enrollment("eve"), site.tombstone("eve", now - HOUR_MS, signer=dave))

    kiosk, seen = _adapter(tmp_path, broker, k)
    connections: list[None] = []
    kiosk.on_connected.append(lambda: connections.append(None))

    def refused_key_lists() -> int:
        return sum(e["type"] == "sync_error" and e.get("topic") == TOPICS.keys for e in seen.events)

    kiosk.start()
    try:
        seen.wait(lambda: seen.refused("eve", "unknown_key"))
        assert refused_key_lists() == 1 and seen.refused(None, "stale_key_list")
        assert any(e["type"] == "sync_error" and e.get("topic") == TOPICS.snapshot and e["reason"] == "unknown_key"
                   for e in seen.events)
        assert k.store.load_state(KEY_LIST_KEPT) == current and k.store.load_state(SNAPSHOT_KEPT) is not None
        assert k.admitted() == {"eve"}  # before NTP: dave's deletions are not in force

        publish_raw(broker.port, TOPICS.keys, put_back, retain=False)
        seen.wait(lambda: refused_key_lists() == 2)
        assert k.store.load_state(KEY_LIST_KEPT) == put_back

        k.synced = True  # NTP
        k.wall.advance(60)
        k.trust.refresh()  # the trust watch's next check: the list put back is dropped, dave's snapshot too
        assert k.store.load_state(KEY_LIST_KEPT) is None and k.store.load_state(SNAPSHOT_KEPT) is None
        assert dave.key_id not in set(k.trust.keys()) and k.admitted() == {"eve"}
        kiosk.tick()  # the adapter's timer
        seen.wait(lambda: any(e["type"] == "sync" and e.get("status") == "snapshot_applied" for e in seen.events))
        assert ("eve", True) in seen.changes  # erased by the snapshot, which came after the list
        assert [e["erased"] for e in seen.events if e.get("status") == "snapshot_applied"] == [["eve"]]
        status = k.trust.status()
        assert status["key_list_issued_at_ms"] == now - 2 * HOUR_MS and dave.key_id in status["admin_keys"]
        assert status["snapshot_issued_at_ms"] == now - HOUR_MS
        assert k.store.revision("eve") == now - HOUR_MS and k.admitted() == set()
        assert len(connections) == 1  # no reconnection
    finally:
        kiosk.stop(0.5)
        kiosk.outbox.close()
        k.store.close()


def test_the_key_list_and_snapshot_held_delivered_again_are_acked_as_before_and_change_nothing(
        tmp_path: Path) -> None:
    """Once the list kept is taken, the retained key list, snapshot and records are asked for again: the
    list and the snapshot held come again, the same documents, and are acked as they were; nothing is
    erased, dropped or asked for again."""
    site = Site(admins=2)
    alice, dave = site.admins
    k, now = _rebooted_with_the_list_dated_ahead(tmp_path, site, os.urandom(32))
    core = SyncCore(TOPICS, k.store, k.trust)
    current = site.key_list(now - 2 * HOUR_MS, admins=[alice, dave])
    held_snapshot = site.snapshot({"eve": (now - 10 * DAY_MS, False)}, now - 2 * DAY_MS, signer=alice)
    core.handle(TOPICS.keys, current, 1.0)
    k.synced = True
    k.wall.advance(60)
    k.trust.refresh()
    assert core.tick(2.0) == [Resubscribe(tuple(core.subscriptions()))]
    before = k.trust.status()
    digest = hashlib.sha256(current).hexdigest()
    assert acks(core.handle(TOPICS.keys, current, 3.0)) == [{"device": TOPICS.device, "status": "applied",
                                                             "sha256": digest}]
    snap_acks = acks(core.handle(TOPICS.snapshot, held_snapshot, 3.0))
    assert [(a["status"], a["erased"]) for a in snap_acks] == [("applied", 0)]
    assert acks(core.handle(TOPICS.enrollment("eve"), site.enrollment("eve", now - 10 * DAY_MS, signer=alice),
                            3.0)) == [{"person_id": "eve", "device": TOPICS.device, "status": "current",
                                       "revision": now - 10 * DAY_MS}]
    assert k.trust.status() == before and k.admitted() == {"eve"}
    assert core.tick(4.0) == []


@pytest.mark.parametrize("fault", ["delete_state", "trust_changed"])
def test_a_store_fault_while_the_kept_list_is_judged_still_gets_the_records_delivered_again(
        tmp_path: Path, fault: str) -> None:
    """The kept list is judged once the clock is known, and one store call fails on the way (the kept row's
    removal: "database is locked"; the store's policy applied again after the list is taken: an I/O
    error). The list is judged again at the watch's next check, and the records are asked for again, so
    dave's tombstone of eve, refused before NTP, comes back to be judged."""
    site = Site(admins=2)
    k, core, _now, tomb = _dave_deleted_eve_before_ntp(tmp_path, site)
    real = getattr(k.store, fault)
    failed: list[str] = []

    def once(*args: Any) -> Any:
        if not failed:
            failed.append(fault)
            raise sqlite3.OperationalError("database is locked" if fault == "delete_state" else "disk I/O error")
        return real(*args)

    setattr(k.store, fault, once)
    _ntp(k)
    watch = TrustWatch(k.trust, k.store, lambda *_a: None)
    asked: list[Resubscribe] = []
    for i in range(3):  # the trust watch's checks and the adapter's ticks go on
        watch.check()
        asked += [a for a in core.tick(2.0 + i) if isinstance(a, Resubscribe)]
    assert failed == [fault] and site.admins[1].key_id in set(k.trust.keys())
    assert asked == [Resubscribe(tuple(core.subscriptions()))]
    assert acks(core.handle(TOPICS.enrollment("eve"), tomb, 5.0))[0]["status"] == "deleted"
    assert "eve" not in k.admitted()
