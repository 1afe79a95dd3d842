"""The transport-free sync core: one message in; store changes, acks and events out.

``SyncCore.handle(topic, payload, now)`` never raises: whatever the payload
(nesting 10,000 deep, 16 KiB of digits, invalid UTF-8, any JSON type in any
field), it returns the actions to carry out, and a message it cannot use is
refused with a reason. Trust (which administrator keys are valid, what the
signed site snapshot says) is delegated to an injected ``Trust``. Refusals
are counted; only those within the per-topic and total budgets are reported
one by one (a non-retained ack, a ``sync_error`` event, a log line); the
rest are summarised in one ``sync_refusals`` event per interval by ``tick``.
``tick`` also asks for every retained sync message to be delivered again, as
a reconnection has it, when the trust says what it refused meanwhile may
verify now (``redeliveries``).

Beside it: the actions it returns (``actions``), what it asks of the trust
and the store (``seams``; ``statictrust`` is the trust of fixed keys), its
settings (``settings``) and the strict decoding every payload goes through
first (``strictjson``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from kiosk.mqtt.actions import Action, Changed, Emit, Publish, Resubscribe
from kiosk.mqtt.protocol import MAX_PAYLOAD, ProtocolError, parse
from kiosk.mqtt.seams import ApplyOutcome, SyncStore, Trust
from kiosk.mqtt.settings import SyncSettings
from kiosk.mqtt.statictrust import StaticTrust
from kiosk.mqtt.strictjson import MAX_DEPTH, check_nesting, decode_json, is_json_int
from kiosk.mqtt.topics import Topics
from kiosk.ratelimit import RefusalLimiter
from kiosk.records import Enrollment, Tombstone
from kiosk.store.trust import HELD

# the actions, seams, settings and strict decoding the core is built from, importable from here as before
__all__ = ["MAX_DEPTH", "SNAPSHOT_RULES", "Action", "ApplyOutcome", "Changed", "Emit", "Publish", "Resubscribe",
           "StaticTrust", "SyncCore", "SyncSettings", "SyncStore", "Trust", "check_nesting", "decode_json"]

# What the site snapshot refuses a record for (``Snapshot.refusal``), and the wait for one.
SNAPSHOT_RULES = ("deleted_in_snapshot", "older_than_snapshot", HELD)

logger = logging.getLogger(__name__)

PERSON_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DETAIL = 300
_TOPIC_SHOWN = 200
_WINDOW_TOPICS = 256


class _Signed:
    """A snapshot payload the trust verified, decoded only if its entries are asked for."""

    def __init__(self, payload: bytes, max_bytes: int) -> None:
        self._payload, self._max_bytes = payload, max_bytes
        self._data: Any = None
        self._decoded = False

    def data(self) -> Any:
        if not self._decoded:
            self._decoded = True
            try:
                self._data = decode_json(self._payload, self._max_bytes)
            except ProtocolError:
                self._data = None
        return self._data


@dataclass
class _Window:
    start: float | None = None
    refused: int = 0
    suppressed: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_topic: dict[str, int] = field(default_factory=dict)
    other_topics: int = 0


class SyncCore:
    """Pure sync logic. ``handle`` runs on one thread (the network thread), ``tick`` may run on another."""

    def __init__(self, topics: Topics, store: SyncStore, trust: Trust, settings: SyncSettings | None = None) -> None:
        self.topics = topics
        self.store = store
        self.trust = trust
        self.settings = settings or SyncSettings()
        self.limiter = RefusalLimiter(self.settings.limits())
        self.counters = {"applied": 0, "held": 0, "refused": 0, "duplicates": 0, "suppressed": 0, "key_lists": 0,
                         "snapshots": 0, "erased_by_snapshot": 0}
        self.refused_by_reason: dict[str, int] = {}
        self._window = _Window()
        self._lock = threading.Lock()
        self._redelivered = self._redeliveries()

    def subscriptions(self) -> list[str]:
        """Key list first, then the snapshot, then enrollments: retained messages arrive in that order."""
        return [self.topics.keys, self.topics.snapshot, self.topics.enrollments]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {**self.counters, "refused_by_reason": dict(self.refused_by_reason)}

    # one message

    def handle(self, topic: str, payload: bytes, now: float) -> list[Action]:
        """The actions for one message. Never raises (short of KeyboardInterrupt/SystemExit)."""
        try:
            return self._dispatch(topic, payload, now)
        except Exception as exc:
            # RecursionError from any decoder is a malformed payload; anything else is a defect, refused too
            reason = "malformed_json" if isinstance(exc, RecursionError) else "internal_error"
            if reason == "internal_error":
                logger.error("sync could not handle a message on %s: %r", topic[:_TOPIC_SHOWN], exc, exc_info=exc)
            try:
                return self._refuse(topic, now, reason, f"{type(exc).__name__}: {exc}")
            except Exception:
                logger.exception("sync could not refuse a message on %s", topic[:_TOPIC_SHOWN])
                return []

    def _dispatch(self, topic: str, payload: bytes, now: float) -> list[Action]:
        payload = bytes(payload)
        if topic == self.topics.keys:
            return self._key_list(topic, payload, now)
        if topic == self.topics.snapshot:
            return self._snapshot(topic, payload, now)
        root = self.topics.enrollment_root
        if topic.startswith(root) and "/" not in topic[len(root):]:
            return self._enrollment(topic, topic[len(root):], payload, now)
        return self._refuse(topic, now, "unknown_topic", "not a key list, snapshot or enrollment topic of this site")

    def _enrollment(self, topic: str, person: str, payload: bytes, now: float) -> list[Action]:
        if not PERSON_ID.fullmatch(person):
            return self._refuse(topic, now, "bad_topic", "the topic's last level is not a person id "
                                                          "(1-64 letters, digits, '_' or '-')")
        try:
            decode_json(payload, MAX_PAYLOAD)
            record = parse(payload, self.trust.keys(), self.topics.site, topic_person=person,
                           revoked=self._revoked(), now_ms=self._now_ms())
        except ProtocolError as exc:
            return self._refuse(topic, now, exc.reason, str(exc), person=person)
        refusal = self.trust.admits(person, record.revision)
        if isinstance(record, Tombstone) and refusal in SNAPSHOT_RULES:
            refusal = None  # a deletion admits nobody: the snapshot's rules keep out records that would
        if refusal is not None and refusal != HELD:  # a record held for want of a snapshot is kept, set aside
            return self._refuse(topic, now, refusal, f"revision {record.revision} is refused by the site snapshot",
                                person=person, revision=record.revision)
        try:
            result = self.store.apply(record)
        except Exception as exc:  # the store refusing must not stop sync
            return self._refuse(topic, now, "store_error", str(exc), person=person, revision=record.revision)
        if result.applied and result.reason == HELD:
            with self._lock:
                self.counters["held"] += 1
            return [self._ack(person, {"status": "held", "reason": HELD, "revision": result.revision}, retain=True),
                    Emit("sync", {"person": person, "status": "held", "reason": HELD, "revision": result.revision})]
        if result.applied:
            return self._applied(person, record, result)
        if result.reason == "stale_revision" and result.revision == record.revision:
            with self._lock:
                self.counters["duplicates"] += 1  # a retained message seen again after a reconnect
            return [self._ack(person, {"status": "current", "revision": result.revision}, retain=True)]
        if result.reason == "model_mismatch":
            return self._refuse(topic, now, "model_mismatch",
                                f"enrollment made with model {getattr(record, 'model_fingerprint', '?')}, this kiosk "
                                f"runs {self.store.model_fingerprint}", person=person, revision=record.revision)
        return self._refuse(topic, now, result.reason,
                            f"revision {record.revision} is older than the held {result.revision}",
                            person=person, revision=record.revision)

    def _revoked(self) -> Collection[str]:
        """Key ids the trust knows as revoked."""
        return frozenset(self.trust.revoked())

    def _now_ms(self) -> int | None:
        """The trust's wall clock in ms when it is synchronised, ``None`` when unknown (nothing is then
        refused as issued in the future)."""
        value = self.trust.now()
        return None if value is None else int(value * 1000)

    def _applied(self, person: str, record: Enrollment | Tombstone, result: ApplyOutcome) -> list[Action]:
        with self._lock:
            self.counters["applied"] += 1
        deleted = isinstance(record, Tombstone)
        kind = "deleted" if deleted else "applied"
        erased = bool(getattr(result, "erased", False))
        return [self._ack(person, {"status": kind, "revision": result.revision, "erased": erased}, retain=True),
                Emit("sync", {"person": person, "status": kind, "revision": result.revision}),
                Changed(person, deleted)]

    def _key_list(self, topic: str, payload: bytes, now: float) -> list[Action]:
        try:
            decode_json(payload, self.settings.max_snapshot_bytes)
            self.trust.on_key_list(payload, self.settings.max_snapshot_bytes)
        except ProtocolError as exc:
            return self._refuse(topic, now, exc.reason, str(exc))
        digest = hashlib.sha256(payload).hexdigest()
        with self._lock:
            self.counters["key_lists"] += 1
        body = {"device": self.topics.device, "status": "applied", "sha256": digest}
        return [Publish(self.topics.keys_ack, json.dumps(body).encode(), retain=True),
                Emit("sync", {"status": "keys_applied", "sha256": digest})]

    def _snapshot(self, topic: str, payload: bytes, now: float) -> list[Action]:
        if len(payload) > self.settings.max_snapshot_bytes:  # before the trust is asked, whatever it is
            return self._refuse(topic, now, "oversized", f"{len(payload)} bytes; at most "
                                                         f"{self.settings.max_snapshot_bytes}")
        try:  # decoded strictly by the trust's parser, once (``kiosk.mqtt.snapshot``)
            erasures = list(self.trust.on_snapshot(payload, self.settings.max_snapshot_bytes))
        except ProtocolError as exc:
            return self._refuse(topic, now, exc.reason, str(exc))
        data = _Signed(payload, self.settings.max_snapshot_bytes)
        digest = hashlib.sha256(payload).hexdigest()
        actions: list[Action] = []
        erased: list[str] = []
        failed: list[str] = []
        for item in erasures:
            tomb = item if isinstance(item, Tombstone) else self._tombstone_for(str(item), data)
            try:
                result = self.store.apply(tomb)
            except Exception as exc:  # one bad id must not keep the others
                logger.error("snapshot erasure of %.64s failed: %s", tomb.person_id, exc)
                failed.append(tomb.person_id[:64])
                continue
            if result.applied:
                erased.append(tomb.person_id)
                actions += [self._ack(tomb.person_id, {"status": "deleted", "revision": result.revision,
                                                       "erased": bool(getattr(result, "erased", False)),
                                                       "by": "snapshot"}, retain=True),
                            Changed(tomb.person_id, True)]
        with self._lock:
            self.counters["snapshots"] += 1
            self.counters["erased_by_snapshot"] += len(erased)
        body = {"device": self.topics.device, "status": "applied", "sha256": digest, "erased": len(erased),
                "failed": failed[:50]}
        actions.insert(0, Publish(self.topics.snapshot_ack, json.dumps(body).encode(), retain=True))
        actions.append(Emit("sync", {"status": "snapshot_applied", "sha256": digest, "erased": erased[:50],
                                     "erased_count": len(erased), "failed": failed[:50],
                                     **self._snapshot_alarm()}))
        return actions

    def _snapshot_alarm(self) -> dict[str, bool]:
        """Whether the ``snapshot_expired`` alarm holds with the snapshot now held, as the trust watch judges it
        (expired, or saying nothing current, by a synchronised clock; an unknown clock is the clock's alarm): a
        snapshot applied may be the expired one held, delivered again at a reconnection, and Home Assistant's
        sensor follows this. Nothing when the trust cannot tell."""
        try:
            return {"snapshot_expired": bool(self.trust.expired()) and self._now_ms() is not None}
        except Exception:  # the snapshot is applied: the alarm is the trust watch's to tell
            logger.exception("could not tell whether the snapshot held has expired")
            return {}

    def _tombstone_for(self, person: str, signed: _Signed) -> Tombstone:
        """A tombstone at the revision the snapshot gives the person (``people[id] = [revision, deleted]``,
        as the trust holds it, else as the payload it verified says), else at the snapshot's own revision or
        issue time in ms, else just above what the store holds."""
        found = self.trust.deleted_revision(person)
        if isinstance(found, int) and is_json_int(found) and found >= 1:
            return Tombstone(person, found)
        revision: int | None = None
        data = signed.data()
        if isinstance(data, dict):
            people = data.get("people")
            entry = people.get(person) if isinstance(people, dict) else None
            candidates = [entry[0] if isinstance(entry, list) and entry else None, data.get("revision"),
                          data.get("issued_at_ms")]
            revision = next((c for c in candidates if isinstance(c, int) and not isinstance(c, bool) and c >= 1), None)
        if revision is None:
            revision = (self.store.revision(person) or 0) + 1
        return Tombstone(person, revision)

    # acks and refusals

    def _ack(self, person: str, body: dict[str, Any], retain: bool) -> Publish:
        payload = {"person_id": person, "device": self.topics.device, **body}
        return Publish(self.topics.ack(person), json.dumps(payload).encode(), retain=retain)

    def _refuse(self, topic: str, now: float, reason: str, detail: str, person: str | None = None,
                revision: int | None = None) -> list[Action]:
        reason = str(reason)[:64] or "refused"
        with self._lock:
            self.counters["refused"] += 1
            self.refused_by_reason[reason] = self.refused_by_reason.get(reason, 0) + 1
            w = self._window
            if w.start is None:
                w.start = now
            w.refused += 1
            w.by_reason[reason] = w.by_reason.get(reason, 0) + 1
            shown = topic[:_TOPIC_SHOWN]
            if shown in w.by_topic or len(w.by_topic) < _WINDOW_TOPICS:
                w.by_topic[shown] = w.by_topic.get(shown, 0) + 1
            else:
                w.other_topics += 1
            reported = self.limiter.allow(topic, now)
            if not reported:
                self.counters["suppressed"] += 1
                w.suppressed += 1
        if not reported:
            return []
        detail = detail[:_DETAIL]
        logger.warning("refused message on %s: %s (%s)", topic[:_TOPIC_SHOWN], reason, detail)
        body: dict[str, Any] = {"status": "refused", "reason": reason, "detail": detail, "received_revision": revision}
        event: dict[str, Any] = {"person": person, "reason": reason, "detail": detail, "topic": topic[:_TOPIC_SHOWN]}
        if person is not None:
            ack = self._ack(person, {**body, "revision": self.store.revision(person)}, retain=False)
        else:
            target = {self.topics.keys: self.topics.keys_ack,
                      self.topics.snapshot: self.topics.snapshot_ack}.get(topic, self.topics.refused)
            ack = Publish(target, json.dumps({"device": self.topics.device, "topic": topic[:_TOPIC_SHOWN],
                                              **body}).encode(), retain=False)
        return [Publish(ack.topic, ack.payload, retain=False, qos=0), Emit("sync_error", event)]

    # the periodic upkeep

    def tick(self, now: float) -> list[Action]:
        """The retained sync messages delivered again when the trust asks for it; one ``sync_refusals`` event
        per ``summary_interval_s`` that saw refusals."""
        return self._redelivery() + self._summary(now)

    def _redeliveries(self) -> int:
        """How many times the trust has asked for what it refused to be judged again: a key list kept until the
        clock was known was judged, so records refused meanwhile, signed by a key only it lists or only it
        revoked, may verify now; and so may the current key list, pushed out of the kept place by another put
        back, and the snapshot kept with it, dropped then."""
        return int(self.trust.redeliveries())

    def _redelivery(self) -> list[Action]:
        """Those were refused, not kept: the broker retains them and sends them again on a new subscription
        (a connection lost meanwhile subscribes anew anyway). All of them, in the order of ``subscriptions``,
        as a reconnection has them: the current key list judged with the clock known, then the snapshot
        against the keys it leaves, then the records. The key list or snapshot held, sent again, is the one
        held: acked as before, nothing changes."""
        count = self._redeliveries()
        with self._lock:
            if count == self._redelivered:
                return []
            self._redelivered = count
        logger.info("the key list kept until the clock was known is judged: the retained key list, snapshot and "
                    "records are asked for again, those refused meanwhile judged with the clock known")
        return [Resubscribe(tuple(self.subscriptions()))]

    def _summary(self, now: float) -> list[Action]:
        with self._lock:
            w = self._window
            if w.start is None or now - w.start < self.settings.summary_interval_s:
                return []
            self._window = _Window()
        top = sorted(w.by_topic.items(), key=lambda kv: -kv[1])[:5]
        if w.suppressed:
            logger.warning("%d refused sync messages in %.0f s (%d not reported one by one): %s", w.refused,
                           now - w.start, w.suppressed, w.by_reason)
        return [Emit("sync_refusals", {"interval_s": round(now - w.start, 1), "refused": w.refused,
                                       "reported": w.refused - w.suppressed, "suppressed": w.suppressed,
                                       "by_reason": w.by_reason, "topics": len(w.by_topic),
                                       "refused_beyond_tracked_topics": w.other_topics,
                                       "top_topics": [{"topic": t, "count": c} for t, c in top]})]
