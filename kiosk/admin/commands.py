"""The ``kiosk admin`` commands and their argument parser."""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.admin.factor import add_factor_args, factor_fields, taken_codes
from kiosk.admin.keylist import KEY_LIST_BYTES, check_replaces, read_key_list
from kiosk.admin.rollback import (
    SiteRolledBackError,
    accept_override,
    check_not_rolled_back,
    find_behind,
    rolled_back_message,
    site_revisions,
)
from kiosk.admin.site import (
    AckReport,
    Broker,
    SiteView,
    collect_acks,
    next_revision,
    publish_snapshot,
    read_site,
)
from kiosk.admin.state import AdminState, private_file
from kiosk.errors import ConfigError, KioskError
from kiosk.mqtt.keys import (
    KeyListMsg,
    load_private_key,
    load_public_key,
    load_public_keys,
    sign_key_list,
    write_private_key,
)
from kiosk.mqtt.protocol import MAX_AHEAD_MS, Signer, decode_embedding, decode_json, validate
from kiosk.records import Enrollment, Tombstone


class SyncIncompleteError(KioskError, TimeoutError):
    """Published, but not every known kiosk acknowledged it in time."""

    exit_code = 17


def keygen(path: Path) -> Path:
    """Private key (mode 600) at ``path``, public key at ``path.pub``; returns the public key's path."""
    return write_private_key(path, Ed25519PrivateKey.generate())


def load_signer(path: Path) -> Signer:
    return Signer(load_private_key(path))


def publish_change(args: argparse.Namespace, signer: Signer, state: AdminState, person: str,
                   make: Callable[[int], tuple[bytes, str | None]], now: Callable[[], float] = time.time) -> tuple[
                       int, AckReport, SiteView]:
    """Read the site, sign at a fresh revision, publish the record then the snapshot, wait for the kiosks."""
    broker = Broker(args)
    try:
        now_ms = int(now() * 1000)
        view = read_site(broker, args, signer, state, person, now_ms)
        check_not_rolled_back(broker, view, state, args, exclude={person})
        revision = next_revision(now_ms, view.enrollments.get(person), view.people.get(person, (None, False))[0],
                                 state.revision(person))
        if revision > now_ms + MAX_AHEAD_MS:
            raise ConfigError(f"{person} already has revision {revision - 1}, more than a day ahead of this clock: "
                              "check the clocks of the administrators' machines")
        payload, name = make(revision)
        broker.subscribe(view.topic(f"+/acks/{person}"))
        broker.publish(view.topic(f"enrollments/{person}"), payload)
        state.record(person, revision, name, name is None, payload, now())
        publish_snapshot(broker, args, signer, state, view, now_ms)
        known = set(view.kiosks)
        broker.wait_for(lambda m: known <= set(_answered(m, args, person, revision)), args.wait)
        report = collect_acks(broker.messages, args.prefix, args.site, person, revision)
        report.silent = sorted(known - set(report.acked) - set(report.refused))
    finally:
        broker.close()
    return revision, report, view


def _answered(messages: list[tuple[str, bytes]], args: argparse.Namespace, person: str, revision: int) -> list[str]:
    r = collect_acks(messages, args.prefix, args.site, person, revision)
    return [*r.acked, *r.refused]


def print_report(what: str, revision: int, report: AckReport, view: SiteView) -> int:
    for w in view.warnings:
        print(f"warning: {w}")
    print(f"published {what}, revision {revision}; snapshot re-signed")
    for device, status in sorted(report.acked.items()):
        note = " (kept; admitted once the kiosk holds a current snapshot, as the one just signed)" \
            if status == "held" else ""
        print(f"  {device:<20} {status}{note}")
    for device, reason in sorted(report.refused.items()):
        print(f"  {device:<20} REFUSED: {reason}")
    for device in report.silent:
        print(f"  {device:<20} no answer ({view.kiosks.get(device, '?')})")
    if not view.kiosks:
        print("  no kiosk of this site has announced itself on the broker yet")
    if report.silent or report.refused:
        raise SyncIncompleteError(f"{len(report.silent)} kiosk(s) silent ({', '.join(report.silent) or '-'}), "
                             f"{len(report.refused)} refused; the record stays retained: they apply it when they "
                             "reconnect (`kiosk admin status` shows who is behind)")
    return 0


def sign_enrollment(signer: Signer, site: str, person_id: str, name: str, fingerprint: str, embeddings: Any, *,
                    held_revision: int | None = None, valid_from: float | None = None,
                    valid_until: float | None = None, now: float | None = None) -> bytes:
    """A signed enrollment at a fresh revision (for a local ``kiosk enroll`` with an administrator key)."""
    revision = next_revision(int((time.time() if now is None else now) * 1000), held_revision)
    return signer.enrollment(site, Enrollment(person_id, name, revision, fingerprint, embeddings,
                                              valid_from=valid_from, valid_until=valid_until))


def cmd_enroll(args: argparse.Namespace) -> int:
    import numpy as np

    from kiosk.enrollment import TEMPLATE_KIND, duplicate_people, embed_photos, template_from_embeddings
    from kiosk.match import Gallery
    from kiosk.vision.pipeline import build_pipeline

    signer = load_signer(args.signing_key)
    state = AdminState(args.state)
    factor = factor_fields(args, taken=taken_codes(state.rows()))  # before the photos: a bad PIN fails fast
    pipeline, card = build_pipeline(args.model)
    photo_rows, checks = embed_photos(pipeline, args.photos)
    for c in checks:
        print(f"  {'ok ' if c.reason is None else 'REJECTED'} {c.path}" + (f": {c.reason}" if c.reason else ""))
    if len(photo_rows) < 3:
        print(f"warning: only {len(photo_rows)} usable photos; 3-10 are recommended")
    # one template per person; refused when the photos disagree (likely two different people)
    template = template_from_embeddings(photo_rows, checks=checks)
    embeddings = template.row()
    labels, rows = state.embeddings()
    if rows:
        for other, score in duplicate_people(Gallery(np.concatenate([np.atleast_2d(r) for r in rows]), labels),
                                             template.template, exclude=args.id):
            print(f"warning: {args.id} would be taken for enrolled person {other} (similarity {score:.3f})")

    def make(revision: int) -> tuple[bytes, str | None]:
        record = Enrollment(args.id, args.name, revision, card.fingerprint, embeddings,
                            valid_from=args.valid_from.timestamp() if args.valid_from else None,
                            valid_until=args.valid_until.timestamp() if args.valid_until else None,
                            template=TEMPLATE_KIND, **factor)
        return signer.enrollment(args.site, record), args.name

    revision, report, view = publish_change(args, signer, state, args.id, make)
    extras = "".join(f", {label}" for key, label in (("pin_verifier", "PIN"), ("user_code", "user code"),
                                                     ("cards", "cards")) if key in factor)
    return print_report(f"{args.id} ({args.name}, one template from {template.photos} photos{extras})", revision,
                        report, view)


def cmd_delete(args: argparse.Namespace) -> int:
    signer = load_signer(args.signing_key)
    state = AdminState(args.state)
    revision, report, view = publish_change(
        args, signer, state, args.id, lambda rev: (signer.tombstone(args.site, Tombstone(args.id, rev)), None))
    return print_report(f"the deletion of {args.id}", revision, report, view)


def resign(signer: Signer, site: str, payload: bytes, revision: int) -> bytes:
    """The same record, signed again by ``signer`` at ``revision`` (any older format)."""
    body = json.loads(payload)
    if body.get("type") == "tombstone":
        return signer.tombstone(site, Tombstone(body["person_id"], revision))
    import numpy as np

    from kiosk.enrollment import TEMPLATE_KIND
    from kiosk.match import fuse_rows

    rows = np.stack([decode_embedding(t) for t in body["embeddings"]])
    rows = rows if len(rows) == 1 else fuse_rows(rows)[None, :]  # older per-photo records migrate to one template
    return signer.enrollment(site, Enrollment(body["person_id"], body["name"], revision, body["model_fingerprint"], rows,
                                              bool(body.get("enabled", True)), body.get("valid_from"),
                                              body.get("valid_until"), pin_verifier=body.get("pin_verifier"),
                                              duress_verifier=body.get("duress_verifier"),
                                              user_code=body.get("user_code"), cards=tuple(body.get("cards") or ()),
                                              template=TEMPLATE_KIND))


def cmd_republish(args: argparse.Namespace) -> int:
    """Every record this administrator published, re-signed with the current key at a new revision."""
    signer = load_signer(args.signing_key)
    state = AdminState(args.state)
    broker = Broker(args)
    try:
        view = read_site(broker, args, signer, state)
        check_not_rolled_back(broker, view, state, args)
        newer = site_revisions(broker, view)
        now_ms = int(time.time() * 1000)
        rows = state.rows()
        skipped: dict[str, str] = {}
        for r in rows:
            pid = r["person_id"]
            held = newer.get(pid)
            if held is not None and held[0] > r["revision"]:
                # Somebody changed (or deleted) this person after this state file's record: re-signing the
                # older record above it would undo that change on every kiosk.
                skipped[pid] = f"{'deleted' if held[1] else 'changed'} at {held[0]}, after this record's {r['revision']}"
                continue
            revision = next_revision(now_ms, r["revision"], view.people.get(pid, (None, False))[0])
            payload = resign(signer, args.site, r["payload"], revision)
            broker.publish(view.topic(f"enrollments/{pid}"), payload)
            state.record(pid, revision, r["name"], bool(r["deleted"]), payload, time.time())
        publish_snapshot(broker, args, signer, state, view, now_ms, exclude=set(skipped))
    finally:
        broker.close()
    for w in view.warnings:
        print(f"warning: {w}")
    for pid, why in sorted(skipped.items()):
        print(f"warning: {pid} not republished: the site holds a newer change ({why}); republish it from the "
              "state file that made that change, or enrol the person again")
    print(f"re-signed and republished {len(rows) - len(skipped)} of {len(rows)} records with key {signer.key_id}; "
          "snapshot re-signed")
    if skipped:
        # what the skip read is not verified: a record or ack put on the broker can hold a person back, so say so
        raise SiteRolledBackError(f"{len(skipped)} people not republished (above); if the newer change shown is not "
                                  "one an administrator made, someone put it on the broker: check before signing them "
                                  "again")
    return 0


def cmd_sync(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Re-sign the site snapshot (merging the retained one), once or every ``--every`` seconds."""
    signer = load_signer(args.signing_key)
    state = AdminState(args.state)
    stop = stop or threading.Event()
    while True:
        broker = Broker(args)
        try:
            view = read_site(broker, args, signer, state)
            found = find_behind(broker, view, state)
            if found.people and getattr(args, "force", False):
                accept_override(state, found)
            behind = {} if getattr(args, "force", False) else found.people
            issued = None if behind else publish_snapshot(broker, args, signer, state, view, int(time.time() * 1000))
        finally:
            broker.close()
        for w in view.warnings:
            print(f"warning: {w}")
        if behind:
            if not args.every:
                raise SiteRolledBackError(rolled_back_message(behind))
            print(f"warning: {rolled_back_message(behind)}")
        else:
            print(f"snapshot of {len(view.people)} people signed at {issued}, valid {args.snapshot_valid_h:g} h; "
                  f"{len(view.kiosks)} kiosks known")
        if not args.every or stop.wait(args.every):
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
        if not isinstance(body, dict):
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
        acks = broker.retained(f"{args.prefix}/{args.site}/+/acks/+")
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


def cmd_keys_sign(args: argparse.Namespace) -> int:
    """Offline: the root signs the list of administrator keys valid from now on."""
    root = load_signer(args.root_key)
    admins = load_public_keys(args.admin)
    revoked = set(args.revoke or ())
    issued = int(time.time() * 1000)
    if args.previous is not None:
        prev = read_key_list(args.previous.read_bytes(), root.private.public_key(), args.site)
        revoked |= set(prev.revoked) | (set(prev.keys) - set(admins))
        issued = next_revision(issued, prev.issued_at_ms)
    revoked -= set(admins)
    payload = sign_key_list(root, args.site, admins, issued, frozenset(revoked),
                            {kid: name for kid, name in zip(admins, (p.stem for p in args.admin))})
    private_file(args.out)
    args.out.write_bytes(payload)
    print(f"key list for site {args.site} signed by root {root.key_id} at {issued}: admin keys {sorted(admins)}, "
          f"revoked {sorted(revoked)}; publish it with `kiosk admin keys publish {args.out}`")
    return 0


def cmd_keys_publish(args: argparse.Namespace) -> int:
    payload = args.file.read_bytes()
    msg: KeyListMsg = validate(KeyListMsg, decode_json(payload, KEY_LIST_BYTES))
    root = load_public_key(args.root_pub) if args.root_pub else None
    if root is not None:
        read_key_list(payload, root, args.site)
    if msg.site != args.site:
        raise ConfigError(f"{args.file} is the key list of site {msg.site!r}, not {args.site!r}")
    topic = f"{args.prefix}/{args.site}/keys"
    broker = Broker(args)
    try:
        held = dict(broker.retained(topic)).get(topic)
        warning = check_replaces(held, msg.issued_at_ms, root, args.site, str(args.file)) if held else None
        broker.publish(topic, payload)
    finally:
        broker.close()
    if warning:
        print(f"warning: {warning}")
    print(f"published the key list of {msg.issued_at_ms}: {len(msg.keys)} admin keys, {len(msg.revoked)} revoked")
    return 0


def cmd_root_keygen(args: argparse.Namespace) -> int:
    pub = keygen(args.root_key)
    print(f"site root key written to {args.root_key} (keep it offline); install {pub} on every kiosk as "
          "the trust.root_key file")
    return 0


def add_broker_args(p: argparse.ArgumentParser, signing: bool = True) -> None:
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
    p.add_argument("--password-file", type=Path, default=env("KIOSK_ADMIN_PASSWORD_FILE"))
    p.add_argument("--root-pub", type=Path, default=env("KIOSK_ADMIN_ROOT_PUB"),
                   help="the site root's public key: verify the retained key list with it")
    if signing:
        p.add_argument("--signing-key", type=Path,
                       default=Path(env("KIOSK_ADMIN_KEY", "~/.config/kiosk-admin/admin.key")).expanduser())
        p.add_argument("--state", type=Path,
                       default=Path(env("KIOSK_ADMIN_STATE", "~/.local/share/kiosk-admin/admin.db")).expanduser(),
                       help="this administrator's record of what was published (mode 600)")
        p.add_argument("--snapshot-valid-h", type=float, default=float(env("KIOSK_ADMIN_SNAPSHOT_VALID_H", "72")),
                       help="hours a signed snapshot stays valid; `kiosk admin sync` must run more often")
        p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for every known kiosk's ack")
        p.add_argument("--force", action="store_true",
                       help="sign the site snapshot even when kiosks' acks or retained records say someone holds a "
                            "newer change than it would (exit 18 otherwise): only after checking that they are "
                            "wrong, as they are not signed")


def add_parser(sub: Any, datetime_type: Any) -> None:
    admin = sub.add_parser("admin", help="administrator tools: keys, signed enrollments, the site snapshot")
    asub = admin.add_subparsers(dest="admin_command", required=True)
    kg = asub.add_parser("keygen", help="make an administrator's Ed25519 signing key (KEY and KEY.pub)")
    kg.add_argument("--signing-key", type=Path, required=True)
    kg.set_defaults(handler=lambda a: print(f"public key: {keygen(a.signing_key)} (add it to the site's key list "
                                            "with `kiosk admin keys sign`, or copy it into the kiosks' "
                                            "admin-keys folder when no root key is used)") or 0)
    rk = asub.add_parser("root-keygen", help="make the site root key (offline; kiosks pin ROOT.pub)")
    rk.add_argument("--root-key", type=Path, required=True)
    rk.set_defaults(handler=cmd_root_keygen)

    keys = asub.add_parser("keys", help="the root-signed list of administrator keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    ks = ksub.add_parser("sign", help="offline: sign the list of administrator keys valid from now on")
    ks.add_argument("--root-key", type=Path, required=True)
    ks.add_argument("--site", default=os.environ.get("KIOSK_ADMIN_SITE", "default"))
    ks.add_argument("--admin", type=Path, action="append", required=True, help="an administrator's .pub/.pem (repeat)")
    ks.add_argument("--revoke", action="append", help="key id to revoke (repeat)")
    ks.add_argument("--previous", type=Path, help="the list this one replaces: keys it had and this one has not "
                                                  "are revoked")
    ks.add_argument("--out", type=Path, required=True)
    ks.set_defaults(handler=cmd_keys_sign)
    kp = ksub.add_parser("publish", help="publish a signed key list, retained")
    kp.add_argument("file", type=Path)
    add_broker_args(kp, signing=False)
    kp.set_defaults(handler=cmd_keys_publish)

    en = asub.add_parser("enroll", help="embed 3-10 photos, sign, publish, re-sign the snapshot, wait for the kiosks")
    en.add_argument("--id", required=True)
    en.add_argument("--name", required=True)
    en.add_argument("--valid-from", type=datetime_type)
    en.add_argument("--valid-until", type=datetime_type)
    en.add_argument("--model", type=Path, help="the same int8 model the kiosks run")
    en.add_argument("photos", type=Path, nargs="+")
    add_factor_args(en)
    add_broker_args(en)
    en.set_defaults(handler=cmd_enroll)

    de = asub.add_parser("delete", help="publish a signed deletion, re-sign the snapshot, wait for the kiosks")
    de.add_argument("--id", required=True)
    add_broker_args(de)
    de.set_defaults(handler=cmd_delete)

    sy = asub.add_parser("sync", help="re-sign the site snapshot (run by kiosk-admin-sync.timer)")
    sy.add_argument("--every", type=float, help="keep running, re-signing every EVERY seconds")
    add_broker_args(sy)
    sy.set_defaults(handler=cmd_sync)

    for name, handler, text in (("list", cmd_list, "what this administrator published"),
                                ("republish", cmd_republish, "re-sign every record with the current key and publish"),
                                ("status", cmd_status, "which kiosk acknowledged which revision")):
        p = asub.add_parser(name, help=text)
        add_broker_args(p)
        if name == "status":
            p.add_argument("--json", action="store_true")
        p.set_defaults(handler=handler)
