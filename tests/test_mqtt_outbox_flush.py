"""The outbox's passes: an event written while another pass runs is handed over by that pass."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kiosk.events import EventSink
from kiosk.mqtt.client import KioskMqtt
from kiosk.mqtt.topics import Topics
from kiosk.outbox import Outbox
from kiosk.store import Store
from tests.mqtt_kiosk import FP, SITE, TIMEOUT, TRUST


class HandOffClient:
    """As much of paho as the adapter's hand-off uses: publish gives a fresh message id; no PUBACK comes."""

    def __init__(self, wanted: str) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.wanted, self.seen = wanted, threading.Event()
        self._mid = 0
        self._lock = threading.Lock()

    def will_set(self, *_a: Any, **_k: Any) -> None: ...

    def subscribe(self, _topic: str, qos: int = 0) -> tuple[int, int]:
        with self._lock:
            self._mid += 1
            return 0, self._mid

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Any:
        with self._lock:
            self._mid += 1
            self.published.append((topic, bytes(payload)))
        if self.wanted.encode() in payload:
            self.seen.set()
        return SimpleNamespace(mid=self._mid, rc=0)


def test_an_event_written_during_the_connect_pass_is_handed_over_by_it(tmp_path: Path) -> None:
    """At a connection a background pass hands the outbox over. An event written meanwhile finds that pass
    under way and leaves it the work: the pass must look again before it ends, or the event stays on disk
    until some later event or connection (a door forced open on a quiet night)."""
    sink = EventSink(tmp_path / "audit.jsonl", device="door1")
    box = Outbox(tmp_path / "outbox.db")
    store = Store(tmp_path / "door1.db", b"k" * 32, FP, verifier=TRUST)
    client = HandOffClient("door_forced_open")
    topics = Topics("kiosk", SITE, "door1")
    m = KioskMqtt(client, "127.0.0.1", 1, topics, store, sink, box, TRUST)  # type: ignore[arg-type]
    sink.publishers.append(m.publish_event)
    in_pass, release = threading.Event(), threading.Event()
    real_pending = box.pending

    def held_pending(*a: Any, **k: Any) -> Any:  # the connect pass reading its rows (a slow SD card)
        rows = real_pending(*a, **k)
        if threading.current_thread().name == "outbox-flush" and not in_pass.is_set():
            in_pass.set()
            release.wait(TIMEOUT)
        return rows

    box.pending = held_pending  # type: ignore[method-assign]
    try:
        m._on_connect(client, None, None, SimpleNamespace(is_failure=False))
        assert in_pass.wait(TIMEOUT)
        sink.emit("door_forced_open", {"door": "front"})  # the door's thread, meanwhile
        release.set()
        assert client.seen.wait(TIMEOUT), f"still on disk: {len(box)} rows pending"
        assert [json.loads(p)["type"] for t, p in client.published if t == topics.events] == ["door_forced_open"]
    finally:
        m.connected.clear()
        for t in threading.enumerate():
            if t.name == "outbox-flush":
                t.join(TIMEOUT)
        box.close()
        sink.close()
        store.close()
