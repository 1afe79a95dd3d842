"""Signing again what the site already holds: every record with the current key, and the snapshot on a timer.

``kiosk admin republish`` re-signs this administrator's records at a new
revision (after a key rotation), never over a newer change someone else
made; ``kiosk admin sync`` re-signs the site snapshot so it never expires
(``kiosk-admin-sync.timer``), never over evidence that the site was rolled
back unless an administrator checked it (``--force``).
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from kiosk.admin import site
from kiosk.admin.keys import load_signer
from kiosk.admin.rollback import (
    SiteRolledBackError,
    accept_override,
    check_not_rolled_back,
    find_behind,
    rolled_back_message,
    site_revisions,
)
from kiosk.admin.site import next_revision, publish_snapshot, read_site
from kiosk.admin.state import AdminState
from kiosk.mqtt.protocol import Signer, decode_embedding
from kiosk.records import Enrollment, Tombstone

__all__ = ["cmd_republish", "cmd_sync", "resign"]


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
    broker = site.Broker(args)  # looked up at call time: the seam tests replace
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
        broker = site.Broker(args)  # looked up at call time: the seam tests replace
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
