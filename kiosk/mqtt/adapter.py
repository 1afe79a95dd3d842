"""The thin paho adapter: carries messages to the sync core, carries out its actions, sends the outbox.

Every paho callback is wrapped (an exception is logged and counted, never
raised into paho) and ``suppress_exceptions`` is on, so no message can end
the network thread. ``alive()`` says whether that thread still runs and
still calls back: the kiosk sends itself a probe every ``heartbeat_s`` while
connected, and paho calls back on every reconnection attempt while it is
not. The service feeds the systemd watchdog only while ``alive()`` holds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.events import EventSink
from kiosk.mqtt.actions import Action, Changed, Emit, Publish, Resubscribe
from kiosk.mqtt.core import SyncCore
from kiosk.mqtt.seams import SyncStore, Trust
from kiosk.mqtt.settings import SyncSettings
from kiosk.mqtt.statictrust import StaticTrust
from kiosk.mqtt.topics import Topics
from kiosk.outbox import Outbox, priority_of

logger = logging.getLogger(__name__)

TICK_S = 1.0
HANDOFF_WINDOW = 1000  # outbox rows given to paho and not yet acknowledged, at most


class KioskMqtt:
    """Runs on paho's network thread; the store and outbox are thread-safe."""

    def __init__(self, client: Any, host: str, port: int, topics: Topics, store: SyncStore, events: EventSink,
                 outbox: Outbox, trust: Trust | dict[str, Ed25519PublicKey], keepalive_s: int = 30, *,
                 settings: SyncSettings | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.host, self.port = host, port
        self.topics = topics
        self.events = events
        self.outbox = outbox
        self.settings = settings or SyncSettings()
        self.trust: Trust = StaticTrust(trust) if isinstance(trust, dict) else trust
        self.core = SyncCore(topics, store, self.trust, self.settings)
        self.keepalive_s = keepalive_s
        self.clock = clock
        self.connected = threading.Event()
        self.drained = threading.Event()
        self.probe_seen = threading.Event()  # set when the kiosk's own probe came back
        self.subscribed = threading.Event()  # every subscription of the current connection acknowledged
        self._suback_pending: set[int] = set()
        self._suback_topics: dict[int, str] = {}  # mid -> topic, to name a subscription the broker refused
        self.refused_subscriptions: set[str] = set()  # of the current connection
        self._counters = {"published": 0, "callback_errors": 0, "action_errors": 0, "probes_sent": 0,
                          "probes_received": 0, "subscriptions_refused": 0, "events_not_queued": 0,
                          "events_sent_directly": 0, "events_lost": 0}
        self._outbox_failing = False  # the last event could not be written to the outbox
        self._lock = threading.Lock()
        self._inflight: dict[int, int] = {}  # mid -> outbox row
        self._handed_up_to = 0  # highest outbox id given to paho by this process
        self._handing_off = False
        self._acked_during_handoff: set[int] = set()
        self._flushing = threading.Lock()
        self._flush_again = threading.Event()
        self._backlog = False  # rows may be pending beyond the last pass: resumed once the window is half free
        self._last_activity = clock()
        self._last_probe_sent = -float("inf")
        self._started = False
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self.on_applied: Callable[[], None] | None = None  # after any store change
        self.on_change: Callable[[str, bool], None] | None = None  # (person_id, deleted) after each change
        self.on_connected: list[Callable[[], None]] = []  # run on the network thread after each connection
        client.suppress_exceptions = True
        client.on_connect = self._guard("connect", self._on_connect)
        client.on_disconnect = self._guard("disconnect", self._on_disconnect)
        client.on_message = self._guard("message", self._on_message)
        client.on_publish = self._guard("publish", self._on_publish)
        client.on_subscribe = self._guard("subscribe", self._on_subscribe)
        client.on_pre_connect = self._guard("pre_connect", lambda *_a: None)
        client.on_connect_fail = self._guard("connect_fail", lambda *_a: None)
        client.will_set(topics.availability, b"offline", qos=1, retain=True)

    @property
    def counters(self) -> dict[str, Any]:
        with self._lock:
            own = dict(self._counters)
        return {**self.core.stats(), **own}

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    def _guard(self, name: str, fn: Callable[..., None]) -> Callable[..., None]:
        def callback(*args: Any) -> None:
            self._last_activity = self.clock()
            try:
                fn(*args)
            except Exception:
                self._count("callback_errors")
                logger.exception("MQTT %s callback failed; the network thread goes on", name)

        return callback

    # life cycle and health

    def start(self) -> None:
        self._stop.clear()
        self._last_activity = self.clock()
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive_s)
        self.client.loop_start()
        self._started = True
        self._timer = threading.Thread(target=self._run_timer, name="mqtt-sync-timer", daemon=True)
        self._timer.start()

    def network_thread(self) -> threading.Thread | None:
        thread = getattr(self.client, "_thread", None)
        return thread if isinstance(thread, threading.Thread) else None

    def alive(self) -> bool:
        """The network thread runs and called back within ``stall_s`` (a probe while connected, a connection
        attempt while not). False before ``start`` and after ``stop``."""
        thread = self.network_thread()
        if not self._started or thread is None or not thread.is_alive():
            return False
        return self.clock() - self._last_activity <= self.settings.stall_s

    def stop(self, flush_timeout: float = 1.0) -> None:
        """Flush the outbox as far as the broker allows, mark offline, disconnect."""
        self._stop.set()
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
        self.connected.clear()
        if self._flushing.acquire(timeout=2.0):  # a pass under way ends before the caller closes the outbox
            self._flushing.release()
        self._started = False
        if self._timer is not None:
            self._timer.join(2 * TICK_S)
            self._timer = None

    def _run_timer(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
            except Exception:
                logger.exception("MQTT sync timer failed; it goes on")

    def tick(self) -> None:
        """Summaries of refusals, and the liveness probe when one is due."""
        now = self.clock()
        self._run(self.core.tick(now))
        if self.connected.is_set() and now - self._last_probe_sent >= self.settings.heartbeat_s:
            self._last_probe_sent = now
            self.probe_seen.clear()
            self.client.publish(self.topics.heartbeat, b"1", qos=0, retain=False)
            self._count("probes_sent")

    # carrying out the core's actions

    def _run(self, actions: list[Action]) -> None:
        for action in actions:
            try:
                if isinstance(action, Publish):
                    self.client.publish(action.topic, action.payload, qos=action.qos, retain=action.retain)
                elif isinstance(action, Emit):
                    self.events.emit(action.kind, action.fields)
                elif isinstance(action, Changed):
                    if self.on_change is not None:
                        self.on_change(action.person_id, action.deleted)
                    if self.on_applied is not None:
                        self.on_applied()
                elif isinstance(action, Resubscribe):
                    self._resubscribe(action.topics)
            except Exception:
                self._count("action_errors")
                logger.exception("MQTT sync could not carry out %s", type(action).__name__)

    def _resubscribe(self, topics: tuple[str, ...]) -> None:
        """Subscribe to ``topics`` again, for their retained messages: one SUBSCRIBE after the other, in order,
        and the broker sends the retained messages in the order of the SUBSCRIBEs. One that fails stops the
        rest (a later topic's messages must not come before those of an earlier one). Not connected: the next
        connection subscribes to every topic, in the same order, with the same effect."""
        for topic in topics:
            if not self.connected.is_set():
                return
            with self._lock:  # the SUBACK (network thread) waits until its topic is known
                rc, mid = self.client.subscribe(topic, qos=1)
                if mid is not None:
                    self._suback_topics[mid] = topic
            if rc != 0:  # not sent (the connection just dropped): the next connection subscribes to them all
                logger.warning("could not subscribe to %s again (%s): the next connection delivers its retained "
                               "messages and those after it", topic, rc)
                return
            logger.info("subscribed to %s again: the broker delivers its retained messages anew", topic)

    # events

    def publish_event(self, event: dict[str, Any]) -> None:
        """Into the outbox, then towards the broker. An outbox that cannot take the event (its disk is full)
        does not hold it back: while connected it is handed to paho directly (QoS 1, not durable: a restart
        before its PUBACK loses it), otherwise it is lost; both are counted (``events_not_queued``, then
        ``events_sent_directly`` or ``events_lost``)."""
        payload = json.dumps(event, default=str).encode()
        try:
            self.outbox.add(self.topics.events, payload, priority_of(str(event.get("type", ""))))
        except sqlite3.Error as exc:
            self._send_unqueued(payload, exc)
        else:
            self._outbox_took_one()
        self._flush()

    def _send_unqueued(self, payload: bytes, exc: sqlite3.Error) -> None:
        with self._lock:
            first, self._outbox_failing = not self._outbox_failing, True
            self._counters["events_not_queued"] += 1
        if first:
            logger.error("the outbox cannot take events (%s): while connected they go to the broker directly, "
                         "not durably; while not, they are lost (counted: events_sent_directly, events_lost)", exc)
        if self.connected.is_set():
            self.client.publish(self.topics.events, payload, qos=1)
            self._count("events_sent_directly")
        else:
            self._count("events_lost")

    def _outbox_took_one(self) -> None:
        with self._lock:
            was_failing, self._outbox_failing = self._outbox_failing, False
            counters = dict(self._counters)
        if was_failing:
            logger.warning("the outbox takes events again (so far %d sent directly, %d lost)",
                           counters["events_sent_directly"], counters["events_lost"])

    def publish_state(self, topic: str, payload: dict[str, Any] | str, retain: bool = True) -> None:
        """Latest-value topics (stats, door state): not queued, the next value replaces them."""
        if self.connected.is_set():
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.client.publish(topic, data, qos=1, retain=retain)

    def _flush(self) -> None:
        """One pass on the caller's thread (an event's, or ``stop``'s): it never waits, and hands over at most
        a window of rows; one flusher at a time, re-run if asked meanwhile. The rest of a backlog goes from
        a background thread, as PUBACKs free the window."""
        self._drain(wait=False)

    def _drain(self, wait: bool) -> None:
        """Passes until nobody asked for another meanwhile. A caller that finds a pass under way asks for one
        (``_flush_again``) and leaves; the pass serves it, even when asked just before it let go."""
        while True:
            if not self._flushing.acquire(blocking=wait):
                self._flush_again.set()
                return
            try:
                while True:
                    self._flush_again.clear()
                    self._flush_once()
                    if not self._flush_again.is_set():
                        break
            finally:
                self._flushing.release()
            if not self._flush_again.is_set():  # asked after the last look, before the release: once more
                break
            wait = False
        self._resume_if_due()

    def _flush_in_background(self) -> None:
        """A pass off the network thread (which must go on reading PUBACKs) and off the door's."""
        def run() -> None:
            try:
                self._drain(wait=True)
            except Exception:
                logger.exception("the outbox could not be sent; the next event or connection tries again")

        threading.Thread(target=run, name="outbox-flush", daemon=True).start()

    def _resume_if_due(self) -> None:
        with self._lock:
            due = self._backlog and len(self._inflight) <= HANDOFF_WINDOW // 2
            if due:
                self._backlog = False
        if due and self.connected.is_set():
            self._flush_in_background()

    def _flush_once(self) -> None:
        """Hand paho the oldest rows not yet handed over, as many as the window has room for. Paho thus holds
        at most ``HANDOFF_WINDOW`` of them in memory, and a full batch marks a backlog: the PUBACK that frees
        half the window starts the next pass (``_on_publish``), so a backlog of any size drains by itself."""
        if not self.connected.is_set():
            return
        with self._lock:
            room = HANDOFF_WINDOW - len(self._inflight)
        rows = self.outbox.pending(after=self._handed_up_to, limit=room) if room > 0 else []
        with self._lock:
            self._backlog = room <= 0 or len(rows) == room
        # Once paho has given a message id it owns the message: it resends it after
        # a reconnect by itself (even when rc says "not connected"). So each row is
        # handed over once per process, in id order, and only rows above the mark
        # are read; a restarted process starts at 0 and sends whatever is left.
        for row_id, topic, payload in rows:
            with self._lock:
                self._handing_off = True
            info = self.client.publish(topic, payload, qos=1)
            self._handed_up_to = row_id
            with self._lock:
                # the PUBACK may have been handled before publish() returned
                if info.mid in self._acked_during_handoff:
                    self.outbox.remove(row_id)
                    self._counters["published"] += 1
                else:
                    self._inflight[info.mid] = row_id
                self._handing_off = False
                self._acked_during_handoff.clear()

    # paho callbacks (network thread), each wrapped by _guard

    def _on_connect(self, client: Any, _ud: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            logger.error("MQTT connection refused: %s", reason)
            return
        logger.info("MQTT connected")
        self.subscribed.clear()
        with self._lock:
            self._suback_pending.clear()
            self._suback_topics.clear()
            self.refused_subscriptions.clear()
            for topic, qos in [(self.topics.heartbeat, 0)] + [(t, 1) for t in self.core.subscriptions()]:
                _rc, mid = client.subscribe(topic, qos=qos)
                if mid is not None:
                    self._suback_pending.add(mid)
                    self._suback_topics[mid] = topic
        client.publish(self.topics.availability, b"online", qos=1, retain=True)
        self.connected.set()  # after the subscriptions: a probe sent from now on comes back
        for hook in self.on_connected:
            try:
                hook()
            except Exception:
                self._count("callback_errors")
                logger.exception("MQTT on-connect hook failed")
        self._flush_in_background()

    def _on_subscribe(self, _client: Any, _ud: Any, mid: int, codes: Any = (), *_rest: Any) -> None:
        refused = any(_failed(c) for c in (codes or ()))
        with self._lock:
            self._suback_pending.discard(mid)
            topic = self._suback_topics.pop(mid, "?")
            if refused:
                self.refused_subscriptions.add(topic)
                self._counters["subscriptions_refused"] += 1
            done = not self._suback_pending and not self.refused_subscriptions
        if refused:
            # The broker's ACL (or a limit) said no: this kiosk would never hear of an enrollment or a deletion
            # on that topic, and nothing else would say so.
            logger.error("the broker refused the subscription to %s (%s): this kiosk receives no sync on it; "
                         "check the broker's ACL for this kiosk (docs/mosquitto/acl)", topic,
                         ", ".join(str(c) for c in codes))
            self.events.emit("sync_subscription_refused", {"topic": topic, "reason": ", ".join(str(c) for c in codes)})
        if done:
            self.subscribed.set()

    def _on_disconnect(self, _client: Any, _ud: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        if self.connected.is_set():
            logger.warning("MQTT disconnected: %s", reason)
        self.connected.clear()
        self.subscribed.clear()

    def _on_publish(self, _client: Any, _ud: Any, mid: int, _reason: Any = None, _props: Any = None) -> None:
        with self._lock:
            row_id = self._inflight.pop(mid, None)
            if row_id is None:  # not recorded yet (or not an outbox message): let the handoff see it
                if self._handing_off:
                    self._acked_during_handoff.add(mid)
                return
            self.outbox.remove(row_id)
            self._counters["published"] += 1
        self._resume_if_due()
        if not len(self.outbox):
            self.drained.set()

    def _on_message(self, _client: Any, _ud: Any, msg: Any) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers refuse such topics; refuse the message if one gets through
            topic = bytes(getattr(msg, "_topic", b"")).decode("utf-8", "replace")
        if topic == self.topics.heartbeat:
            self._count("probes_received")
            self.probe_seen.set()
            return
        self._run(self.core.handle(topic, msg.payload, self.clock()))


def _failed(code: Any) -> bool:
    """A SUBACK entry that refuses the subscription: a paho ReasonCode that is a failure, or (MQTT 3.1.1 via
    the old callback API) the granted QoS 0x80."""
    failure = getattr(code, "is_failure", None)
    if isinstance(failure, bool):
        return failure
    try:
        return int(code) >= 0x80
    except (TypeError, ValueError):
        return False
