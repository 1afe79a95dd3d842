"""The broker settings shipped in docs/mosquitto/mosquitto.conf, against a real mosquitto on a loopback port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from kiosk.mqtt.settings import SyncSettings
from tests.broker import Mosquitto
from tests.mqtt_kiosk import SITE, TIMEOUT, Kiosk, enroll_msg

ROOT = Path(__file__).resolve().parents[1]
MOSQUITTO_DEFAULT_QUEUE = 1000 + 20  # max_queued_messages + max_inflight_messages, mosquitto's defaults
PEOPLE = 1500


def shipped_limits() -> str:
    """The shipped config's broker-wide limits (its listener, TLS and file paths are the test broker's own)."""
    lines = (ROOT / "docs" / "mosquitto" / "mosquitto.conf").read_text().splitlines()
    limits = [line for line in lines if line.startswith("max_")]
    assert any(line.startswith("max_queued_messages ") for line in limits)
    return "".join(f"{line}\n" for line in limits)


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker", extra="allow_anonymous true\n" + shipped_limits()).start()
    yield b
    b.stop()


def test_a_new_kiosk_gets_every_retained_enrollment_of_a_site_beyond_mosquittos_default_queue(
        broker: Mosquitto, tmp_path: Path) -> None:
    assert PEOPLE > MOSQUITTO_DEFAULT_QUEUE
    admin = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    admin.connect("127.0.0.1", broker.port)
    admin.loop_start()
    sent = [admin.publish(f"kiosk/{SITE}/enrollments/p{i:05d}", enroll_msg(f"p{i:05d}", 1 + i), qos=1, retain=True)
            for i in range(PEOPLE)]
    for info in sent:
        info.wait_for_publish(TIMEOUT)
    admin.disconnect()
    admin.loop_stop()
    kiosk = Kiosk(tmp_path, broker.port)  # subscribes once the retained enrollments are all on the broker
    try:
        kiosk.wait_applied(PEOPLE)
        assert kiosk.store.count() == PEOPLE
    finally:
        kiosk.stop()


def test_a_snapshot_of_the_kiosks_largest_size_passes_the_shipped_broker(broker: Mosquitto) -> None:
    """The broker must carry what the kiosk takes: a snapshot (or key list) of ``sync.max_snapshot_bytes``,
    retained, reaches a subscriber whole (the shipped limit was once 64 KiB: a site of about 1,800 people)."""
    size = SyncSettings().max_snapshot_bytes
    topic = f"kiosk/{SITE}/snapshot"
    got: list[bytes] = []
    arrived = threading.Event()
    admin = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    admin.connect("127.0.0.1", broker.port)
    admin.loop_start()
    admin.publish(topic, b"x" * size, qos=1, retain=True).wait_for_publish(TIMEOUT)
    admin.disconnect()
    admin.loop_stop()
    reader = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.payload)
        arrived.set()

    reader.on_message = on_message
    reader.connect("127.0.0.1", broker.port)
    reader.subscribe(topic, qos=1)
    reader.loop_start()
    try:
        arrived.wait(TIMEOUT)
    finally:
        reader.disconnect()
        reader.loop_stop()
    assert [len(p) for p in got] == [size]
