"""Poison messages and refusal floods against a real mosquitto: the network thread survives, every poison is
refused with a reason, the next valid enrollment is applied, and no access event is lost."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.events import AuditRotation
from kiosk.mqtt.core import StaticTrust, SyncSettings
from kiosk.mqtt.keys import sign_key_list
from kiosk.mqtt.protocol import Signer
from kiosk.mqtt.snapshot import sign_snapshot
from tests.broker import Mosquitto
from tests.clock import FakeClock
from tests.mqtt_kiosk import SITE, TIMEOUT, Collector, Kiosk
from tests.test_sync_core import ADMIN, JSON_VALUES, KEYS, POISON, T0, SnapshotTrust, enroll_msg

APPLY_CEILING_S = 60.0  # a ceiling, not the target (1 s): room for slow and emulated machines (tools/pi/check.sh);
# benchmarks/sync.py prints the measured latency
GENEROUS = SyncSettings(refusal_topic_burst=1000, refusal_total_burst=10_000)  # report every refusal


def every_type_in_every_field(payload: bytes) -> list[bytes]:
    """The message with each field replaced by each JSON type in turn, and with each field missing."""
    good = json.loads(payload)
    out = []
    for name in good:
        out += [json.dumps({**good, name: v}).encode() for v in JSON_VALUES if v != good[name]]
        out.append(json.dumps({k: v for k, v in good.items() if k != name}).encode())
    return out


ROOT = Signer(Ed25519PrivateKey.generate())
SNAPSHOT = sign_snapshot(ADMIN, SITE, {"ann": (T0, False)}, set(KEYS), T0, T0 + 86_400_000)
KEY_LIST = sign_key_list(ROOT, SITE, KEYS, T0)


class Publisher:
    """One connection for many QoS 1 messages (a new connection per message costs about a second)."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.max_inflight_messages_set(100)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, messages: list[tuple[str, bytes]], retain: bool) -> None:
        infos = [self.client.publish(topic, payload, qos=1, retain=retain) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(TIMEOUT)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Refusals:
    """Collects the kiosk's sync_error events as they are emitted; tests wait on a count, never sleep."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.cond = threading.Condition()

    extra: Callable[[], Any] = staticmethod(lambda: None)

    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] == "sync_error":
            with self.cond:
                self.seen.append(event)
                self.cond.notify_all()

    def wait(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 60.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.seen), timeout), (len(self.seen), self.extra())


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def test_retained_poison_on_every_sync_topic_is_refused_and_a_following_enrollment_is_applied(
        broker: Mosquitto, tmp_path: Path) -> None:
    enrollment_poison = {f"poison-{n.replace('_', '-')}": p for n, (p, _) in POISON.items()}
    enrollment_poison |= {f"field{i}": p for i, p in enumerate(every_type_in_every_field(enroll_msg("ann", T0)))}
    admin = Publisher(broker.port)
    # an empty retained payload deletes the retained message: that one poison can only be sent live
    admin.send([(f"kiosk/{SITE}/enrollments/{pid}", p) for pid, p in enrollment_poison.items() if p] +
               [(f"kiosk/{SITE}/snapshot", POISON["nesting_10k_closed"][0]),
                (f"kiosk/{SITE}/keys", POISON["invalid_utf8"][0])], retain=True)  # met by every (re)connection

    refusals = Refusals()
    kiosk = Kiosk(tmp_path, broker.port, trust=SnapshotTrust(), sync=GENEROUS, on_event=refusals)
    refusals.extra = lambda: kiosk.mqtt.counters
    thread = kiosk.mqtt.network_thread()
    live = [p for p, _ in POISON.values()]
    snapshot_live = live + every_type_in_every_field(SNAPSHOT)
    keys_live = live + every_type_in_every_field(KEY_LIST)
    try:
        admin.send([(f"kiosk/{SITE}/enrollments/{pid}", p) for pid, p in enrollment_poison.items() if not p] +
                   [(f"kiosk/{SITE}/snapshot", p) for p in snapshot_live] +
                   [(f"kiosk/{SITE}/keys", p) for p in keys_live], retain=False)
        total = len(enrollment_poison) + 2 + len(snapshot_live) + len(keys_live)
        refusals.wait(lambda seen: len(seen) >= total)

        t0 = time.perf_counter()
        admin.send([(f"kiosk/{SITE}/enrollments/ann", enroll_msg("ann", T0))], retain=False)
        kiosk.wait_applied(1, timeout=APPLY_CEILING_S)
        print(f"valid enrollment applied {1000 * (time.perf_counter() - t0):.0f} ms after {total} poison messages")

        counters = kiosk.mqtt.counters
        assert counters["refused"] == total and counters["applied"] == 1 and kiosk.store.revision("ann") == T0
        assert all(e["reason"] for e in refusals.seen) and "internal_error" not in counters["refused_by_reason"]
        by_person = {e["person"]: e["reason"] for e in refusals.seen if e["person"]}
        for name, (_, reason) in POISON.items():
            assert by_person[f"poison-{name.replace('_', '-')}"] == reason, name
        on_topic = {e["topic"]: e["reason"] for e in refusals.seen[:len(enrollment_poison) + 2]}
        assert on_topic[f"kiosk/{SITE}/snapshot"] == on_topic[f"kiosk/{SITE}/keys"] == "malformed_json"
        # 0 thread deaths: the same network thread, alive, and no callback ever failed
        assert kiosk.mqtt.network_thread() is thread and thread is not None and thread.is_alive()
        assert kiosk.mqtt.alive() and counters["callback_errors"] == 0 and counters["action_errors"] == 0
    finally:
        kiosk.stop()
        admin.close()


FLOOD = 2000  # benchmarks/sync.py runs 10,000
ACCESS_EVENTS = 300


@pytest.fixture()
def roomy_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """No per-client queue limit: mosquitto would otherwise drop the flood beyond 1,000 queued messages (and the
    enrollment after it), which hides nothing from the kiosk's side but leaves the test nothing to wait on."""
    b = Mosquitto(tmp_path / "broker", extra="allow_anonymous true\nmax_queued_messages 0\n").start()
    yield b
    b.stop()


BATCH = 50  # access events in flight at once: half the outbox, so there is always room the noise must give up


@pytest.mark.parametrize("report_all", [False, True], ids=["default_budgets", "every_refusal_reported"])
def test_a_refusal_flood_loses_no_access_event_and_keeps_audit_log_and_outbox_within_their_sizes(
        roomy_broker: Mosquitto, tmp_path: Path, report_all: bool) -> None:
    broker = roomy_broker
    clock = FakeClock(0.0)
    rotation = AuditRotation(max_bytes=16_384, files=3)
    sync = GENEROUS if report_all else SyncSettings()
    kiosk = Kiosk(tmp_path, broker.port, trust=StaticTrust(KEYS, site=SITE), sync=sync, rotation=rotation,
                  outbox_max=100, clock=clock)
    summaries: list[dict[str, Any]] = []
    kiosk.events.publishers.append(lambda e: summaries.append(e) if e["type"] == "sync_refusals" else None)
    sub = Collector(broker.port, f"kiosk/{SITE}/door1/events")
    attacker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    attacker.connect("127.0.0.1", broker.port)
    attacker.loop_start()
    poisons = [b"{", b"\xff\xfe", b"[" * 100, b'{"v":NaN}', b"9" * 5000]

    def flood() -> None:
        for i in range(FLOOD):
            attacker.publish(f"kiosk/{SITE}/enrollments/f{i % 700}", poisons[i % len(poisons)], qos=1)
        # same client, so it arrives after the whole flood: when it is applied, the flood was handled
        attacker.publish(f"kiosk/{SITE}/enrollments/ann", enroll_msg("ann", T0), qos=1)

    def seqs(m: list[tuple[str, bytes]]) -> set[int]:
        return {json.loads(p).get("seq", -1) for _, p in m}

    flooder = threading.Thread(target=flood)
    outbox_peak = 0
    try:
        flooder.start()
        for start in range(0, ACCESS_EVENTS, BATCH):
            for i in range(start, start + BATCH):
                kiosk.events.emit("access_denied", {"seq": i, "person": None})
                outbox_peak = max(outbox_peak, len(kiosk.outbox))
            batch = set(range(start + BATCH))
            sub.wait_for(lambda m: seqs(m) >= batch, timeout=120)  # noqa: B023 (called before the loop moves on)
        flooder.join(TIMEOUT)
        kiosk.wait_applied(1, timeout=120)

        counters = kiosk.mqtt.counters
        assert counters["refused"] == FLOOD and counters["refused_by_reason"]["malformed_json"] == FLOOD
        assert counters["suppressed"] == FLOOD - kiosk.events.counts["sync_error"]
        assert (counters["suppressed"] == 0) if report_all else (counters["suppressed"] > FLOOD * 0.9)
        assert outbox_peak <= 100 and kiosk.outbox.dropped_by_class["keep"] == 0
        files = kiosk.events.files()
        assert len(files) <= rotation.files and all(f.stat().st_size <= rotation.max_bytes for f in files)
        clock.advance(60)
        kiosk.mqtt.tick()
        (summary,) = summaries
        assert summary["refused"] == FLOOD and summary["suppressed"] == counters["suppressed"]
        print(f"flood of {FLOOD} ({'every refusal reported' if report_all else 'default budgets'}): "
              f"{counters['suppressed']} only counted, outbox peak {outbox_peak}/100, noise dropped "
              f"{kiosk.outbox.dropped_by_class['noise']}, audit log {sum(f.stat().st_size for f in files)} bytes "
              f"in {len(files)} files")
    finally:
        attacker.loop_stop()
        attacker.disconnect()
        kiosk.stop()
        sub.close()
