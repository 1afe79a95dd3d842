"""What the broker holds unsigned (a person's retained record read for its revision, kiosks' acks) can hold an
administrator's signature back, within bounds: never stop a change for good, never hide a genuine one."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kiosk.admin import AdminState, cmd_sync, collect_acks, publish_change
from kiosk.admin.commands import cmd_delete
from kiosk.admin.overview import status
from kiosk.admin.rollback import SiteRolledBackError
from kiosk.errors import ConfigError
from kiosk.mqtt.core import SyncCore
from kiosk.mqtt.topics import Topics
from kiosk.records import Enrollment, Tombstone
from tests import retained_broker
from tests.site import DAY_MS, FP, SITE, Kiosk, Site, emb

TOPICS = Topics("kiosk", SITE, "door1")


def test_an_unsigned_record_dated_far_ahead_does_not_stop_a_deletion(
        tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Someone who can write on the broker leaves junk on bob's record topic claiming a revision 30 days ahead:
    kiosks refuse it (unsigned) and keep admitting bob; the administrator still deletes him."""
    broker = retained_broker.install(monkeypatch)
    now = int(time.time() * 1000)
    bob = site.enrollment("bob", now - 20 * DAY_MS)
    broker.topics.update({"kiosk/hq/keys": site.key_list(now - 30 * DAY_MS),
                          "kiosk/hq/snapshot": site.snapshot({"bob": (now - 20 * DAY_MS, False)}, now - DAY_MS),
                          "kiosk/hq/enrollments/bob": bob})
    args = retained_broker.admin_args(tmp_path, "alice", site.admin, tmp_path / "root.key.pub", id="bob")
    AdminState(args.state).record("bob", now - 20 * DAY_MS, "Bob", False, bob, time.time())
    k = Kiosk(site, tmp_path / "k.db", os.urandom(32), require_snapshot=True)
    k.wall.now = time.time()
    core = SyncCore(TOPICS, k.store, k.trust)
    junk = json.dumps({"person_id": "bob", "issued_at_ms": now + 30 * DAY_MS}).encode()
    for topic, payload in (("kiosk/hq/keys", broker.topics["kiosk/hq/keys"]),
                           ("kiosk/hq/snapshot", broker.topics["kiosk/hq/snapshot"]),
                           ("kiosk/hq/enrollments/bob", bob), ("kiosk/hq/enrollments/bob", junk)):
        core.handle(topic, payload, 0.0)
    broker.topics["kiosk/hq/enrollments/bob"] = junk
    assert k.admitted() == {"bob"}

    assert cmd_delete(args) == 0
    assert "the retained record of bob claims revision" in capsys.readouterr().out
    tombstone = json.loads(broker.topics["kiosk/hq/enrollments/bob"])
    assert tombstone["type"] == "tombstone" and now <= tombstone["issued_at_ms"] < now + DAY_MS
    core.handle("kiosk/hq/snapshot", broker.topics["kiosk/hq/snapshot"], 1.0)
    core.handle("kiosk/hq/enrollments/bob", broker.topics["kiosk/hq/enrollments/bob"], 1.0)
    assert k.admitted() == set()


def test_a_signed_record_dated_far_ahead_asks_for_the_clocks_to_be_checked(
        tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """An administrator whose clock ran days fast signed it: signing above it would date this change as far
    ahead, which kiosks refuse, so nothing is signed and the clocks are named."""
    broker = retained_broker.install(monkeypatch)
    now = int(time.time() * 1000)
    broker.topics.update({"kiosk/hq/keys": site.key_list(now - 30 * DAY_MS),
                          "kiosk/hq/enrollments/bob": site.enrollment("bob", now + 3 * DAY_MS, signer=site.admins[1])})
    args = retained_broker.admin_args(tmp_path, "alice", site.admin, tmp_path / "root.key.pub", id="bob")
    with pytest.raises(ConfigError, match="check the clocks"):
        cmd_delete(args)
    assert json.loads(broker.topics["kiosk/hq/enrollments/bob"])["type"] == "enrollment"


def _ack(pid: str, device: str, status: str, revision: int) -> bytes:
    return json.dumps({"person_id": pid, "device": device, "status": status, "revision": revision}).encode()


def test_forcing_past_a_forged_ack_does_not_hide_a_later_genuine_deletion(
        tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alice forces once past a forged ack (ann deleted, 20 h ahead). An hour later Bert really deletes ann and
    door1 acknowledges it; then someone puts Alice's old snapshot and ann's old record back on the broker.
    Door1's ack is other evidence than the one Alice overrode: her timer signs nothing."""
    broker = retained_broker.install(monkeypatch)
    alice, bert = site.admins
    root_pub = tmp_path / "root.key.pub"
    now = int(time.time() * 1000)
    broker.topics["kiosk/hq/keys"] = site.key_list(now - 10 * DAY_MS)
    a_args = retained_broker.admin_args(tmp_path, "alice", alice, root_pub)
    b_args = retained_broker.admin_args(tmp_path, "bert", bert, root_pub)
    short = retained_broker.admin_args(tmp_path, "alice", alice, root_pub, snapshot_valid_h=0.001)
    publish_change(short, alice, AdminState(a_args.state), "ann",
                   lambda r: (alice.enrollment(SITE, Enrollment("ann", "Ann", r, FP, emb(1))), "Ann"))
    old_snapshot, old_ann = broker.topics["kiosk/hq/snapshot"], broker.topics["kiosk/hq/enrollments/ann"]

    broker.topics["kiosk/hq/ghost/acks/ann"] = _ack("ann", "ghost", "deleted", now + 20 * 3_600_000)
    with pytest.raises(SiteRolledBackError, match="ann"):
        cmd_sync(a_args)
    assert cmd_sync(retained_broker.admin_args(tmp_path, "alice", alice, root_pub, force=True)) == 0
    assert cmd_sync(a_args) == 0  # the same forged ack holds nothing back any more
    del broker.topics["kiosk/hq/ghost/acks/ann"]

    publish_change(b_args, bert, AdminState(b_args.state), "ann",
                   lambda r: (bert.tombstone(SITE, Tombstone("ann", r)), None), now=lambda: time.time() + 3600)
    deleted = json.loads(broker.topics["kiosk/hq/enrollments/ann"])["issued_at_ms"]
    broker.topics["kiosk/hq/door1/acks/ann"] = _ack("ann", "door1", "deleted", deleted)
    broker.topics.update({"kiosk/hq/snapshot": old_snapshot, "kiosk/hq/enrollments/ann": old_ann})
    with pytest.raises(SiteRolledBackError, match="ann"):
        cmd_sync(a_args)
    assert broker.topics["kiosk/hq/snapshot"] == old_snapshot

    k = Kiosk(site, tmp_path / "k.db", os.urandom(32), require_snapshot=True)
    k.wall.now = time.time() + 10  # the old snapshot put back has expired: alone, it admits nobody
    core = SyncCore(TOPICS, k.store, k.trust)
    for topic in ("kiosk/hq/keys", "kiosk/hq/snapshot", "kiosk/hq/enrollments/ann"):
        core.handle(topic, broker.topics[topic], 0.0)
    assert k.admitted() == set()


def test_an_override_is_of_that_ack_only_and_a_new_forgery_holds_back_again(
        tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """What --force remembers is the ack as it was (topic, revision, status): the same ghost publishing
    another revision, or another device the same one, holds the administrators back again."""
    broker = retained_broker.install(monkeypatch)
    root_pub = tmp_path / "root.key.pub"
    now = int(time.time() * 1000)
    broker.topics["kiosk/hq/keys"] = site.key_list(now - 10 * DAY_MS)
    args = retained_broker.admin_args(tmp_path, "alice", site.admin, root_pub)
    publish_change(args, site.admin, AdminState(args.state), "ann",
                   lambda r: (site.admin.enrollment(SITE, Enrollment("ann", "Ann", r, FP, emb(1))), "Ann"))
    forged = now + 3_600_000
    broker.topics["kiosk/hq/ghost/acks/ann"] = _ack("ann", "ghost", "deleted", forged)
    assert cmd_sync(retained_broker.admin_args(tmp_path, "alice", site.admin, root_pub, force=True)) == 0
    assert cmd_sync(args) == 0
    overridden = broker.topics["kiosk/hq/ghost/acks/ann"]
    for topic, payload in (("kiosk/hq/ghost/acks/ann", _ack("ann", "ghost", "deleted", forged - 1)),
                           ("kiosk/hq/ghost/acks/ann", _ack("ann", "ghost", "applied", forged)),
                           ("kiosk/hq/door2/acks/ann", _ack("ann", "door2", "deleted", forged))):
        broker.topics.pop("kiosk/hq/door2/acks/ann", None)
        broker.topics["kiosk/hq/ghost/acks/ann"] = overridden
        broker.topics[topic] = payload  # one ack other than the one overridden
        with pytest.raises(SiteRolledBackError, match="ann"):
            cmd_sync(args)


NESTED = b"[" * 4_000 + b"]" * 4_000  # small enough for an ack, too deep for a recursive decoder


def test_a_nested_or_oversized_ack_left_on_the_broker_is_skipped_and_said_by_status_and_the_ack_wait(
        caplog: pytest.LogCaptureFixture) -> None:
    """Acks are unsigned: whatever a kiosk's credentials left retained, `kiosk admin status` and the ack wait of
    enroll/delete report the kiosks that answered, and name what they could not read."""
    good = ("kiosk/hq/door1/acks/ann", _ack("ann", "door1", "deleted", 5))
    junk = [("kiosk/hq/door9/acks/ann", NESTED), ("kiosk/hq/door8/acks/ann", b"[" * 100_000 + b"]" * 100_000),
            ("kiosk/hq/door7/acks/ann", b"[1]")]
    with caplog.at_level("WARNING", logger="kiosk.admin.site"):
        assert status([{"person_id": "ann", "revision": 5}], [*junk, good])["door1"]["current"] == ["ann"]
    said = " ".join(r.getMessage() for r in caplog.records)
    assert all(device in said for device in ("door9", "door8", "door7")) and "malformed_json" in said
    report = collect_acks([*junk, good, ("kiosk/hq/door1/availability", b"online")], "kiosk", SITE, "ann", 5)
    assert report.acked == {"door1": "deleted"} and not report.refused
    assert len(report.unreadable) == 3 and "oversized" in report.unreadable[1]  # the availability is no ack
