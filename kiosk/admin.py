"""``kiosk admin``: the administrator's side of enrollment sync.

Signs enrollments and deletions with an Ed25519 key, publishes them retained
(QoS 1) so every kiosk of the site converges from the broker alone, and keeps
its own record of what it published so it can republish everything (for a
new kiosk, or after a broker lost its retained store).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from kiosk.errors import ConfigError, KioskError
from kiosk.mqtt.protocol import Signer, decode_embedding
from kiosk.mqtt.topics import Topics
from kiosk.store import Enrollment, Tombstone


class BrokerError(KioskError, ConnectionError):
    exit_code = 16


def keygen(path: Path) -> Path:
    """Private key (mode 600) at ``path``, public key at ``path.pub``; returns the public key's path."""
    if path.exists():
        raise ConfigError(f"{path} exists; refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    pub = path.with_name(path.name + ".pub")
    pub.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return pub


def load_signer(path: Path) -> Signer:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return Signer(key)


class AdminState:
    """What this administrator published: the signed payload per person, newest revision."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS published (person_id TEXT PRIMARY KEY, revision INTEGER NOT NULL, "
                         "name TEXT, deleted INTEGER NOT NULL, payload BLOB NOT NULL, published_at REAL NOT NULL)")

    def next_revision(self, person_id: str, now: float) -> int:
        row = self._db.execute("SELECT revision FROM published WHERE person_id = ?", (person_id,)).fetchone()
        return max((row[0] + 1) if row else 1, int(now * 1000))

    def record(self, person_id: str, revision: int, name: str | None, deleted: bool, payload: bytes, now: float) -> None:
        self._db.execute("INSERT INTO published VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(person_id) DO UPDATE SET "
                         "revision=excluded.revision, name=excluded.name, deleted=excluded.deleted, "
                         "payload=excluded.payload, published_at=excluded.published_at",
                         (person_id, revision, name, int(deleted), payload, now))

    def rows(self) -> list[dict[str, Any]]:
        keys = ("person_id", "revision", "name", "deleted", "payload", "published_at")
        return [dict(zip(keys, r)) for r in
                self._db.execute("SELECT person_id, revision, name, deleted, payload, published_at FROM published "
                                 "ORDER BY person_id")]

    def embeddings(self) -> tuple[list[str], list[Any]]:
        """Labels and embeddings of everyone currently enrolled (for duplicate warnings)."""
        labels, rows = [], []
        for r in self.rows():
            if r["deleted"]:
                continue
            for text in json.loads(r["payload"])["embeddings"]:
                labels.append(r["person_id"])
                rows.append(decode_embedding(text))
        return labels, rows


class Broker:
    """A short-lived MQTT connection for the admin commands."""

    def __init__(self, args: argparse.Namespace) -> None:
        from kiosk.mqtt.client import make_client

        self.client = make_client(f"kiosk-admin-{os.getpid()}", tls=args.tls, ca_file=args.ca_file,
                                  cert_file=args.cert_file, key_file=args.key_file, username=args.username,
                                  password_file=args.password_file)
        self.connected = threading.Event()
        self.client.on_connect = lambda *a: self.connected.set()
        try:
            self.client.connect(args.host, args.port, keepalive=30)
        except OSError as exc:
            raise BrokerError(f"cannot reach the MQTT broker at {args.host}:{args.port}: {exc}") from exc
        self.client.loop_start()
        if not self.connected.wait(10):
            self.close()
            raise BrokerError(f"the broker at {args.host}:{args.port} did not accept the connection")

    def publish(self, topic: str, payload: bytes, retain: bool = True, timeout: float = 10.0) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise BrokerError(f"the broker did not acknowledge {topic} within {timeout:.0f} s")

    def collect(self, pattern: str, quiet_s: float = 0.5, max_s: float = 5.0) -> list[tuple[str, bytes]]:
        """Retained messages on ``pattern``: until none arrives for ``quiet_s``."""
        got: list[tuple[str, bytes]] = []
        arrived = threading.Event()

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            got.append((msg.topic, msg.payload))
            arrived.set()

        self.client.on_message = on_message
        self.client.subscribe(pattern, qos=1)
        deadline = time.monotonic() + max_s
        while time.monotonic() < deadline:
            arrived.clear()
            if not arrived.wait(quiet_s):
                break
        return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def add_broker_args(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument("--host", default=env("KIOSK_ADMIN_HOST", "localhost"))
    p.add_argument("--port", type=int, default=int(env("KIOSK_ADMIN_PORT", "1883")))
    p.add_argument("--site", default=env("KIOSK_ADMIN_SITE", "default"))
    p.add_argument("--prefix", default=env("KIOSK_ADMIN_PREFIX", "kiosk"))
    p.add_argument("--tls", action="store_true")
    p.add_argument("--ca-file", type=Path)
    p.add_argument("--cert-file", type=Path)
    p.add_argument("--key-file", type=Path)
    p.add_argument("--username", default=env("KIOSK_ADMIN_USERNAME"))
    p.add_argument("--password-file", type=Path)
    p.add_argument("--signing-key", type=Path, default=Path(env("KIOSK_ADMIN_KEY", "~/.config/kiosk-admin/admin.key"))
                   .expanduser())
    p.add_argument("--state", type=Path, default=Path(env("KIOSK_ADMIN_STATE", "~/.local/share/kiosk-admin/admin.db"))
                   .expanduser(), help="this administrator's record of what was published")


def topics_for(args: argparse.Namespace) -> Topics:
    return Topics(args.prefix, args.site, "+")


def _publish_and_record(args: argparse.Namespace, state: AdminState, revision: int, name: str | None,
                        payload: bytes, now: float) -> None:
    """Publish retained and wait for the broker's ack; only then record it as published."""
    broker = Broker(args)
    try:
        broker.publish(topics_for(args).enrollment(args.id), payload)
    finally:
        broker.close()
    state.record(args.id, revision, name, name is None, payload, now)


def cmd_enroll(args: argparse.Namespace) -> int:
    import numpy as np

    from kiosk.enrollment import embed_photos, similar_people
    from kiosk.match import Gallery
    from kiosk.vision.pipeline import build_pipeline

    signer = load_signer(args.signing_key)
    state = AdminState(args.state)
    pipeline, card = build_pipeline(args.model)
    embeddings, checks = embed_photos(pipeline, args.photos)
    for c in checks:
        print(f"  {'ok ' if c.reason is None else 'REJECTED'} {c.path}" + (f": {c.reason}" if c.reason else ""))
    if len(embeddings) < 3:
        print(f"warning: only {len(embeddings)} usable photos; 3-10 are recommended")
    labels, rows = state.embeddings()
    if rows:
        for other, score in similar_people(Gallery(np.stack(rows), labels), embeddings, card.threshold, args.id):
            print(f"warning: {args.id} already matches enrolled person {other} (similarity {score:.3f})")
    now = time.time()
    record = Enrollment(args.id, args.name, state.next_revision(args.id, now), card.fingerprint, embeddings,
                        valid_from=args.valid_from.timestamp() if args.valid_from else None,
                        valid_until=args.valid_until.timestamp() if args.valid_until else None)
    payload = signer.enrollment(args.site, record, now)
    _publish_and_record(args, state, record.revision, args.name, payload, now)
    print(f"published {args.id} ({args.name}), revision {record.revision}, {len(embeddings)} embeddings")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    signer = load_signer(args.signing_key)
    state = AdminState(args.state)
    now = time.time()
    t = Tombstone(args.id, state.next_revision(args.id, now))
    payload = signer.tombstone(args.site, t, now)
    _publish_and_record(args, state, t.revision, None, payload, now)
    print(f"published deletion of {args.id}, revision {t.revision}")
    return 0


def cmd_republish(args: argparse.Namespace) -> int:
    state = AdminState(args.state)
    broker = Broker(args)
    try:
        rows = state.rows()
        for r in rows:
            broker.publish(topics_for(args).enrollment(r["person_id"]), r["payload"])
    finally:
        broker.close()
    print(f"republished {len(rows)} records")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = AdminState(args.state).rows()
    for r in rows:
        print(f"{r['person_id']:<20} {r['name'] or '':<24} rev {r['revision']:<14} {'deleted' if r['deleted'] else ''}")
    print(f"{sum(not r['deleted'] for r in rows)} people enrolled, {sum(r['deleted'] for r in rows)} deleted")
    return 0


def status(rows: list[dict[str, Any]], acks: list[tuple[str, bytes]]) -> dict[str, dict[str, Any]]:
    """Per kiosk: which people it acknowledged at the published revision, and which it is behind on."""
    published = {r["person_id"]: r["revision"] for r in rows}
    kiosks: dict[str, dict[str, Any]] = {}
    for topic, payload in acks:
        parts = topic.split("/")
        device, person = parts[-3], parts[-1]
        try:
            body = json.loads(payload)
        except ValueError:
            continue
        k = kiosks.setdefault(device, {"current": [], "behind": [], "refused": []})
        if body.get("status") == "refused":
            k["refused"].append({"person": person, "reason": body.get("reason")})
        elif body.get("revision") == published.get(person):
            k["current"].append(person)
        else:
            k["behind"].append({"person": person, "has": body.get("revision"), "published": published.get(person)})
    for k in kiosks.values():
        seen = set(k["current"]) | {b["person"] for b in k["behind"]} | {r["person"] for r in k["refused"]}
        k["behind"] += [{"person": p, "has": None, "published": rev} for p, rev in published.items() if p not in seen]
    return kiosks


def cmd_status(args: argparse.Namespace) -> int:
    rows = AdminState(args.state).rows()
    broker = Broker(args)
    try:
        acks = broker.collect(f"{args.prefix}/{args.site}/+/acks/+")
    finally:
        broker.close()
    report = status(rows, acks)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if not report:
        print("no kiosk has acknowledged anything yet")
    for device, k in sorted(report.items()):
        flag = "up to date" if not k["behind"] and not k["refused"] else "BEHIND" if k["behind"] else "REFUSED some"
        print(f"{device:<20} {len(k['current'])} current, {len(k['behind'])} behind, {len(k['refused'])} refused: {flag}")
        for b in k["behind"]:
            print(f"    behind on {b['person']}: has {b['has']}, published {b['published']}")
        for r in k["refused"]:
            print(f"    refused {r['person']}: {r['reason']}")
    return 0


def add_parser(sub: Any, datetime_type: Any) -> None:
    admin = sub.add_parser("admin", help="administrator tools: sign and publish enrollments")
    asub = admin.add_subparsers(dest="admin_command", required=True)
    kg = asub.add_parser("keygen", help="make an Ed25519 signing key (kiosks get the .pub file)")
    kg.add_argument("--signing-key", type=Path, required=True)
    kg.set_defaults(handler=lambda a: print(f"public key for the kiosks: {keygen(a.signing_key)}") or 0)

    en = asub.add_parser("enroll", help="embed 3-10 photos, sign and publish")
    en.add_argument("--id", required=True)
    en.add_argument("--name", required=True)
    en.add_argument("--valid-from", type=datetime_type)
    en.add_argument("--valid-until", type=datetime_type)
    en.add_argument("--model", type=Path, help="the same int8 model the kiosks run")
    en.add_argument("photos", type=Path, nargs="+")
    add_broker_args(en)
    en.set_defaults(handler=cmd_enroll)

    de = asub.add_parser("delete", help="publish a signed deletion")
    de.add_argument("--id", required=True)
    add_broker_args(de)
    de.set_defaults(handler=cmd_delete)

    for name, handler, text in (("list", cmd_list, "what this administrator published"),
                                ("republish", cmd_republish, "publish every record again"),
                                ("status", cmd_status, "which kiosk acknowledged which revision")):
        p = asub.add_parser(name, help=text)
        add_broker_args(p)
        if name == "status":
            p.add_argument("--json", action="store_true")
        p.set_defaults(handler=handler)
