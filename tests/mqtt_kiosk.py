"""A kiosk's MQTT side on its own files, a test client that watches the broker, and signed test records."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.events import AuditRotation, EventSink
from kiosk.mqtt.client import KioskMqtt, make_client
from kiosk.mqtt.core import StaticTrust, SyncSettings
from kiosk.mqtt.protocol import Signer
from kiosk.mqtt.topics import Topics
from kiosk.outbox import Outbox
from kiosk.records import Enrollment
from kiosk.store import Store
from kiosk.vision.quant import l2_normalize

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


def enroll_msg(pid: str, rev: int, fp: str = FP) -> bytes:
    return ADMIN.enrollment(SITE, Enrollment(pid, pid.title(), rev, fp, emb(rev)))
