"""Enrollment sync and event reporting against a real mosquitto on a loopback port."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.events import AuditRotation, EventSink
from kiosk.mqtt.client import KioskMqtt, make_client
from kiosk.mqtt.core import StaticTrust, SyncSettings
from kiosk.mqtt.homeassistant import discovery, event_updates, state_updates
from kiosk.mqtt.protocol import Signer
from kiosk.mqtt.topics import Topics
from kiosk.outbox import Outbox
from kiosk.records import Enrollment, Tombstone
from kiosk.store import Store
from kiosk.vision.quant import l2_normalize
from tests.broker import Mosquitto, make_tls
from tests.clock import FakeClock

FP = "d" * 64
SITE = "hq"
ADMIN = Signer(Ed25519PrivateKey.generate())
KEYS = {ADMIN.key_id: ADMIN.private.public_key()}
TRUST = StaticTrust(KEYS, site=SITE)
TIMEOUT = 120.0  # a ceiling on waits for events that arrive in well under a second here: slow machines and
# emulated CPUs (tools/pi/check.sh) need room, and a passing wait returns as soon as its event does


def emb(seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=(2, 128)))


class Collector:
    """A test client that records every message on a pattern and lets tests wait for a condition."""

    def __init__(self, port: int, pattern: str, **auth: Any) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, clean_session=True)
        if auth.get("username"):
            self.client.username_pw_set(auth["username"], auth.get("password"))
        if auth.get("ca"):
            self.client.tls_set(ca_certs=str(auth["ca"]))
        self.client.on_connect = lambda c, *a: c.subscribe(pattern, qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(TIMEOUT)

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self.cond:
            self.messages.append((msg.topic, msg.payload))
            self.cond.notify_all()

    def wait_for(self, pred: Callable[[list[tuple[str, bytes]]], bool], timeout: float = TIMEOUT) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.messages), timeout), self.messages[-5:]

    def json(self, suffix: str) -> list[dict[str, Any]]:
        with self.cond:
            return [json.loads(p) for t, p in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(port: int, topic: str, payload: bytes, retain: bool = True, **auth: Any) -> None:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    if auth.get("username"):
        c.username_pw_set(auth["username"], auth.get("password"))
    if auth.get("ca"):
        c.tls_set(ca_certs=str(auth["ca"]))
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(TIMEOUT)
    c.disconnect()
    c.loop_stop()


class Kiosk:
    """The kiosk's MQTT side with its own store, outbox and audit log; restartable on the same files."""

    def __init__(self, tmp: Path, port: int, device: str = "door1", key: bytes = b"k" * 32, *,
                 trust: Any = TRUST, sync: SyncSettings | None = None, rotation: AuditRotation | None = None,
                 outbox_max: int = 1000, clock: Callable[[], float] | None = None,
                 on_event: Callable[[dict[str, Any]], None] | None = None, **client_kw: Any) -> None:
        self.tmp, self.port, self.device, self.key, self.client_kw = tmp, port, device, key, client_kw
        self.trust, self.sync, self.rotation, self.outbox_max, self.clock = trust, sync, rotation, outbox_max, clock
        self.on_event = on_event  # sees every event, from before the first connection
        self.applied = threading.Semaphore(0)
        self.start()

    def start(self) -> None:
        self.store = Store(self.tmp / f"{self.device}.db", self.key, FP, verifier=self.trust)
        self.events = EventSink(self.tmp / f"{self.device}.audit.jsonl", device=self.device, rotation=self.rotation)
        if self.on_event is not None:
            self.events.publishers.append(self.on_event)
        self.outbox = Outbox(self.tmp / f"{self.device}.outbox.db", max_rows=self.outbox_max)
        client = make_client(f"kiosk-{self.device}", **self.client_kw)
        self.topics = Topics("kiosk", SITE, self.device)
        extra: dict[str, Any] = {} if self.clock is None else {"clock": self.clock}
        self.mqtt = KioskMqtt(client, "127.0.0.1", self.port, self.topics, self.store, self.events, self.outbox,
                              self.trust, settings=self.sync, **extra)
        self.mqtt.on_applied = self.applied.release
        self.events.publishers.append(self.mqtt.publish_event)
        self.mqtt.start()
        assert self.mqtt.connected.wait(TIMEOUT) and self.mqtt.subscribed.wait(TIMEOUT)

    def wait_applied(self, n: int, timeout: float = TIMEOUT) -> None:
        for _ in range(n):
            assert self.applied.acquire(timeout=timeout)

    def stop(self) -> None:
        self.mqtt.stop(flush_timeout=1.0)
        self.outbox.close()
        self.events.close()
        self.store.close()


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def enroll_msg(pid: str, rev: int, fp: str = FP) -> bytes:
    return ADMIN.enrollment(SITE, Enrollment(pid, pid.title(), rev, fp, emb(rev)))


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


def test_availability_is_online_while_connected_and_offline_as_last_will(broker: Mosquitto, tmp_path: Path) -> None:
    avail = Collector(broker.port, f"kiosk/{SITE}/door1/availability")
    kiosk = Kiosk(tmp_path, broker.port)
    avail.wait_for(lambda m: bool(m) and m[-1][1] == b"online")
    kiosk.mqtt.client._sock.close()  # the connection drops without a DISCONNECT: the broker sends the will
    avail.wait_for(lambda m: m[-1][1] == b"offline")
    kiosk.mqtt.stop()
    avail.close()


# TLS, passwords and the ACL shipped in docs/mosquitto/

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def secure_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, dict[str, Any]]]:
    tls = make_tls(tmp_path)
    pwfile = tmp_path / "passwd"
    pwfile.touch()
    pwfile.chmod(0o600)
    for user, pw in (("admin", "admin-pw"), ("door1", "door1-pw"), ("door2", "door2-pw")):
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


# the adapter: nothing a message does ends the network thread, and its health is visible

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


# Home Assistant (pure)

def test_home_assistant_sees_presentation_attacks_as_events_and_problems_as_binary_sensors() -> None:
    t = Topics("kiosk", SITE, "door1")
    d = discovery(t)
    attack = next(v for k, v in d.items() if k.startswith("homeassistant/event/"))
    assert attack["event_types"] == ["presentation_attack"] and "command_topic" not in attack
    problems = {v["state_topic"]: v for k, v in d.items() if v.get("device_class") == "problem"}
    assert set(problems) == {"kiosk/hq/door1/health/snapshot_expired", "kiosk/hq/door1/health/clock_unsynchronised"}
    denied = {"id": "x", "device": "door1", "type": "access_denied", "reason": "presentation_attack",
              "cues": {"moire": 0.9}, "ts": 5.0}
    ((topic, payload),) = event_updates(t, denied)
    assert topic == attack["state_topic"] and payload == {"reason": "presentation_attack", "cues": {"moire": 0.9},
                                                          "ts": 5.0, "event_type": "presentation_attack"}
    assert event_updates(t, {"type": "presentation_attack"})[0][1]["event_type"] == "presentation_attack"
    assert event_updates(t, {"type": "access_denied", "reason": "unknown_face"}) == []
    on = state_updates(t, {"type": "snapshot_expired"})
    assert on == [("kiosk/hq/door1/health/snapshot_expired", "ON")]
    assert state_updates(t, {"type": "sync", "status": "snapshot_applied"}) == [(on[0][0], "OFF")]
    assert state_updates(t, {"type": "snapshot_valid"}) == [(on[0][0], "OFF")]
    assert state_updates(t, {"type": "clock_unsynchronised"}) == [("kiosk/hq/door1/health/clock_unsynchronised", "ON")]
    assert state_updates(t, {"type": "clock_synchronised"})[0][1] == "OFF"
