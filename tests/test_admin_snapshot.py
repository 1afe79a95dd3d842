"""What an administrator signs into the site snapshot from what the broker holds: only what verifies."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.admin import AdminState, cmd_sync, publish_change
from kiosk.mqtt.core import Publish, SyncCore
from kiosk.mqtt.keys import sign_key_list, write_private_key
from kiosk.mqtt.protocol import Signer
from kiosk.mqtt.snapshot import sign_snapshot
from kiosk.mqtt.topics import Topics
from kiosk.records import Enrollment, Tombstone
from tests import retained_broker
from tests.retained_broker import RetainedBroker
from tests.site import DAY_MS, FP, SITE, Kiosk, Site, emb

TOPICS = Topics("kiosk", SITE, "door1")


def acks(actions: list[object]) -> list[dict[str, object]]:
    return [json.loads(a.payload) for a in actions if isinstance(a, Publish)]


class BobEnrolled:
    """A site where bob is enrolled, the good administrator's timer has signed a snapshot, and a kiosk holds it."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, root_pub: bool) -> None:
        self.broker: RetainedBroker = retained_broker.install(monkeypatch)
        self.site = site = Site()
        self.good, self.lost = site.admin, Signer(Ed25519PrivateKey.generate())
        write_private_key(tmp / "root.key", site.root.private)
        self.now = now = int(time.time() * 1000)
        self.first_list = site.key_list(now - 10 * DAY_MS, admins=[self.good, self.lost])
        revoking = site.key_list(now - 5 * DAY_MS, admins=[self.good], revoked={self.lost.key_id})
        bob = site.enrollment("bob", now - 20 * DAY_MS)
        self.broker.topics.update({"kiosk/hq/keys": revoking, "kiosk/hq/enrollments/bob": bob})
        self.args = retained_broker.admin_args(tmp, "good", self.good, tmp / "root.key.pub" if root_pub else None)
        AdminState(self.args.state).record("bob", now - 20 * DAY_MS, "Bob", False, bob, time.time())
        assert cmd_sync(self.args) == 0
        self.kiosk = Kiosk(site, tmp / "k.db", os.urandom(32), require_snapshot=True)
        self.kiosk.wall.now = time.time()
        self.core = SyncCore(TOPICS, self.kiosk.store, self.kiosk.trust)
        for topic in ("kiosk/hq/keys", "kiosk/hq/snapshot", "kiosk/hq/enrollments/bob"):
            self.core.handle(topic, self.broker.topics[topic], 0.0)
        assert self.kiosk.admitted() == {"bob"}

    def deleting_bob(self, signer: Signer) -> bytes:
        return sign_snapshot(signer, SITE, {"bob": (self.now - 60_000, True)}, {signer.key_id}, self.now + 5000,
                             self.now + DAY_MS)

    def signed(self) -> dict[str, object]:
        payload = self.broker.topics["kiosk/hq/snapshot"]
        self.core.handle("kiosk/hq/snapshot", payload, 2.0)
        body: dict[str, object] = json.loads(payload)
        return body


def test_a_revoked_keys_snapshot_put_back_with_the_old_key_list_is_never_signed_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Whoever holds a revoked key (a lost laptop, with its broker credentials) puts back the old root-signed
    key list that still names it, and a snapshot it signed deleting bob: kiosks refuse both, and so does the
    good administrator's timer, which verifies against the newest key list it has seen."""
    s = BobEnrolled(tmp_path, monkeypatch, root_pub=True)
    evil = s.deleting_bob(s.lost)
    s.broker.topics.update({"kiosk/hq/keys": s.first_list, "kiosk/hq/snapshot": evil})
    refused = [a["reason"] for t, p in (("kiosk/hq/keys", s.first_list), ("kiosk/hq/snapshot", evil))
               for a in acks(s.core.handle(t, p, 1.0))]
    assert refused == ["stale_key_list", "unknown_key"]
    capsys.readouterr()
    assert cmd_sync(s.args) == 0
    out = capsys.readouterr().out
    assert "someone put an old one back" in out and "its entries are not merged" in out
    signed = s.signed()
    assert signed["key_id"] == s.good.key_id and signed["people"] == {"bob": [s.now - 20 * DAY_MS, False]}
    assert signed["keys"] == [s.good.key_id]  # the newest list's keys, not the old one's
    assert s.kiosk.admitted() == {"bob"}


def test_without_the_root_key_only_this_administrators_own_snapshot_is_merged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --root-pub no key list can be checked: one of anybody's own making, naming their key, lets
    nothing they sign into the snapshot; and the administrator is told why."""
    s = BobEnrolled(tmp_path, monkeypatch, root_pub=False)
    mallory, fake_root = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    s.broker.topics["kiosk/hq/keys"] = sign_key_list(fake_root, SITE, {
        k.key_id: k.private.public_key() for k in (s.good, mallory)}, s.now)
    s.broker.topics["kiosk/hq/snapshot"] = s.deleting_bob(mallory)
    capsys.readouterr()
    assert cmd_sync(s.args) == 0
    assert "without the site's root key (--root-pub) no key list is checked" in capsys.readouterr().out
    assert s.signed()["people"] == {"bob": [s.now - 20 * DAY_MS, False]}
    assert s.kiosk.admitted() == {"bob"}


def test_one_administrators_fast_clock_never_dates_the_others_snapshots_ahead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Bert's laptop runs three days fast once: his snapshot is refused by kiosks with a synchronised clock.
    Alice's timer, and Bert's own once his clock is right again, sign by their clock, not above his."""
    broker = retained_broker.install(monkeypatch)
    site = Site(admins=2)
    alice, bert = site.admins
    write_private_key(tmp_path / "root.key", site.root.private)
    now = int(time.time() * 1000)
    broker.topics["kiosk/hq/keys"] = site.key_list(now - 10 * DAY_MS)
    a_args = retained_broker.admin_args(tmp_path, "alice", alice, tmp_path / "root.key.pub")
    b_args = retained_broker.admin_args(tmp_path, "bert", bert, tmp_path / "root.key.pub")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3 * 86400)
    assert cmd_sync(b_args) == 0
    monkeypatch.setattr(time, "time", real)

    capsys.readouterr()
    assert cmd_sync(a_args) == 0
    assert "the retained snapshot is issued at" in capsys.readouterr().out
    kiosk_takes(site, broker, tmp_path / "after-alice.db")
    assert cmd_sync(b_args) == 0  # Bert's state file remembers his snapshot from the future: not signed above
    assert "the last snapshot this administrator signed is issued at" in capsys.readouterr().out
    kiosk_takes(site, broker, tmp_path / "after-bert.db")


def test_one_administrators_fast_clock_never_puts_a_revision_kiosks_refuse_in_the_others_snapshots(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Bert's laptop runs three days fast once while he deletes carol and enrols dan: kiosks with a
    synchronised clock refuse a whole snapshot giving anybody a revision that far ahead. Alice's timer keeps
    carol's deletion, dated by her clock, leaves dan's entry out, and says so; nothing that far ahead stays in
    her state file either, so her snapshots are taken after Bert's key is revoked too."""
    broker = retained_broker.install(monkeypatch)
    site = Site(admins=2)
    alice, bert = site.admins
    write_private_key(tmp_path / "root.key", site.root.private)
    now = int(time.time() * 1000)
    carol = site.enrollment("carol", now - 20 * DAY_MS, signer=alice)
    broker.topics.update({"kiosk/hq/keys": site.key_list(now - 10 * DAY_MS), "kiosk/hq/enrollments/carol": carol})
    a_args = retained_broker.admin_args(tmp_path, "alice", alice, tmp_path / "root.key.pub")
    b_args = retained_broker.admin_args(tmp_path, "bert", bert, tmp_path / "root.key.pub")
    AdminState(a_args.state).record("carol", now - 20 * DAY_MS, "Carol", False, carol, time.time())
    assert cmd_sync(a_args) == 0
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3 * 86400)
    publish_change(b_args, bert, AdminState(b_args.state), "carol",
                   lambda rev: (bert.tombstone(SITE, Tombstone("carol", rev)), None), now=time.time)
    publish_change(b_args, bert, AdminState(b_args.state), "dan",
                   lambda rev: (bert.enrollment(SITE, Enrollment("dan", "Dan", rev, FP, emb(2))), "Dan"),
                   now=time.time)
    monkeypatch.setattr(time, "time", real)

    capsys.readouterr()
    assert cmd_sync(a_args) == 0
    out = capsys.readouterr().out
    assert "the retained snapshot deletes carol at revision" in out and "the retained snapshot gives dan" in out
    people = kiosk_takes(site, broker, tmp_path / "k1.db")
    assert people["carol"][1] is True and now <= people["carol"][0] <= time.time() * 1000
    assert "dan" not in people

    broker.topics["kiosk/hq/keys"] = site.key_list(now - DAY_MS, admins=[alice], revoked={bert.key_id})
    assert cmd_sync(a_args) == 0
    assert kiosk_takes(site, broker, tmp_path / "k2.db")["carol"][1] is True
    horizon = time.time() * 1000 + DAY_MS
    assert all(rev <= horizon for rev, _ in AdminState(a_args.state).last_snapshot_people().values())


def kiosk_takes(site: Site, broker: RetainedBroker, path: Path) -> dict[str, list[object]]:
    """A new kiosk with a synchronised clock applies the retained snapshot: its people."""
    k = Kiosk(site, path, os.urandom(32), require_snapshot=True)
    k.wall.now = time.time()
    core = SyncCore(TOPICS, k.store, k.trust)
    core.handle(TOPICS.keys, broker.topics["kiosk/hq/keys"], 0.0)
    [ack] = [json.loads(a.payload) for a in core.handle(TOPICS.snapshot, broker.topics["kiosk/hq/snapshot"], 0.0)
             if isinstance(a, Publish) and a.topic == TOPICS.snapshot_ack]
    assert ack["status"] == "applied", ack
    people: dict[str, list[object]] = json.loads(broker.topics["kiosk/hq/snapshot"])["people"]
    return people


def test_a_key_list_dated_ahead_decides_nothing_but_its_revocations_hold(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The root's machine ran 30 days fast while it signed the list revoking bert's stolen key: kiosks with a
    synchronised clock refuse it, and so does alice's timer, which keeps the list it had (the correct list
    signed next is then not taken for an old one put back). Bert's key stays revoked for her all the same: his
    snapshot deleting bob is not merged, with the old list put back or with the correct one."""
    broker = retained_broker.install(monkeypatch)
    site = Site(admins=2)
    alice, bert = site.admins
    write_private_key(tmp_path / "root.key", site.root.private)
    now = int(time.time() * 1000)
    args = retained_broker.admin_args(tmp_path, "alice", alice, tmp_path / "root.key.pub")
    first = site.key_list(now - 40 * DAY_MS)
    bob = site.enrollment("bob", now - 20 * DAY_MS, signer=alice)
    broker.topics.update({"kiosk/hq/keys": first, "kiosk/hq/enrollments/bob": bob})
    AdminState(args.state).record("bob", now - 20 * DAY_MS, "Bob", False, bob, time.time())
    assert cmd_sync(args) == 0

    broker.topics["kiosk/hq/keys"] = site.key_list(now + 30 * DAY_MS, admins=[alice], revoked={bert.key_id})
    capsys.readouterr()
    assert cmd_sync(args) == 0
    assert "the retained key list is issued at" in capsys.readouterr().out
    assert AdminState(args.state).key_list() == first

    evil = sign_snapshot(bert, SITE, {"bob": (now - 60_000, True)}, {bert.key_id}, now - 30_000, now + DAY_MS)
    for i, keys in enumerate((first, site.key_list(now - 3600_000, admins=[alice], revoked={bert.key_id}))):
        broker.topics.update({"kiosk/hq/keys": keys, "kiosk/hq/snapshot": evil})
        assert cmd_sync(args) == 0
        out = capsys.readouterr().out
        assert "its entries are not merged" in out and "put an old one back" not in out
        assert AdminState(args.state).key_list() == keys
        k = Kiosk(site, tmp_path / f"k{i}.db", os.urandom(32))
        k.wall.now = time.time()
        core = SyncCore(TOPICS, k.store, k.trust)
        for topic in ("kiosk/hq/keys", "kiosk/hq/snapshot", "kiosk/hq/enrollments/bob"):
            core.handle(topic, broker.topics[topic], 0.0)
        assert k.admitted() == {"bob"}
