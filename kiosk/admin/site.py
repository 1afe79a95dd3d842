"""The broker as an administrator sees it: retained key list, snapshot, kiosks, acks; publishing the snapshot."""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.admin.keylist import site_keys
from kiosk.admin.state import AdminState
from kiosk.errors import ConfigError, KioskError
from kiosk.mqtt.keys import load_public_key
from kiosk.mqtt.protocol import MAX_AHEAD_MS, MAX_PAYLOAD, ProtocolError, Signer, decode_json, parse
from kiosk.mqtt.snapshot import MAX_SNAPSHOT, parse_snapshot, sign_snapshot
from kiosk.mqtt.strictjson import decode_json as decode_strict

logger = logging.getLogger(__name__)

HOUR_MS = 3_600_000
ACK_MAX_BYTES = 8 * 1024  # a kiosk's ack is a few hundred bytes (a refusal's detail is cut at 300 characters)


class BrokerError(KioskError, ConnectionError):
    exit_code = 16



class Broker:
    """A short-lived MQTT connection for the admin commands; every message received is kept."""

    def __init__(self, args: argparse.Namespace) -> None:
        from kiosk.mqtt.client import make_client

        self.client = make_client(f"kiosk-admin-{os.getpid()}", tls=args.tls, ca_file=args.ca_file,
                                  cert_file=args.cert_file, key_file=args.key_file, username=args.username,
                                  password_file=args.password_file)
        self.connected = threading.Event()
        self.messages: list[tuple[str, bytes]] = []
        self._arrived = threading.Condition()
        self._subacks: set[int] = set()
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        try:
            self.client.connect(args.host, args.port, keepalive=30)
        except OSError as exc:
            raise BrokerError(f"cannot reach the MQTT broker at {args.host}:{args.port}: {exc}") from exc
        self.client.loop_start()
        if not self.connected.wait(10):
            self.close()
            raise BrokerError(f"the broker at {args.host}:{args.port} did not accept the connection")

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self._arrived:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._arrived.notify_all()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, *_rest: Any) -> None:
        with self._arrived:
            self._subacks.add(mid)
            self._arrived.notify_all()

    def subscribe(self, *patterns: str, timeout: float = 10.0) -> None:
        _, mid = self.client.subscribe([(p, 1) for p in patterns])
        with self._arrived:
            if not self._arrived.wait_for(lambda: mid in self._subacks, timeout):
                raise BrokerError(f"the broker did not confirm the subscription to {patterns}")

    def retained(self, *patterns: str, quiet_s: float = 0.5, max_s: float = 10.0) -> list[tuple[str, bytes]]:
        """Retained messages on ``patterns``: those arriving until none came for ``quiet_s``."""
        start = len(self.messages)
        self.subscribe(*patterns)
        deadline = time.monotonic() + max_s
        with self._arrived:
            while time.monotonic() < deadline:
                seen = len(self.messages)
                self._arrived.wait(quiet_s)
                if len(self.messages) == seen:
                    break
            return self.messages[start:]

    def wait_for(self, done: Callable[[list[tuple[str, bytes]]], bool], timeout: float) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: done(self.messages), timeout)

    def publish(self, topic: str, payload: bytes, retain: bool = True, timeout: float = 10.0) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise BrokerError(f"the broker did not acknowledge {topic} within {timeout:.0f} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class SiteView:
    """What the broker holds for the site, as far as this administrator can verify it."""

    prefix: str
    site: str
    people: dict[str, tuple[int, bool]] = field(default_factory=dict)  # from the retained snapshot
    snapshot_ms: int = 0
    admin_keys: set[str] = field(default_factory=set)  # of the newest key list verified (site_keys)
    kiosks: dict[str, str] = field(default_factory=dict)  # device -> online | offline
    enrollments: dict[str, int] = field(default_factory=dict)  # person -> retained revision (when read)
    warnings: list[str] = field(default_factory=list)
    now_ms: int = field(default_factory=lambda: int(time.time() * 1000))  # this clock, when the site was read

    def topic(self, leaf: str) -> str:
        return f"{self.prefix}/{self.site}/{leaf}"

    def warn(self, warning: str) -> None:
        if warning not in self.warnings:
            self.warnings.append(warning)


def read_site(broker: Broker, args: argparse.Namespace, signer: Signer, state: AdminState,
              person: str | None = None, now_ms: int | None = None) -> SiteView:
    """Retained key list, snapshot, kiosk availability (and one person's enrollment) before publishing. The
    snapshot counts only when a key of the newest key list this administrator verified signed it
    (``site_keys``): its entries go into what this administrator signs next."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    view = SiteView(args.prefix, args.site, now_ms=now_ms)
    patterns = [view.topic("keys"), view.topic("snapshot"), view.topic("+/availability")]
    if person is not None:
        patterns.append(view.topic(f"enrollments/{person}"))
    got = dict(broker.retained(*patterns))
    root = load_public_key(args.root_pub) if args.root_pub else None
    trusted = site_keys(got.get(view.topic("keys")), root, args.site, state, signer, now_ms)
    view.admin_keys = trusted.listed
    view.warnings += trusted.warnings
    if payload := got.get(view.topic("snapshot")):
        try:
            snap = parse_snapshot(payload, trusted.keys, args.site)
            view.people = within_horizon(snap.people, now_ms, "the retained snapshot", view.warn)
            view.snapshot_ms = snap.issued_at_ms
        except ProtocolError as exc:
            view.warnings.append(f"the retained snapshot does not verify ({exc}): its entries are not merged; "
                                 "starting from this administrator's own record")
    for topic, payload in got.items():
        parts = topic.split("/")
        if topic.endswith("/availability") and len(parts) == 4 and payload:
            view.kiosks[parts[2]] = payload.decode(errors="replace")
        elif person is not None and topic == view.topic(f"enrollments/{person}") and payload:
            rev = _record_revision(payload, person, trusted.keys, args.site, now_ms + MAX_AHEAD_MS, view.warnings)
            if rev is not None:
                view.enrollments[person] = rev
    return view


def _record_revision(payload: bytes, person: str, keys: dict[str, Ed25519PublicKey], site: str, horizon: int,
                     warnings: list[str]) -> int | None:
    """The retained record's revision, read without its signature (one signed by a key rotated out since still
    counts, so that no revision is reused), unless it is beyond ``horizon`` (now + MAX_AHEAD_MS) and does not
    verify: kiosks refuse such a record, and it must not stop a change either."""
    try:
        rev = decode_json(payload, MAX_PAYLOAD).get("issued_at_ms")
    except ProtocolError:
        return None
    if not isinstance(rev, int) or isinstance(rev, bool):
        return None
    if rev > horizon:
        try:
            parse(payload, keys, site, topic_person=person)
        except ProtocolError as exc:
            warnings.append(f"the retained record of {person} claims revision {rev}, more than a day ahead of this "
                            f"clock, and does not verify ({exc}): kiosks refuse it; ignored")
            return None
    return rev


def next_revision(now_ms: int, *seen: int | None) -> int:
    """This change's revision: its issue time in ms, but above anything already published for the person."""
    return max([now_ms, *[s + 1 for s in seen if s is not None]])


def within_horizon(people: dict[str, tuple[int, bool]], now_ms: int, what: str,
                   warn: Callable[[str], None]) -> dict[str, tuple[int, bool]]:
    """``people`` (person -> (revision, deleted)) without a revision more than a day ahead of ``now_ms``: a
    kiosk with a synchronised clock refuses a whole snapshot giving anybody such a revision (an administrator's
    clock ran fast once), so none is ever signed. A deletion dated that far ahead is kept, at ``now_ms``: a
    deletion is never lost; an enrollment's entry is left out, and the person's other entries decide. Both are
    said (``warn``)."""
    kept: dict[str, tuple[int, bool]] = {}
    for pid, (rev, deleted) in people.items():
        if rev <= now_ms + MAX_AHEAD_MS:
            kept[pid] = (rev, deleted)
        elif deleted:
            kept[pid] = (now_ms, True)
            warn(f"{what} deletes {pid} at revision {rev}, more than a day ahead of this clock ({now_ms}): an "
                 "administrator's clock ran fast, and kiosks refuse a snapshot giving that revision; the deletion "
                 "is kept, at this clock's time")
        else:
            warn(f"{what} gives {pid} revision {rev}, more than a day ahead of this clock ({now_ms}): an "
                 "administrator's clock ran fast, and kiosks refuse a snapshot giving that revision (and the "
                 "record); left out: the person's older entry, if any, is signed")
    return kept


def site_people(view: SiteView, state: AdminState, exclude: set[str] | None = None) -> dict[str, tuple[int, bool]]:
    """The site's people: the retained snapshot merged with the last snapshot this administrator signed
    and with this administrator's records, newest wins (``exclude``: people whose record here is not to
    be used). An older snapshot put back on the broker thus cannot make this administrator sign away a
    change the last snapshot held. No revision beyond what kiosks take goes in (``within_horizon``)."""
    people = dict(view.people)
    last = within_horizon(state.last_snapshot_people(), view.now_ms, "the last snapshot this administrator signed",
                          view.warn)
    own = within_horizon(state.people(), view.now_ms, "this administrator's own record", view.warn)
    for pid, entry in last.items():
        if pid not in people or people[pid][0] < entry[0]:
            people[pid] = entry
    for pid, (rev, deleted) in own.items():
        if exclude and pid in exclude:
            continue
        if pid not in people or people[pid][0] < rev:
            people[pid] = (rev, deleted)
    return people


def _issue_times(view: SiteView, state: AdminState, now_ms: int) -> tuple[int, int]:
    """The retained snapshot's and this administrator's last snapshot's issue times, a new one is signed above;
    0 for one dated beyond what kiosks take (an administrator's clock ran fast): signing above it would date
    every snapshot from now on as far ahead, and kiosks with a synchronised clock refuse them."""
    horizon = now_ms + MAX_AHEAD_MS
    times = []
    for ms, what in ((view.snapshot_ms, "the retained snapshot"),
                     (state.last_snapshot_ms(), "the last snapshot this administrator signed")):
        if ms > horizon:
            view.warnings.append(f"{what} is issued at {ms}, more than a day ahead of this clock ({now_ms}): an "
                                 "administrator's clock ran fast, and kiosks refuse it; the new snapshot is dated by "
                                 "this clock")
        times.append(ms if ms <= horizon else 0)
    return times[0], times[1]


def publish_snapshot(broker: Broker, args: argparse.Namespace, signer: Signer, state: AdminState, view: SiteView,
                     now_ms: int, exclude: set[str] | None = None) -> int:
    """Re-sign and publish, retained, the site snapshot; returns its issue time."""
    retained, last = _issue_times(view, state, now_ms)
    if retained and retained < last:
        view.warnings.append(f"the retained snapshot (issued {retained}) is older than the one this "
                             f"administrator signed last ({last}): someone put an old one back on "
                             "the broker; the new snapshot keeps what the last one held")
    people = site_people(view, state, exclude)
    issued = next_revision(now_ms, retained or None, last or None)
    if issued > now_ms + MAX_AHEAD_MS:
        raise ConfigError(f"the site snapshot would be issued at {issued}, more than a day ahead of this clock: kiosks "
                          "would refuse it; check the clocks of the administrators' machines")
    keys = view.admin_keys or {signer.key_id}
    payload = sign_snapshot(signer, args.site, people, keys, issued, issued + int(args.snapshot_valid_h * HOUR_MS))
    if len(payload) > MAX_SNAPSHOT:
        raise ConfigError(f"the snapshot of {len(people)} people takes {len(payload)} bytes; kiosks take {MAX_SNAPSHOT}")
    broker.publish(view.topic("snapshot"), payload)
    state.record_snapshot(issued, payload)
    view.people, view.snapshot_ms = people, issued
    return issued


@dataclass
class AckReport:
    acked: dict[str, str] = field(default_factory=dict)  # device -> status
    refused: dict[str, str] = field(default_factory=dict)  # device -> reason
    silent: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # acks skipped: why, and on which topic


def read_acks(messages: list[tuple[str, bytes]],
              skipped: Callable[[str], None] | None = None) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """Each retained ack as its topic's levels and its JSON object. Acks are unsigned, whatever was left on
    the broker (anyone who may write the kiosks' topics, a kiosk's own credentials among them): each is
    decoded strictly, as a kiosk decodes what it receives (at most ``ACK_MAX_BYTES``, nesting counted
    first), and one that is refused or is not a JSON object is skipped and said (``skipped``, else a
    logged warning)."""
    say = skipped or logger.warning
    for topic, payload in messages:
        try:
            body = decode_strict(payload, ACK_MAX_BYTES)
        except ProtocolError as exc:
            say(f"the ack on {topic[:200]} is not readable ({exc.reason}): skipped")
            continue
        if isinstance(body, dict):
            yield topic.split("/"), body
        else:
            say(f"the ack on {topic[:200]} is not a JSON object: skipped")


def collect_acks(messages: list[tuple[str, bytes]], prefix: str, site: str, person: str, revision: int) -> AckReport:
    """Per kiosk, its answer to this revision of this person (older retained acks do not count)."""
    report = AckReport()
    ours = [(t, p) for t, p in messages if _is_ack(t.split("/"), prefix, site, person)]
    for parts, body in read_acks(ours, report.unreadable.append):
        if body.get("status") == "refused" and body.get("received_revision") in (revision, None):
            report.refused[parts[2]] = str(body.get("reason"))
        elif body.get("revision") == revision and body.get("status") in ("applied", "deleted", "current", "held"):
            report.acked[parts[2]] = str(body["status"])
            report.refused.pop(parts[2], None)
    return report


def _is_ack(parts: list[str], prefix: str, site: str, person: str) -> bool:
    return len(parts) == 5 and parts[:2] == [prefix, site] and parts[3] == "acks" and parts[4] == person
