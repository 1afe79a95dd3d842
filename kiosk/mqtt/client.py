"""The kiosk's MQTT side: apply signed enrollments, ack them, publish events from the outbox."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from kiosk.errors import ConfigError
from kiosk.events import EventSink
from kiosk.mqtt.protocol import ProtocolError, key_id, parse
from kiosk.mqtt.topics import Topics
from kiosk.outbox import Outbox
from kiosk.store import Store, Tombstone

logger = logging.getLogger(__name__)


def load_admin_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        files = sorted(path.glob("*.pem")) if path.is_dir() else [path]
        for f in files:
            try:
                key = load_pem_public_key(f.read_bytes())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"administrator key {f} is not a PEM public key: {exc}") from exc
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError(f"administrator key {f} is not an Ed25519 key")
            keys[key_id(key)] = key
    return keys


def make_client(client_id: str, *, tls: bool = False, ca_file: Path | None = None,
                cert_file: Path | None = None, key_file: Path | None = None, username: str | None = None,
                password_file: Path | None = None) -> Any:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    if tls:
        client.tls_set(ca_certs=str(ca_file) if ca_file else None, certfile=str(cert_file) if cert_file else None,
                       keyfile=str(key_file) if key_file else None)
    if username:
        password = None
        if password_file is not None:
            try:
                password = password_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"MQTT password file {password_file} is not readable: {exc.strerror}") from exc
        client.username_pw_set(username, password)
    return client


class KioskMqtt:
    """Runs on paho's network thread; the store and outbox are thread-safe."""

    def __init__(self, client: Any, host: str, port: int, topics: Topics, store: Store, events: EventSink,
                 outbox: Outbox, admin_keys: dict[str, Ed25519PublicKey], keepalive_s: int = 30) -> None:
        self.client = client
        self.host, self.port = host, port
        self.topics = topics
        self.store = store
        self.events = events
        self.outbox = outbox
        self.admin_keys = admin_keys
        self.keepalive_s = keepalive_s
        self.connected = threading.Event()
        self.drained = threading.Event()
        self.counters = {"applied": 0, "refused": 0, "duplicates": 0, "published": 0}
        self._lock = threading.Lock()
        self._inflight: dict[int, int] = {}  # mid -> outbox row
        self._handed_up_to = 0  # highest outbox id given to paho by this process
        self._handing_off = False
        self._acked_during_handoff: set[int] = set()
        self._flushing = threading.Lock()
        self._flush_again = threading.Event()
        self.on_applied: Callable[[], None] | None = None
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.will_set(topics.availability, b"offline", qos=1, retain=True)

    # life cycle
    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive_s)
        self.client.loop_start()

    def stop(self, flush_timeout: float = 1.0) -> None:
        """Flush the outbox as far as the broker allows, mark offline, disconnect."""
        if self.connected.is_set():
            self._flush()
            if len(self.outbox):
                self.drained.clear()
                self.drained.wait(flush_timeout)
            info = self.client.publish(self.topics.availability, b"offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=min(flush_timeout, 0.5))
        self.client.disconnect()
        self.client.loop_stop()

    # events
    def publish_event(self, event: dict[str, Any]) -> None:
        self.outbox.add(self.topics.events, json.dumps(event, default=str).encode())
        self._flush()

    def publish_state(self, topic: str, payload: dict[str, Any] | str, retain: bool = True) -> None:
        """Latest-value topics (stats, door state): not queued, the next value replaces them."""
        if self.connected.is_set():
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.client.publish(topic, data, qos=1, retain=retain)

    def _flush(self) -> None:
        """Send every pending row not already in flight; one flusher at a time, re-run if asked meanwhile."""
        if not self._flushing.acquire(blocking=False):
            self._flush_again.set()
            return
        try:
            while True:
                self._flush_again.clear()
                self._flush_once()
                if not self._flush_again.is_set():
                    return
        finally:
            self._flushing.release()

    def _flush_once(self) -> None:
        if not self.connected.is_set():
            return
        # Once paho has given a message id it owns the message: it resends it after
        # a reconnect by itself (even when rc says "not connected"). So each row is
        # handed over once per process, in id order, and only rows above the mark
        # are read; a restarted process starts at 0 and sends whatever is left.
        for row_id, topic, payload in self.outbox.pending(after=self._handed_up_to):
            with self._lock:
                self._handing_off = True
            info = self.client.publish(topic, payload, qos=1)
            self._handed_up_to = row_id
            with self._lock:
                # the PUBACK may have been handled before publish() returned
                if info.mid in self._acked_during_handoff:
                    self.outbox.remove(row_id)
                    self.counters["published"] += 1
                else:
                    self._inflight[info.mid] = row_id
                self._handing_off = False
                self._acked_during_handoff.clear()

    # paho callbacks (network thread)
    def _on_connect(self, client: Any, _ud: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            logger.error("MQTT connection refused: %s", reason)
            return
        logger.info("MQTT connected")
        self.connected.set()
        client.subscribe(self.topics.enrollments, qos=1)
        client.publish(self.topics.availability, b"online", qos=1, retain=True)
        threading.Thread(target=self._flush, name="outbox-flush", daemon=True).start()

    def _on_disconnect(self, _client: Any, _ud: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        if self.connected.is_set():
            logger.warning("MQTT disconnected: %s", reason)
        self.connected.clear()

    def _on_publish(self, _client: Any, _ud: Any, mid: int, _reason: Any = None, _props: Any = None) -> None:
        with self._lock:
            row_id = self._inflight.pop(mid, None)
            if row_id is None:  # not recorded yet (or not an outbox message): let the handoff see it
                if self._handing_off:
                    self._acked_during_handoff.add(mid)
                return
            self.outbox.remove(row_id)
            self.counters["published"] += 1
        if not len(self.outbox):
            self.drained.set()

    def _on_message(self, client: Any, _ud: Any, msg: Any) -> None:
        person = msg.topic.rsplit("/", 1)[-1]
        try:
            record = parse(msg.payload, self.admin_keys, self.topics.site, topic_person=person)
        except ProtocolError as exc:
            self._refuse(person, exc.reason, str(exc))
            return
        try:
            result = self.store.apply(record)
        except Exception as exc:  # the store refusing must not stop the kiosk
            self._refuse(person, "store_error", str(exc))
            return
        if result.applied:
            self.counters["applied"] += 1
            kind = "deleted" if isinstance(record, Tombstone) else "applied"
            self._ack(person, {"status": kind, "revision": result.revision, "erased": result.erased})
            self.events.emit("sync", {"person": person, "status": kind, "revision": result.revision})
            if self.on_applied is not None:
                self.on_applied()
        elif result.reason == "stale_revision" and result.revision == record.revision:
            self.counters["duplicates"] += 1  # a retained message seen again after a reconnect
            self._ack(person, {"status": "current", "revision": result.revision})
        elif result.reason == "model_mismatch":
            self._refuse(person, "model_mismatch",
                         f"enrollment made with model {getattr(record, 'model_fingerprint', '?')}, this kiosk runs "
                         f"{self.store.model_fingerprint}", revision=record.revision)
        else:
            self._refuse(person, result.reason, f"revision {record.revision} is older than the held {result.revision}",
                         revision=record.revision)

    def _ack(self, person: str, body: dict[str, Any]) -> None:
        payload = {"person_id": person, "device": self.topics.device, **body}
        self.client.publish(self.topics.ack(person), json.dumps(payload).encode(), qos=1, retain=True)

    def _refuse(self, person: str, reason: str, detail: str, revision: int | None = None) -> None:
        self.counters["refused"] += 1
        logger.warning("refused enrollment message for %s: %s", person, detail)
        held = self.store.revision(person) if len(person) <= 64 else None
        self._ack(person[:64], {"status": "refused", "reason": reason, "detail": detail[:300],
                                "received_revision": revision, "revision": held})
        self.events.emit("sync_error", {"person": person[:64], "reason": reason, "detail": detail[:300]})
