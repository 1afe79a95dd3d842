"""Enrollment sync and event reporting against a real mosquitto on a loopback port."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.events import EventSink
from kiosk.mqtt.adapter import HANDOFF_WINDOW
from kiosk.mqtt.client import KioskMqtt, make_client
from kiosk.mqtt.topics import Topics
from kiosk.outbox import Outbox
from kiosk.records import Enrollment, Tombstone
from kiosk.store import Store
from tests.broker import Mosquitto
from tests.mqtt_kiosk import ADMIN, FP, SITE, TIMEOUT, TRUST, Collector, Kiosk, emb, enroll_msg, publish


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def test_a_new_kiosk_converges_from_retained_messages_alone(broker: Mosquitto, tmp_path: Path) -> None:
    for i, pid in enumerate(("ann", "bob", "cid")):
        publish(broker.port, f"kiosk/{SITE}/enrollments/{pid}", enroll_msg(pid, 10 + i))
    publish(broker.port, f"kiosk/{SITE}/enrollments/bob", ADMIN.tombstone(SITE, Tombstone("bob", 20)))
    acks = Collector(broker.port, f"kiosk/{SITE}/+/acks/+")
    kiosk = Kiosk(tmp_path, broker.port)
    try:
        kiosk.wait_applied(3)
        assert sorted(set(kiosk.store.gallery().labels)) == ["ann", "cid"]
        acks.wait_for(lambda m: len(m) >= 3)
        assert {a["person_id"]: a["status"] for a in acks.json("")} == {"ann": "applied", "bob": "deleted",
                                                                          "cid": "applied"}
        assert next(iter(acks.json("/bob")))["erased"] is True
    finally:
        kiosk.stop()
        acks.close()


def test_delete_while_offline_is_applied_on_return(broker: Mosquitto, tmp_path: Path) -> None:
    publish(broker.port, f"kiosk/{SITE}/enrollments/ann", enroll_msg("ann", 1))
    kiosk = Kiosk(tmp_path, broker.port)
    kiosk.wait_applied(1)
    kiosk.stop()
    publish(broker.port, f"kiosk/{SITE}/enrollments/ann", ADMIN.tombstone(SITE, Tombstone("ann", 2)))
    kiosk.start()
    try:
        kiosk.wait_applied(1)
        assert len(kiosk.store.gallery()) == 0
        assert kiosk.store.revision("ann") == 2
    finally:
        kiosk.stop()


def test_replayed_and_older_revisions_never_win(broker: Mosquitto, tmp_path: Path) -> None:
    kiosk = Kiosk(tmp_path, broker.port)
    acks = Collector(broker.port, f"kiosk/{SITE}/door1/acks/ann")
    try:
        publish(broker.port, f"kiosk/{SITE}/enrollments/ann", enroll_msg("ann", 5))
        kiosk.wait_applied(1)
        publish(broker.port, f"kiosk/{SITE}/enrollments/ann", enroll_msg("ann", 3), retain=False)
        acks.wait_for(lambda m: any(json.loads(p).get("reason") == "stale_revision" for _, p in m))
        publish(broker.port, f"kiosk/{SITE}/enrollments/ann", enroll_msg("ann", 5), retain=False)  # exact replay
        acks.wait_for(lambda m: any(json.loads(p).get("status") == "current" for _, p in m))
        assert kiosk.store.revision("ann") == 5
        assert kiosk.events.counts.get("sync_error") == 1
    finally:
        kiosk.stop()
        acks.close()


BAD_INPUTS = [
    ("malformed", b"{oops", "malformed_json"),
    ("schema", json.dumps({"v": 2, "type": "enrollment", "unknown": True}).encode(), "schema"),
    ("unsigned", json.dumps({**json.loads(enroll_msg("x", 1)), "signature": "AAAA"}).encode(), "bad_signature"),
    ("oversized", b"{" + b" " * 20000 + b"}", "oversized"),
]


def test_bad_input_is_refused_with_an_ack_and_an_error_event_and_changes_nothing(broker: Mosquitto,
                                                                               tmp_path: Path) -> None:
    kiosk = Kiosk(tmp_path, broker.port)
    acks = Collector(broker.port, f"kiosk/{SITE}/door1/acks/+")
    events = Collector(broker.port, f"kiosk/{SITE}/door1/events")
    try:
        for pid, payload, _ in BAD_INPUTS:
            publish(broker.port, f"kiosk/{SITE}/enrollments/{pid}", payload, retain=False)
        other = ADMIN.enrollment(SITE, Enrollment("mm", "Model Mismatch", 1, "e" * 64, emb(1)))
        publish(broker.port, f"kiosk/{SITE}/enrollments/mm", other, retain=False)
        acks.wait_for(lambda m: len(m) >= len(BAD_INPUTS) + 1)
        reasons = {a["person_id"]: a["reason"] for a in acks.json("") if a["status"] == "refused"}
        assert reasons == {**{pid: r for pid, _, r in BAD_INPUTS}, "mm": "model_mismatch"}
        events.wait_for(lambda m: sum(json.loads(p)["type"] == "sync_error" for _, p in m) >= len(BAD_INPUTS) + 1)
        mismatch = next(e for e in events.json("events") if e["type"] == "sync_error" and e["person"] == "mm")
        assert "e" * 64 in mismatch["detail"] and FP in mismatch["detail"]
        assert kiosk.store.people() == []
        publish(broker.port, f"kiosk/{SITE}/enrollments/ann", enroll_msg("ann", 1))  # still working
        kiosk.wait_applied(1)
    finally:
        kiosk.stop()
        acks.close()
        events.close()


def test_broker_crash_and_kiosk_restart_lose_no_event(broker: Mosquitto, tmp_path: Path) -> None:
    sub = Collector(broker.port, f"kiosk/{SITE}/door1/events")
    kiosk = Kiosk(tmp_path, broker.port)
    for i in range(50):
        kiosk.events.emit("access_denied", {"seq": i})
    sub.wait_for(lambda m: len(m) >= 50)
    broker.kill()
    sub.close()
    for i in range(50, 100):  # broker down: these wait in the durable outbox
        kiosk.events.emit("access_denied", {"seq": i})
    assert len(kiosk.outbox) >= 50
    kiosk.stop()  # the kiosk restarts too, with the broker still down
    broker.start()
    sub = Collector(broker.port, f"kiosk/{SITE}/door1/events")
    kiosk.start()
    try:
        for i in range(100, 110):
            kiosk.events.emit("access_granted", {"seq": i})
        sub.wait_for(lambda m: {json.loads(p)["seq"] for _, p in m} >= set(range(50, 110)))
        kiosk.mqtt.drained.wait(TIMEOUT)
        assert len(kiosk.outbox) == 0 and kiosk.outbox.dropped == 0
        audit = [json.loads(line) for line in (tmp_path / "door1.audit.jsonl").read_text().splitlines()]
        assert {e["seq"] for e in audit if "seq" in e} == set(range(110))
    finally:
        kiosk.stop()
        sub.close()


def test_each_event_is_delivered_once_while_the_broker_is_up(broker: Mosquitto, tmp_path: Path) -> None:
    sub = Collector(broker.port, f"kiosk/{SITE}/door1/events")
    kiosk = Kiosk(tmp_path, broker.port)
    try:
        for i in range(300):
            kiosk.events.emit("access_denied", {"seq": i})
        sub.wait_for(lambda m: len({json.loads(p)["seq"] for _, p in m}) >= 300)
        assert kiosk.mqtt.drained.wait(TIMEOUT) or len(kiosk.outbox) == 0
        kiosk.events.emit("marker", {"seq": -1})
        sub.wait_for(lambda m: any(json.loads(p)["seq"] == -1 for _, p in m))
        seqs = [json.loads(p)["seq"] for _, p in sub.messages if json.loads(p)["seq"] >= 0]
        assert sorted(seqs) == list(range(300))  # no duplicates, none missing, in order of emission
        assert seqs == list(range(300))
    finally:
        kiosk.stop()
        sub.close()


def test_a_backlog_beyond_one_hand_off_window_drains_with_no_further_event(broker: Mosquitto,
                                                                           tmp_path: Path) -> None:
    """A long outage leaves more rows than paho is handed at once; the PUBACKs themselves pull the rest, in
    order, so a quiet kiosk (at night) does not keep a door_forced_open on disk until someone walks by."""
    backlog = 2 * HANDOFF_WINDOW + HANDOFF_WINDOW // 2
    box = Outbox(tmp_path / "door1.outbox.db", max_rows=5 * HANDOFF_WINDOW)
    for i in range(backlog):  # written while the broker was unreachable
        box.add(f"kiosk/{SITE}/door1/events", json.dumps({"type": "door_forced_open", "seq": i}).encode())
    box.close()
    sub = Collector(broker.port, f"kiosk/{SITE}/door1/events")
    kiosk = Kiosk(tmp_path, broker.port, outbox_max=5 * HANDOFF_WINDOW)
    try:
        assert kiosk.mqtt.drained.wait(TIMEOUT), f"{len(kiosk.outbox)} rows still in the outbox"
        assert len(kiosk.outbox) == 0 and kiosk.mqtt.counters["published"] == backlog
        sub.wait_for(lambda m: len(m) >= backlog)
        assert [json.loads(p)["seq"] for _, p in sub.messages] == list(range(backlog))
    finally:
        kiosk.stop()
        sub.close()


def test_availability_is_online_while_connected_and_offline_as_last_will(broker: Mosquitto, tmp_path: Path) -> None:
    avail = Collector(broker.port, f"kiosk/{SITE}/door1/availability")
    kiosk = Kiosk(tmp_path, broker.port)
    avail.wait_for(lambda m: bool(m) and m[-1][1] == b"online")
    kiosk.mqtt.client._sock.close()  # the connection drops without a DISCONNECT: the broker sends the will
    avail.wait_for(lambda m: m[-1][1] == b"offline")
    kiosk.mqtt.stop()
    avail.close()


def fill_the_outbox_disk(box: Outbox) -> None:
    """SQLite's own SQLITE_FULL ("database or disk is full"), as on a full disk: the database may not grow by
    one page. A row that fits in a page already there still goes in; one larger than a page does not."""
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count = {pages}")


LARGER_THAN_A_PAGE = {"door": "front", "detail": "x" * 8192}


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_a_full_disk_still_sends_events_to_a_connected_broker_and_counts_them(broker: Mosquitto,
                                                                             tmp_path: Path) -> None:
    (tmp_path / "door1.audit.jsonl").symlink_to("/dev/full")  # every audit line fails with ENOSPC
    sub = Collector(broker.port, f"kiosk/{SITE}/door1/events")
    kiosk = Kiosk(tmp_path, broker.port)
    try:
        fill_the_outbox_disk(kiosk.outbox)
        kiosk.events.emit("door_forced_open", LARGER_THAN_A_PAGE)  # the outbox cannot take it either
        sub.wait_for(lambda m: {json.loads(p)["type"] for _, p in m} >= {"door_forced_open", "audit_log_failed"})
        assert kiosk.mqtt.counters["events_not_queued"] == kiosk.mqtt.counters["events_sent_directly"] == 1
        assert kiosk.mqtt.counters["events_lost"] == 0
        [forced] = [e for e in sub.json("events") if e["type"] == "door_forced_open"]
        assert forced["detail"] == LARGER_THAN_A_PAGE["detail"]
    finally:
        kiosk.stop()
        sub.close()


def test_an_event_the_outbox_cannot_take_while_offline_is_counted_as_lost(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    sink = EventSink(tmp_path / "audit.jsonl", device="door1")
    box = Outbox(tmp_path / "outbox.db")
    store = Store(tmp_path / "door1.db", b"k" * 32, FP, verifier=TRUST)
    mqtt_ = KioskMqtt(make_client("kiosk-door1"), "127.0.0.1", 1, Topics("kiosk", SITE, "door1"), store, sink,
                      box, TRUST)  # never connected
    sink.publishers.append(mqtt_.publish_event)
    try:
        fill_the_outbox_disk(box)
        with caplog.at_level(logging.WARNING, logger="kiosk.mqtt.adapter"):
            for _ in range(3):
                sink.emit("door_forced_open", LARGER_THAN_A_PAGE)
            sink.emit("door_closed", {"door": "front"})  # fits: the outbox takes events again
        counters = mqtt_.counters
        assert (counters["events_not_queued"], counters["events_lost"], counters["events_sent_directly"]) == (3, 3, 0)
        assert [json.loads(p)["type"] for _, _, p in box.pending()] == ["door_closed"]
        assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]  # the streak, not every event
        assert "3 lost" in caplog.records[-1].getMessage()
        assert sum(json.loads(line)["type"] == "door_forced_open" for line in sink.files()[0].open()) == 3
    finally:
        box.close()
        sink.close()
        store.close()
