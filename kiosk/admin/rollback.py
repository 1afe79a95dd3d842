"""Whether the broker holds an older site state than the kiosks: evidence read unverified, used only to
hold a signature back.

An administrator signs the site snapshot from the retained one merged with their own records. Someone who
can write retained topics can put an older snapshot back; re-signing it would hand new kiosks a deleted
person's old state. The kiosks' acks and the retained records (neither verified here) show newer changes:
they can stop a signature (``SiteRolledBackError``, exit 18) but never go into what is signed. ``--force``
signs after an administrator checked, and exactly the evidence it overrode (each ack or record as it was) holds
no later run back; any other still does.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

from kiosk.admin.site import Broker, SiteView, site_people
from kiosk.admin.state import AdminState
from kiosk.errors import KioskError
from kiosk.mqtt.protocol import MAX_AHEAD_MS, ProtocolError, decode_json
from kiosk.mqtt.snapshot import MAX_SNAPSHOT


class SiteRolledBackError(KioskError):
    """The broker's snapshot is older than what the kiosks hold: nothing was signed."""

    exit_code = 18


@dataclass(frozen=True)
class Evidence:
    """One unsigned sign of a person's newer change: a kiosk's retained ack, a retained record, or an entry of
    the retained snapshot read without its signature."""

    person: str
    revision: int
    status: str  # the ack's status; the record's type (enrollment, tombstone); the entry's (enrolled, deleted)
    source: str  # the topic it was read on

    @property
    def deleted(self) -> bool:
        return self.status in ("deleted", "tombstone")


@dataclass
class Behind:
    """People whose entry in the snapshot to be signed is older than unsigned evidence says, and that evidence."""

    people: dict[str, tuple[int, int]] = field(default_factory=dict)  # person -> (to be signed, newest seen)
    evidence: list[Evidence] = field(default_factory=list)


def check_not_rolled_back(broker: Broker, view: SiteView, state: AdminState, args: argparse.Namespace,
                          exclude: set[str] | None = None) -> None:
    """Raise ``SiteRolledBackError`` when the snapshot this administrator would sign is older, for someone
    other than ``exclude``, than what kiosks ack or the broker's records say (unless ``--force``)."""
    behind = find_behind(broker, view, state, exclude)
    if behind.people and getattr(args, "force", False):
        accept_override(state, behind)
    elif behind.people:
        raise SiteRolledBackError(rolled_back_message(behind.people))


def accept_override(state: AdminState, behind: Behind) -> None:
    """--force: sign anyway, and remember exactly the evidence overridden (each ack or record: its topic,
    revision and status) so that it holds no later run back; any other evidence still does."""
    state.override([(e.person, e.source, e.revision, e.status) for e in behind.evidence], time.time())
    people = behind.people
    print(f"warning: --force: signing over what kiosks' acks or records say for {len(people)} people "
          f"({', '.join(sorted(people)[:10])}); later runs ignore these revisions from these same acks and "
          "records, and are held back by any other")


def rolled_back_message(behind: dict[str, tuple[int, int]]) -> str:
    detail = ", ".join(f"{pid} (snapshot {old}, seen {new})" for pid, (old, new) in sorted(behind.items())[:10])
    return (f"not signed: the site's retained snapshot is older than what kiosks hold or the broker's records say "
            f"for {len(behind)} people: {detail}. Someone may have put an old snapshot back on the broker; signing it "
            "again would hand their old state to new kiosks. Sign from the state file of the administrator who made "
            "those changes (kiosk admin sync --state ...); if no administrator made them, the acks or records are "
            "forged (they are not signed): check, then run again with --force")


def evidence(broker: Broker, view: SiteView, snapshot: bool = True) -> list[Evidence]:
    """Every sign of a person's change on the broker: the retained records, the kiosks' retained acks (what
    they hold, which an older record put back on the broker does not undo) and (``snapshot``) the retained
    snapshot's entries, read without checking their signatures, up to a day ahead of this clock (kiosks refuse
    records issued further ahead: so is this)."""
    horizon = int(time.time() * 1000) + MAX_AHEAD_MS
    found: list[Evidence] = []

    def see(pid: str, rev: object, status: str, source: str) -> None:
        if isinstance(rev, int) and not isinstance(rev, bool) and rev <= horizon:
            found.append(Evidence(pid, rev, status, source))

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
            see(body["person_id"], body.get("issued_at_ms"),
                "tombstone" if body.get("type") == "tombstone" else "enrollment", topic)
        elif len(parts) == 5 and parts[3] == "acks" and body.get("status") in ("applied", "deleted", "current", "held"):
            see(parts[4], body.get("revision"), str(body["status"]), topic)
        elif topic == view.topic("snapshot") and isinstance(body.get("people"), dict):
            for pid, entry in body["people"].items():
                if isinstance(entry, list) and len(entry) == 2:
                    see(pid, entry[0], "deleted" if entry[1] is True else "enrolled", topic)
    return found


def site_revisions(broker: Broker, view: SiteView, snapshot: bool = True) -> dict[str, tuple[int, bool]]:
    """Each person's newest known change on the broker, (revision, deleted): the verified snapshot read and
    the ``evidence``. Unsigned, it only ever holds a publication back (a record signed by a key rotated out
    since must still stop an older one being re-signed), never goes into what is signed."""
    newest: dict[str, tuple[int, bool]] = dict(view.people) if snapshot else {}
    for e in evidence(broker, view, snapshot):
        if e.person not in newest or newest[e.person][0] < e.revision:
            newest[e.person] = (e.revision, e.deleted)
    return newest


def find_behind(broker: Broker, view: SiteView, state: AdminState, exclude: set[str] | None = None) -> Behind:
    """People (other than ``exclude``) whose entry in the snapshot this administrator would sign now is older
    than what a kiosk acknowledges holding, or than their retained record, leaving out the evidence an
    administrator overrode (``--force``). Someone put an older snapshot back on the broker (and maybe the
    person's older record): signing it again would give kiosks that start afresh the person's old state."""
    people = site_people(view, state)
    overridden = state.overridden()
    behind = Behind()
    for e in evidence(broker, view, snapshot=False):
        if (exclude and e.person in exclude) or (e.person, e.source, e.revision, e.status) in overridden:
            continue
        signed = people[e.person][0] if e.person in people else 0  # absent: the snapshot says nothing
        if e.revision > signed:
            behind.evidence.append(e)
            seen = max(e.revision, behind.people.get(e.person, (0, 0))[1])
            behind.people[e.person] = (signed, seen)
    return behind


def rolled_back(broker: Broker, view: SiteView, state: AdminState) -> dict[str, tuple[int, int]]:
    """People whose entry in the snapshot to be signed is older than the evidence says: person -> (revision
    to be signed, newest seen) (``find_behind``)."""
    return find_behind(broker, view, state).people
