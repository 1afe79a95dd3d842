"""The paho adapter: what the broker refuses is reported, nothing a message does ends the network thread,
and its health is visible."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.events import EventSink
from kiosk.mqtt.client import KioskMqtt, make_client
from kiosk.mqtt.core import SyncSettings
from kiosk.mqtt.topics import Topics
from kiosk.outbox import Outbox
from kiosk.store import Store
from tests.broker import Mosquitto
from tests.clock import FakeClock
from tests.mqtt_kiosk import FP, SITE, TIMEOUT, TRUST, Collector, Kiosk, enroll_msg, publish


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def test_a_subscription_the_broker_refuses_is_reported_not_silent(tmp_path: Path) -> None:
    """Brokers that enforce an ACL at SUBSCRIBE answer a refused topic with a failure code in the SUBACK
    (mosquitto 2.0 instead grants it and delivers nothing: docs/mqtt.md). Fed the SUBACK paho hands over."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    events: list[dict[str, Any]] = []
    sink = EventSink(tmp_path / "audit.jsonl", device="door1")
    sink.publishers.append(events.append)
    outbox = Outbox(tmp_path / "outbox.db")
    store = Store(tmp_path / "door1.db", b"k" * 32, FP, verifier=TRUST)
    mqtt_ = KioskMqtt(make_client("kiosk-door1"), "127.0.0.1", 1, Topics("kiosk", SITE, "door1"), store, sink,
                      outbox, TRUST)
    try:
        topics = [f"kiosk/{SITE}/keys", f"kiosk/{SITE}/enrollments/+"]
        mqtt_._suback_pending.update((1, 2))
        mqtt_._suback_topics.update({1: topics[0], 2: topics[1]})
        mqtt_._on_subscribe(None, None, 1, [ReasonCode(PacketTypes.SUBACK, identifier=1)], None)
        mqtt_._on_subscribe(None, None, 2, [ReasonCode(PacketTypes.SUBACK, identifier=0x87)], None)  # not authorized
        assert mqtt_.refused_subscriptions == {topics[1]} and not mqtt_.subscribed.is_set()
        assert mqtt_.counters["subscriptions_refused"] == 1
        [event] = [e for e in events if e["type"] == "sync_subscription_refused"]
        assert event["topic"] == topics[1] and "Not authorized" in event["reason"]
        mqtt_._suback_pending.add(3)  # the old callback API: a granted QoS of 0x80 is a refusal
        mqtt_._suback_topics[3] = f"kiosk/{SITE}/snapshot"
        mqtt_._on_subscribe(None, None, 3, [0x80])
        assert f"kiosk/{SITE}/snapshot" in mqtt_.refused_subscriptions
    finally:
        outbox.close()
        sink.close()
        store.close()


def test_a_failing_hook_is_counted_and_the_network_thread_keeps_applying(broker: Mosquitto, tmp_path: Path) -> None:
    kiosk = Kiosk(tmp_path, broker.port)
    thread = kiosk.mqtt.network_thread()
    done = threading.Semaphore(0)

    def broken() -> None:
        done.release()
        raise RuntimeError("gallery hook failed")

    kiosk.mqtt.on_applied = broken
    try:
        for i, pid in enumerate(("ann", "bob")):
            publish(broker.port, f"kiosk/{SITE}/enrollments/{pid}", enroll_msg(pid, 1 + i))
            assert done.acquire(timeout=TIMEOUT)
        assert kiosk.store.revision("bob") == 2
        assert kiosk.mqtt.counters["action_errors"] == 2 and kiosk.mqtt.alive()
        assert kiosk.mqtt.network_thread() is thread and thread is not None and thread.is_alive()
    finally:
        kiosk.stop()


def test_alive_needs_a_running_network_thread_that_calls_back_in_time(broker: Mosquitto, tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    kiosk = Kiosk(tmp_path, broker.port, clock=clock, sync=SyncSettings(heartbeat_s=10, stall_s=60))
    try:
        assert kiosk.mqtt.alive()
        clock.advance(61)  # no callback for longer than stall_s
        assert not kiosk.mqtt.alive()
        kiosk.mqtt.tick()  # sends the probe; the network thread receiving it is the proof of life
        assert kiosk.mqtt.probe_seen.wait(TIMEOUT)
        assert kiosk.mqtt.alive() and kiosk.mqtt.counters["probes_received"] >= 1
        kiosk.mqtt.client.loop_stop()  # the network thread ends
        assert not kiosk.mqtt.alive()
    finally:
        kiosk.stop()
    assert not kiosk.mqtt.alive()


def test_refusal_acks_are_not_retained_and_applied_acks_are(broker: Mosquitto, tmp_path: Path) -> None:
    kiosk = Kiosk(tmp_path, broker.port)
    live = Collector(broker.port, f"kiosk/{SITE}/door1/acks/+")
    try:
        publish(broker.port, f"kiosk/{SITE}/enrollments/evil", b"[" * 5000, retain=False)
        publish(broker.port, f"kiosk/{SITE}/enrollments/ann", enroll_msg("ann", 1))
        live.wait_for(lambda m: [t.rsplit("/", 1)[-1] for t, _ in m] == ["evil", "ann"])  # both reached the broker
        assert kiosk.mqtt.counters["refused_by_reason"] == {"malformed_json": 1}
        later = Collector(broker.port, f"kiosk/{SITE}/door1/acks/+")  # sees retained acks only, then the marker
        publish(broker.port, f"kiosk/{SITE}/door1/acks/zz-marker", b"{}", retain=False)
        later.wait_for(lambda m: any(t.endswith("zz-marker") for t, _ in m))
        assert [t.rsplit("/", 1)[-1] for t, _ in later.messages] == ["ann", "zz-marker"]
        later.close()
    finally:
        kiosk.stop()
        live.close()
