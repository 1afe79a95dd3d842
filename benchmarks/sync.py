"""Sync and event throughput, and sync under attack, against a real mosquitto.

    .venv/bin/python -m benchmarks.sync [--quick] [--json out.json]

- apply: verify and apply signed enrollments into the store;
- publish: events through audit log + outbox + QoS 1 until a subscriber has them all;
- poison: retained poison on every sync topic (nesting 10k, 16 KiB of digits, invalid UTF-8, every JSON type in
  every field), then the latency of a valid enrollment (baseline: the same without poison);
- flood: a refusal flood (10,000 messages) while access events are emitted: access events delivered, the flood's
  throughput, the outbox peak and the audit log size against their configured limits (baseline: access events
  without the flood).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.machine import machine
from benchmarks.report import save
from kiosk.events import AuditRotation, EventSink
from kiosk.mqtt.core import StaticTrust, SyncSettings
from kiosk.mqtt.protocol import Signer, parse
from kiosk.records import Enrollment
from kiosk.store import Store
from kiosk.vision.quant import l2_normalize

FP = "f" * 64
SITE = "hq"
T0 = 1_795_000_000_000
SIGNER = Signer(Ed25519PrivateKey.generate())
KEYS = {SIGNER.key_id: SIGNER.private.public_key()}


def enrollment(pid: str, rev: int, rng: np.random.Generator) -> bytes:
    return SIGNER.enrollment(SITE, Enrollment(pid, pid.title(), rev, FP, l2_normalize(rng.normal(size=(3, 128)))))


def apply_enrollments(n: int, tmp: Path) -> dict[str, Any]:
    """Verify and apply ``n`` signed enrollments of 3 embeddings each, one transaction each."""
    rng = np.random.default_rng(0)
    payloads = [enrollment(f"p{i}", T0 + i, rng) for i in range(n)]
    trust = StaticTrust(KEYS, site=SITE)
    store = Store(tmp / "bench.db", b"k" * 32, FP, verifier=trust)
    t0 = time.perf_counter()
    for i, p in enumerate(payloads):
        store.apply(parse(p, KEYS, SITE, topic_person=f"p{i}"))
    apply_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = store.gallery()
    gallery_s = time.perf_counter() - t0
    store.close()
    return {"n": n, "apply_s": round(apply_s, 3), "per_enrollment_ms": round(1000 * apply_s / n, 3),
            "gallery_rows": len(g), "gallery_build_s": round(gallery_s, 3),
            "db_mib": round((tmp / "bench.db").stat().st_size / 2**20, 2)}


class Rig:
    """A broker, a subscriber on the kiosk's events and the kiosk's MQTT side, all on loopback."""

    def __init__(self, tmp: Path, *, outbox_max: int = 10_000, rotation: AuditRotation | None = None,
                 sync: SyncSettings | None = None, roomy: bool = False) -> None:
        import paho.mqtt.client as mqtt

        from kiosk.mqtt.client import KioskMqtt, make_client
        from kiosk.mqtt.topics import Topics
        from kiosk.outbox import Outbox
        from tests.broker import Mosquitto

        tmp.mkdir(parents=True, exist_ok=True)
        # mosquitto drops what is queued for one client beyond 1,000 messages; a flood test lifts that
        self.broker = Mosquitto(tmp / "broker", extra="allow_anonymous true\n" +
                                ("max_queued_messages 0\n" if roomy else "")).start()
        self.seqs: set[int] = set()
        self.cond = threading.Condition()
        self.sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        subscribed = threading.Event()
        self.sub.on_connect = lambda c, *a: c.subscribe(f"kiosk/{SITE}/door1/events", qos=1)
        self.sub.on_subscribe = lambda *a: subscribed.set()
        self.sub.on_message = self._on_event
        self.sub.connect("127.0.0.1", self.broker.port)
        self.sub.loop_start()
        subscribed.wait(10)
        trust = StaticTrust(KEYS, site=SITE)
        self.store = Store(tmp / "k.db", b"k" * 32, FP, verifier=trust)
        self.events = EventSink(tmp / "audit.jsonl", "door1", rotation=rotation)
        self.outbox = Outbox(tmp / "outbox.db", max_rows=outbox_max)
        self.kiosk = KioskMqtt(make_client("bench"), "127.0.0.1", self.broker.port, Topics("kiosk", SITE, "door1"),
                               self.store, self.events, self.outbox, trust, settings=sync)
        self.applied = threading.Semaphore(0)
        self.kiosk.on_applied = self.applied.release
        self.events.publishers.append(self.kiosk.publish_event)
        self.kiosk.start()
        self.kiosk.connected.wait(10)
        self.kiosk.subscribed.wait(10)
        self.admin = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.admin.max_inflight_messages_set(100)
        self.admin.connect("127.0.0.1", self.broker.port)
        self.admin.loop_start()

    def _on_event(self, _c: Any, _u: Any, msg: Any) -> None:
        seq = json.loads(msg.payload).get("seq")
        if seq is not None:
            with self.cond:
                self.seqs.add(seq)
                self.cond.notify_all()

    def send(self, messages: list[tuple[str, bytes]], retain: bool, wait: bool = True) -> None:
        infos = [self.admin.publish(t, p, qos=1, retain=retain) for t, p in messages]
        if wait:
            for info in infos:
                info.wait_for_publish(30)

    def wait_seqs(self, wanted: set[int], timeout: float = 300) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.seqs >= wanted, timeout)

    def close(self) -> None:
        self.kiosk.stop()
        for c in (self.admin, self.sub):
            c.disconnect()
            c.loop_stop()
        self.outbox.close()
        self.events.close()
        self.store.close()
        self.broker.stop()


def publish_events(n: int, tmp: Path) -> dict[str, Any]:
    """Events through audit log + outbox + QoS 1 to a real mosquitto, until a subscriber has them all."""
    rig = Rig(tmp)
    t0 = time.perf_counter()
    for i in range(n):
        rig.events.emit("access_denied", {"seq": i})
    emit_s = time.perf_counter() - t0
    ok = rig.wait_seqs(set(range(n)), 120)
    total_s = time.perf_counter() - t0
    delivered = len(rig.seqs)
    rig.close()
    return {"n": n, "delivered": delivered, "complete": ok, "emit_s": round(emit_s, 3),
            "delivered_s": round(total_s, 3), "events_per_s": round(n / total_s, 1)}


def _apply_latency_ms(rig: Rig, pid: str, rev: int, rng: np.random.Generator) -> float:
    t0 = time.perf_counter()
    rig.send([(f"kiosk/{SITE}/enrollments/{pid}", enrollment(pid, rev, rng))], retain=False, wait=False)
    if not rig.applied.acquire(timeout=30):
        return float("inf")
    return 1000 * (time.perf_counter() - t0)


def poison(tmp: Path, rounds: int) -> dict[str, Any]:
    """Latency of a valid enrollment right after a burst of poison, and without poison (baseline)."""
    from tests.test_poison import KEY_LIST, SNAPSHOT, every_type_in_every_field
    from tests.test_sync_core import POISON

    rng = np.random.default_rng(1)
    rig = Rig(tmp)  # default refusal budgets, as a kiosk runs
    thread = rig.kiosk.network_thread()
    base = [_apply_latency_ms(rig, f"base{i}", T0 + i, rng) for i in range(rounds)]
    raw = [p for p, _ in POISON.values()]
    burst = ([(f"kiosk/{SITE}/enrollments/poison{i}", p) for i, p in enumerate(raw)] +
             [(f"kiosk/{SITE}/enrollments/field{i}", p)
              for i, p in enumerate(every_type_in_every_field(enrollment("ann", T0, rng)))] +
             [(f"kiosk/{SITE}/snapshot", p) for p in raw + every_type_in_every_field(SNAPSHOT)] +
             [(f"kiosk/{SITE}/keys", p) for p in raw + every_type_in_every_field(KEY_LIST)])
    after = []
    for r in range(rounds):
        rig.send(burst, retain=False, wait=False)  # the enrollment queues behind the whole burst
        after.append(_apply_latency_ms(rig, f"after{r}", T0 + 100 + r, rng))
    c = rig.kiosk.counters
    alive = rig.kiosk.alive() and rig.kiosk.network_thread() is thread
    rig.close()
    sent = len(burst) * rounds
    return {"poison_messages": sent, "refused": c["refused"], "internal_errors": c["refused_by_reason"].get(
                "internal_error", 0), "callback_errors": c["callback_errors"], "network_thread_alive": alive,
            "by_reason": c["refused_by_reason"], "rounds": rounds, "suppressed": c["suppressed"],
            "latency_after_poison_ms": {"median": round(statistics.median(after), 1), "max": round(max(after), 1)},
            "latency_baseline_ms": {"median": round(statistics.median(base), 1), "max": round(max(base), 1)},
            "ratio": round(statistics.median(after) / max(statistics.median(base), 1e-6), 2)}


def flood(tmp: Path, n: int, access: int) -> dict[str, Any]:
    """``n`` refused messages while ``access`` access events are emitted (batches of 50, each waited for)."""
    rotation = AuditRotation(max_bytes=256 * 1024, files=4)
    outbox_max = 200
    rng = np.random.default_rng(2)

    def run(with_flood: bool, where: Path) -> dict[str, Any]:
        rig = Rig(where, outbox_max=outbox_max, rotation=rotation, roomy=True)
        poisons = [b"{", b"\xff\xfe", b"[" * 100, b'{"v":NaN}', b"9" * 5000]
        msgs = [(f"kiosk/{SITE}/enrollments/f{i % 997}", poisons[i % len(poisons)]) for i in range(n)]
        msgs.append((f"kiosk/{SITE}/enrollments/ann", enrollment("ann", T0, rng)))  # arrives after the flood
        peak = 0
        t0 = time.perf_counter()
        if with_flood:
            threading.Thread(target=rig.send, args=(msgs, False, False), daemon=True).start()
        delivered_all = True
        for start in range(0, access, 50):
            for i in range(start, start + 50):
                rig.events.emit("access_denied", {"seq": i})
                peak = max(peak, len(rig.outbox))
            delivered_all &= rig.wait_seqs(set(range(start + 50)))
        access_s = time.perf_counter() - t0
        flood_done = rig.applied.acquire(timeout=600) if with_flood else True
        flood_s = time.perf_counter() - t0
        c = rig.kiosk.counters
        files = rig.events.files()
        out = {"access_events": access, "delivered": len(rig.seqs & set(range(access))),
               "all_delivered": delivered_all, "access_s": round(access_s, 2), "outbox_peak": peak,
               "outbox_max": outbox_max, "outbox_dropped": rig.outbox.dropped_by_class,
               "audit_bytes": sum(f.stat().st_size for f in files), "audit_files": len(files),
               "audit_budget_bytes": rotation.max_bytes * rotation.files}
        if with_flood:
            out |= {"flood": n, "flood_handled": flood_done, "refused": c["refused"], "suppressed": c["suppressed"],
                    "reported": c["refused"] - c["suppressed"], "flood_s": round(flood_s, 2),
                    "refusals_per_s": round(n / flood_s, 1), "network_thread_alive": rig.kiosk.alive()}
        rig.close()
        return out

    base = run(False, tmp / "base")
    attacked = run(True, tmp / "flood")
    return {**attacked, "baseline_access_s": base["access_s"],
            "ratio": round(attacked["access_s"] / max(base["access_s"], 1e-6), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["apply", "publish", "poison", "flood"], action="append")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    only = set(args.only or ["apply", "publish", "poison", "flood"])
    res: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "apply" in only:
            res["apply"] = a = apply_enrollments(500 if args.quick else 10_000, tmp / "apply")
            print(f"applied {a['n']} signed enrollments in {a['apply_s']} s ({a['per_enrollment_ms']} ms each); "
                  f"gallery of {a['gallery_rows']} rows built in {a['gallery_build_s']} s")
        if "publish" in only:
            res["publish"] = p = publish_events(200 if args.quick else 2000, tmp / "publish")
            print(f"published {p['delivered']}/{p['n']} events through the outbox in {p['delivered_s']} s "
                  f"({p['events_per_s']} events/s)")
        if "poison" in only:
            res["poison"] = q = poison(tmp / "poison", 2 if args.quick else 5)
            print(f"poison: {q['refused']}/{q['poison_messages']} refused ({q['internal_errors']} internal errors, "
                  f"{q['callback_errors']} callback errors), network thread alive: {q['network_thread_alive']}; "
                  f"valid enrollment applied {q['latency_after_poison_ms']['median']} ms after a burst (max "
                  f"{q['latency_after_poison_ms']['max']}), baseline {q['latency_baseline_ms']['median']} ms, "
                  f"ratio {q['ratio']}")
        if "flood" in only:
            res["flood"] = f = flood(tmp / "flood", 1000 if args.quick else 10_000, 200 if args.quick else 1000)
            print(f"flood: {f['refused']}/{f['flood']} refused in {f['flood_s']} s ({f['refusals_per_s']}/s), "
                  f"{f['reported']} reported one by one, {f['suppressed']} only counted; access events delivered "
                  f"{f['delivered']}/{f['access_events']} in {f['access_s']} s (baseline {f['baseline_access_s']} s, "
                  f"ratio {f['ratio']}); outbox peak {f['outbox_peak']}/{f['outbox_max']}, dropped "
                  f"{f['outbox_dropped']}; audit log {f['audit_bytes']} bytes in {f['audit_files']} files "
                  f"(budget {f['audit_budget_bytes']})")
    save(res, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
