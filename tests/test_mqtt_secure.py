"""TLS, passwords and the ACL shipped in docs/mosquitto/, against a real mosquitto on a loopback port."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.mqtt.client import make_client
from kiosk.mqtt.homeassistant import discovery, state_updates
from kiosk.mqtt.topics import Topics
from tests.broker import Mosquitto, make_tls
from tests.mqtt_kiosk import SITE, TIMEOUT, Collector, Kiosk, enroll_msg, publish

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def secure_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, dict[str, Any]]]:
    tls = make_tls(tmp_path)
    pwfile = tmp_path / "passwd"
    pwfile.touch()
    pwfile.chmod(0o600)
    for user, pw in (("admin", "admin-pw"), ("door1", "door1-pw"), ("door2", "door2-pw"),
                     ("homeassistant", "homeassistant-pw")):
        subprocess.run(["mosquitto_passwd", "-b", str(pwfile), user, pw], check=True, capture_output=True)
    acl = tmp_path / "acl"
    acl.write_text((ROOT / "docs" / "mosquitto" / "acl").read_text().replace("SITE", SITE))
    extra = (f"allow_anonymous false\npassword_file {pwfile}\nacl_file {acl}\n"
             f"cafile {tls['ca']}\ncertfile {tls['cert']}\nkeyfile {tls['key']}\n")
    b = Mosquitto(tmp_path / "broker", extra=extra).start()
    yield b, tls
    b.stop()


def test_tls_password_kiosk_syncs_and_the_acl_keeps_it_to_its_own_topics(
        secure_broker: tuple[Mosquitto, dict[str, Any]], tmp_path: Path) -> None:
    broker, tls = secure_broker
    pw = tmp_path / "door1.pw"
    pw.write_text("door1-pw\n")
    admin = {"username": "admin", "password": "admin-pw", "ca": tls["ca"]}
    publish(broker.port, f"kiosk/{SITE}/enrollments/ann", enroll_msg("ann", 1), **admin)
    kiosk = Kiosk(tmp_path, broker.port, tls=True, ca_file=tls["ca"], username="door1", password_file=pw)
    watch = Collector(broker.port, "kiosk/#", **admin)
    try:
        kiosk.wait_applied(1)
        watch.wait_for(lambda m: any(t == f"kiosk/{SITE}/door1/acks/ann" for t, _ in m))
        # a kiosk may not write enrollments, nor another kiosk's topics
        kiosk.mqtt.client.publish(f"kiosk/{SITE}/enrollments/evil", enroll_msg("evil", 1), qos=1).wait_for_publish(5)
        kiosk.mqtt.client.publish(f"kiosk/{SITE}/door2/events", b"{}", qos=1).wait_for_publish(5)
        kiosk.events.emit("marker", {})
        watch.wait_for(lambda m: any(b'"marker"' in p for t, p in m if t.endswith("door1/events")))
        topics = {t for t, _ in watch.messages}
        assert f"kiosk/{SITE}/enrollments/evil" not in topics and f"kiosk/{SITE}/door2/events" not in topics
    finally:
        kiosk.stop()
        watch.close()
    # and the wrong password is refused
    bad = tmp_path / "bad.pw"
    bad.write_text("nope")
    client = make_client("intruder", tls=True, ca_file=tls["ca"], username="door1", password_file=bad)
    refused = threading.Event()
    client.on_connect = lambda c, u, f, rc, p=None: refused.set() if rc.is_failure else None
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    assert refused.wait(TIMEOUT)
    client.loop_stop()


def test_home_assistant_reads_a_kiosks_discovery_and_state_and_no_kiosk_writes_anothers_discovery(
        secure_broker: tuple[Mosquitto, dict[str, Any]], tmp_path: Path) -> None:
    broker, tls = secure_broker
    pw = tmp_path / "door1.pw"
    pw.write_text("door1-pw\n")
    publish(broker.port, f"kiosk/{SITE}/enrollments/ann", enroll_msg("ann", 1),
            username="admin", password="admin-pw", ca=tls["ca"])
    ha = Collector(broker.port, "#", username="homeassistant", password="homeassistant-pw", ca=tls["ca"])
    kiosk = Kiosk(tmp_path, broker.port, tls=True, ca_file=tls["ca"], username="door1", password_file=pw)
    try:
        kiosk.wait_applied(1)
        configs = discovery(kiosk.topics)  # what `mqtt.homeassistant = true` publishes, the door contact included
        for topic, payload in configs.items():
            kiosk.mqtt.publish_state(topic, payload)
        other = next(t for t in discovery(Topics("kiosk", SITE, "door2")) if "/lock/" in t)
        kiosk.mqtt.client.publish(other, b'{"name": "Door"}', qos=1, retain=True).wait_for_publish(TIMEOUT)
        [(lock, locked)] = state_updates(kiosk.topics, {"type": "door_locked"})
        kiosk.mqtt.publish_state(lock, locked)  # after the others, from the same client: it arrives last
        ha.wait_for(lambda m: (lock, b"LOCKED") in m)
        seen = {t for t, _ in ha.messages}
        assert set(configs) <= seen and kiosk.topics.availability in seen
        assert other not in seen  # a kiosk cannot redefine another kiosk's entities
        assert not [t for t in seen if "/enrollments/" in t or "/acks/" in t]  # Home Assistant reads state only
    finally:
        kiosk.stop()
        ha.close()
