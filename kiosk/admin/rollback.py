"""Whether the broker holds an older site state than the kiosks: evidence read unverified, used only to
hold a signature back.

An administrator signs the site snapshot from the retained one merged with their own records. Someone who
can write retained topics can put an older snapshot back; re-signing it would hand new kiosks a deleted
person's old state. The kiosks' acks and the retained records (neither verified here) show newer changes:
they can stop a signature (``SiteRolledBackError``, exit 18) but never go into what is signed. ``--force``
signs after an administrator checked, and the revisions it overrode hold no later run back.
"""

from __future__ import annotations

import argparse
import time

from kiosk.admin.site import Broker, SiteView, site_people
from kiosk.admin.state import AdminState
from kiosk.errors import KioskError
from kiosk.mqtt.protocol import MAX_AHEAD_MS, ProtocolError, decode_json
from kiosk.mqtt.snapshot import MAX_SNAPSHOT


class SiteRolledBackError(KioskError):
    """The broker's snapshot is older than what the kiosks hold: nothing was signed."""

    exit_code = 18


def check_not_rolled_back(broker: Broker, view: SiteView, state: AdminState, args: argparse.Namespace,
                          exclude: set[str] | None = None) -> None:
    """Raise ``SiteRolledBackError`` when the snapshot this administrator would sign is older, for someone
    other than ``exclude``, than what kiosks ack or the broker's records say (unless ``--force``)."""
    behind = {pid: v for pid, v in rolled_back(broker, view, state).items() if not exclude or pid not in exclude}
    if behind and getattr(args, "force", False):
        accept_override(state, behind)
    elif behind:
        raise SiteRolledBackError(rolled_back_message(behind))


def accept_override(state: AdminState, behind: dict[str, tuple[int, int]]) -> None:
    """--force: sign anyway, and remember the evidence overridden so that it holds no later run back."""
    state.override({pid: seen for pid, (_, seen) in behind.items()}, time.time())
    print(f"warning: --force: signing over what kiosks' acks or records say for {len(behind)} people "
          f"({', '.join(sorted(behind)[:10])}); later runs ignore these revisions")


def rolled_back_message(behind: dict[str, tuple[int, int]]) -> str:
    detail = ", ".join(f"{pid} (snapshot {old}, seen {new})" for pid, (old, new) in sorted(behind.items())[:10])
    return (f"not signed: the site's retained snapshot is older than what kiosks hold or the broker's records say "
            f"for {len(behind)} people: {detail}. Someone may have put an old snapshot back on the broker; signing it "
            "again would hand their old state to new kiosks. Sign from the state file of the administrator who made "
            "those changes (kiosk admin sync --state ...); if no administrator made them, the acks or records are "
            "forged (they are not signed): check, then run again with --force")


def site_revisions(broker: Broker, view: SiteView, snapshot: bool = True) -> dict[str, tuple[int, bool]]:
    """Each person's newest known change on the broker, (revision, deleted): the retained records, the
    kiosks' retained acks (what they hold, which an older record put back on the broker does not undo) and
    (``snapshot``) the retained snapshot, read without checking their signatures: they only ever hold a
    publication back (a record signed by a key rotated out since must still stop an older one being
    re-signed), never go into what is signed."""
    newest: dict[str, tuple[int, bool]] = dict(view.people) if snapshot else {}

    horizon = int(time.time() * 1000) + MAX_AHEAD_MS  # kiosks refuse records issued further ahead: so is this

    def see(pid: str, rev: object, deleted: object) -> None:
        if (isinstance(rev, int) and not isinstance(rev, bool) and rev <= horizon
                and (pid not in newest or newest[pid][0] < rev)):
            newest[pid] = (rev, bool(deleted))

    root = view.topic("enrollments/")
    patterns = [view.topic("enrollments/+"), view.topic("+/acks/+")] + ([view.topic("snapshot")] if snapshot else [])
    for topic, payload in broker.retained(*patterns):
        try:
            body = decode_json(payload, MAX_SNAPSHOT) if payload else None
        except ProtocolError:
            continue
        if not isinstance(body, dict):
            continue
        parts = topic.split("/")
        if topic.startswith(root) and isinstance(body.get("person_id"), str):
            see(body["person_id"], body.get("issued_at_ms"), body.get("type") == "tombstone")
        elif len(parts) == 5 and parts[3] == "acks" and body.get("status") in ("applied", "deleted", "current", "held"):
            see(parts[4], body.get("revision"), body.get("status") == "deleted")
        elif topic == view.topic("snapshot") and isinstance(body.get("people"), dict):
            for pid, entry in body["people"].items():
                if isinstance(entry, list) and len(entry) == 2:
                    see(pid, entry[0], entry[1] is True)
    return newest


def rolled_back(broker: Broker, view: SiteView, state: AdminState) -> dict[str, tuple[int, int]]:
    """People whose entry in the snapshot this administrator would sign now is older than what a kiosk
    acknowledges holding, or than their retained record: person -> (revision to be signed, newer one seen).
    Someone put an older snapshot back on the broker (and maybe the person's older record): signing it
    again would give kiosks that start afresh the person's old state."""
    people = site_people(view, state)
    seen = site_revisions(broker, view, snapshot=False)
    overridden = state.overridden()
    signed = {pid: people[pid][0] if pid in people else 0 for pid in seen}  # absent: the snapshot says nothing
    return {pid: (signed[pid], rev) for pid, (rev, _) in seen.items()
            if rev > signed[pid] and rev > overridden.get(pid, 0)}
