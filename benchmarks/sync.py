"""Sync and event throughput: applying signed enrollments, publishing events through the outbox.

    .venv/bin/python -m benchmarks.sync [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.machine import machine
from kiosk.events import EventSink
from kiosk.mqtt.protocol import Signer, parse
from kiosk.store import Enrollment, Store
from kiosk.vision.quant import l2_normalize

FP = "f" * 64


def apply_enrollments(n: int, tmp: Path) -> dict[str, Any]:
    """Verify and apply ``n`` signed enrollments of 3 embeddings each, one transaction each."""
    signer = Signer(Ed25519PrivateKey.generate())
    keys = {signer.key_id: signer.private.public_key()}
    rng = np.random.default_rng(0)
    payloads = [signer.enrollment("hq", Enrollment(f"p{i}", f"Person {i}", 1, FP,
                                                   l2_normalize(rng.normal(size=(3, 128)))), 0.0) for i in range(n)]
    store = Store(tmp / "bench.db", b"k" * 32, FP)
    t0 = time.perf_counter()
    for i, p in enumerate(payloads):
        store.apply(parse(p, keys, "hq", topic_person=f"p{i}"))
    apply_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = store.gallery()
    gallery_s = time.perf_counter() - t0
    store.close()
    return {"n": n, "apply_s": round(apply_s, 3), "per_enrollment_ms": round(1000 * apply_s / n, 3),
            "gallery_rows": len(g), "gallery_build_s": round(gallery_s, 3),
            "db_mib": round((tmp / "bench.db").stat().st_size / 2**20, 2)}


def publish_events(n: int, tmp: Path) -> dict[str, Any]:
    """Events through audit log + outbox + QoS 1 to a real mosquitto, until a subscriber has them all."""
    import paho.mqtt.client as mqtt

    from kiosk.mqtt.client import KioskMqtt, make_client
    from kiosk.mqtt.topics import Topics
    from kiosk.outbox import Outbox
    from tests.broker import Mosquitto

    broker = Mosquitto(tmp / "broker").start()
    got = threading.Event()
    count = [0]
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    subscribed = threading.Event()
    sub.on_connect = lambda c, *a: c.subscribe("kiosk/hq/door1/events", qos=1)
    sub.on_subscribe = lambda *a: subscribed.set()

    def on_message(*_a: Any) -> None:
        count[0] += 1
        if count[0] >= n:
            got.set()

    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    subscribed.wait(10)
    store = Store(tmp / "k.db", b"k" * 32, FP)
    events = EventSink(tmp / "audit.jsonl", "door1")
    outbox = Outbox(tmp / "outbox.db", max_rows=n * 2)
    k = KioskMqtt(make_client("bench"), "127.0.0.1", broker.port, Topics("kiosk", "hq", "door1"), store, events,
                  outbox, {})
    events.publishers.append(k.publish_event)
    k.start()
    k.connected.wait(10)
    t0 = time.perf_counter()
    for i in range(n):
        events.emit("access_denied", {"seq": i})
    emit_s = time.perf_counter() - t0
    ok = got.wait(120)
    total_s = time.perf_counter() - t0
    k.stop()
    sub.disconnect()
    sub.loop_stop()
    broker.stop()
    return {"n": n, "delivered": count[0], "complete": ok, "emit_s": round(emit_s, 3), "delivered_s": round(total_s, 3),
            "events_per_s": round(n / total_s, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res = {"machine": machine(), "apply": apply_enrollments(500 if args.quick else 10_000, tmp),
               "publish": publish_events(200 if args.quick else 2000, tmp)}
    a, p = res["apply"], res["publish"]
    print(f"applied {a['n']} signed enrollments in {a['apply_s']} s ({a['per_enrollment_ms']} ms each); "
          f"gallery of {a['gallery_rows']} rows built in {a['gallery_build_s']} s")
    print(f"published {p['delivered']}/{p['n']} events through the outbox in {p['delivered_s']} s "
          f"({p['events_per_s']} events/s)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
