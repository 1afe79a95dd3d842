"""The administrator's tool against a real mosquitto and real kiosks (store, trust, sync core, paho adapter)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from kiosk.admin import AdminState, cmd_sync, publish_change
from kiosk.admin.rollback import SiteRolledBackError
from kiosk.events import EventSink
from kiosk.mqtt.adapter import KioskMqtt
from kiosk.mqtt.client import make_client
from kiosk.mqtt.keys import write_private_key
from kiosk.mqtt.protocol import Signer
from kiosk.mqtt.topics import Topics
from kiosk.outbox import Outbox
from kiosk.records import Enrollment
from tests.broker import Mosquitto
from tests.mqtt_kiosk import TIMEOUT, Collector
from tests.site import FP, SITE, Kiosk, Site, emb

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


class Admin:
    """One administrator: a key file, a state file, and the common command-line options."""

    def __init__(self, tmp: Path, name: str, broker: Mosquitto, signer: Signer, root_pub: Path) -> None:
        self.key = tmp / f"{name}.key"
        if not self.key.exists():
            write_private_key(self.key, signer.private)
        self.signer = signer
        self.state = tmp / f"{name}-state" / "admin.db"
        self.port, self.root_pub = broker.port, root_pub
        self.opts = ["--host", "127.0.0.1", "--port", broker.port, "--site", SITE, "--signing-key", self.key,
                     "--state", self.state, "--root-pub", root_pub, "--wait", "3"]

    def args(self, **extra: Any) -> argparse.Namespace:
        base = {"host": "127.0.0.1", "port": self.port, "site": SITE, "prefix": "kiosk", "tls": False,
                "ca_file": None, "cert_file": None, "key_file": None, "username": None, "password_file": None,
                "root_pub": self.root_pub, "signing_key": self.key, "state": self.state, "snapshot_valid_h": 72.0,
                "wait": 3.0, "every": None}
        return argparse.Namespace(**{**base, **extra})

    def enroll(self, pid: str, seed: int, now: float | None = None) -> int:
        """`kiosk admin enroll` without the photos: synthetic embeddings, the same publishing path."""
        state = AdminState(self.state)
        rev, _, _ = publish_change(
            self.args(), self.signer, state, pid,
            lambda r: (self.signer.enrollment(SITE, Enrollment(pid, pid.title(), r, FP, emb(seed))), pid.title()),
            **({"now": lambda: now} if now is not None else {}))
        return rev


@pytest.fixture()
def site(tmp_path: Path) -> Site:
    s = Site(admins=2)
    write_private_key(tmp_path / "root.key", s.root.private)
    return s


@pytest.fixture()
def admins(tmp_path: Path, broker: Mosquitto, site: Site, run_cli: Run) -> list[Admin]:
    out = [Admin(tmp_path, f"admin{i}", broker, a, tmp_path / "root.key.pub") for i, a in enumerate(site.admins)]
    code, _, err = run_cli("admin", "keys", "sign", "--root-key", tmp_path / "root.key", "--site", SITE,
                              "--admin", out[0].key.with_name("admin0.key.pub"),
                              "--admin", out[1].key.with_name("admin1.key.pub"), "--out", tmp_path / "keys.json")
    assert code == 0, err
    code, _text, err = run_cli("admin", "keys", "publish", tmp_path / "keys.json", *out[0].opts[:6],
                              "--root-pub", tmp_path / "root.key.pub")
    assert code == 0, err
    return out


class RunningKiosk:
    """A kiosk's sync side as the service builds it: store + site trust + sync core + paho adapter."""

    def __init__(self, tmp: Path, broker: Mosquitto, site: Site, device: str) -> None:
        # as the service: records wait for a snapshot; the kiosk's clock is the administrators' (they sign with
        # the real time, and a snapshot already expired by the kiosk's clock is refused)
        self.k = Kiosk(site, tmp / f"{device}.db", os.urandom(32), require_snapshot=True)
        self.k.wall.now = time.time()
        self.events = EventSink(None, device)
        self.outbox = Outbox(tmp / f"{device}-outbox.db")
        self.mqtt = KioskMqtt(make_client(f"kiosk-{device}"), "127.0.0.1", broker.port, Topics("kiosk", SITE, device),
                              self.k.store, self.events, self.outbox, self.k.trust)
        self.mqtt.start()
        assert self.mqtt.subscribed.wait(TIMEOUT)

    def stop(self) -> None:
        self.mqtt.stop(0.5)
        self.outbox.close()


def _retained(port: int, topic: str) -> bytes:
    c = Collector(port, topic)
    c.wait_for(lambda m: bool(m))
    c.client.disconnect()
    return c.messages[0][1]


def _publish_raw(port: int, topic: str, payload: bytes) -> None:
    done = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_publish = lambda *a: done.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=True)
    assert done.wait(TIMEOUT)
    c.disconnect()
    c.loop_stop()


def test_rollback_a_new_kiosk_does_not_admit_a_deleted_person_whose_old_enrollment_was_replayed(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run) -> None:
    a = admins[0]
    a.enroll("ann", 1)
    a.enroll("bob", 2)
    old_ann = _retained(broker.port, "kiosk/hq/enrollments/ann")
    code, _out, err = run_cli("admin", "delete", "--id", "ann", *a.opts)
    assert code == 0, err
    _publish_raw(broker.port, "kiosk/hq/enrollments/ann", old_ann)  # the tombstone overwritten on the broker
    watch = Collector(broker.port, "kiosk/hq/door9/#")
    kiosk = RunningKiosk(tmp_path, broker, site, "door9")  # from an empty store
    try:
        watch.wait_for(lambda m: any(t.endswith("/acks/bob") and b'"applied"' in p for t, p in m))
        watch.wait_for(lambda m: any(t.endswith("/acks/ann") for t, _ in m))
        assert kiosk.k.admitted() == {"bob"}
        assert not kiosk.k.store.is_valid("ann") and kiosk.k.store.is_valid("bob")
    finally:
        kiosk.stop()
        watch.close()


def test_delete_waits_for_every_known_kiosk_and_names_the_silent_ones(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run) -> None:
    a = admins[0]
    _publish_raw(broker.port, "kiosk/hq/door2/availability", b"offline")  # a kiosk that is known but away
    door1 = RunningKiosk(tmp_path, broker, site, "door1")
    try:
        a.enroll("ann", 1)
        code, out, err = run_cli("admin", "delete", "--id", "ann", *a.opts[:-2], "--wait", "1")
        assert code == 17, (out, err)
        assert "door1" in out and "deleted" in out
        assert "door2                no answer (offline)" in out and "door2" in err
        assert door1.k.admitted() == set()
    finally:
        door1.stop()


def test_two_administrators_never_reuse_a_revision_and_the_snapshot_keeps_both(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run) -> None:
    a, b = admins
    import time

    ahead = time.time() + 3600  # admin A's clock runs an hour ahead
    rev_a = a.enroll("ann", 1, now=ahead)
    a.enroll("cid", 3)
    code, _out, err = run_cli("admin", "delete", "--id", "ann", *b.opts)  # B has never seen ann locally
    assert code == 0, err
    tomb = json.loads(_retained(broker.port, "kiosk/hq/enrollments/ann"))
    assert tomb["type"] == "tombstone" and tomb["issued_at_ms"] > rev_a and tomb["key_id"] == b.signer.key_id
    snap = json.loads(_retained(broker.port, "kiosk/hq/snapshot"))
    assert snap["people"]["ann"] == [tomb["issued_at_ms"], True]
    assert "cid" in snap["people"] and snap["key_id"] == b.signer.key_id  # A's people kept in B's snapshot


def test_republish_re_signs_with_the_current_key_after_a_revocation(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run) -> None:
    old, new = admins
    old.enroll("ann", 1)
    door1 = RunningKiosk(tmp_path, broker, site, "door1")
    watch = Collector(broker.port, "kiosk/hq/door1/#")
    try:
        watch.wait_for(lambda m: any(t.endswith("/acks/ann") and b'"applied"' in p for t, p in m))
        assert door1.k.admitted() == {"ann"}
        # the root revokes the old key; the new administrator takes over old's records
        code, _, err = run_cli("admin", "keys", "sign", "--root-key", tmp_path / "root.key", "--site", SITE,
                               "--admin", new.key.with_name("admin1.key.pub"), "--previous", tmp_path / "keys.json",
                               "--out", tmp_path / "keys2.json")
        assert code == 0, err
        assert run_cli("admin", "keys", "publish", tmp_path / "keys2.json", *new.opts[:6])[0] == 0
        digest = hashlib.sha256((tmp_path / "keys2.json").read_bytes()).hexdigest()
        watch.wait_for(lambda m: any(t.endswith("/door1/keys") and digest.encode() in p for t, p in m))
        assert door1.k.admitted() == set()  # signed by a revoked key: stops granting
        code, _out, err = run_cli("admin", "republish", *new.opts[:6], "--signing-key", new.key, "--state", old.state)
        assert code == 0, err
        payload = json.loads(_retained(broker.port, "kiosk/hq/enrollments/ann"))
        assert payload["key_id"] == new.signer.key_id
        watch.wait_for(lambda m: any(t.endswith("/acks/ann") and json.loads(p).get("revision") ==
                                     payload["issued_at_ms"] for t, p in m))
        assert door1.k.admitted() == {"ann"}
    finally:
        door1.stop()
        watch.close()


def test_a_kiosk_without_a_snapshot_yet_answers_held_and_admits_once_the_snapshot_follows(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin]) -> None:
    alice = admins[0]
    door1 = RunningKiosk(tmp_path, broker, site, "door1")  # a new site: no snapshot on the broker yet
    watch = Collector(broker.port, "kiosk/hq/door1/#")
    try:
        watch.wait_for(lambda m: any(t.endswith("door1/availability") and p == b"online" for t, p in m))
        rev, report, view = publish_change(
            alice.args(), alice.signer, AdminState(alice.state), "ann",
            lambda r: (alice.signer.enrollment(SITE, Enrollment("ann", "Ann", r, FP, emb(1))), "Ann"))
        assert "door1" in view.kiosks and report.acked == {"door1": "held"} and not report.silent
        # the snapshot follows the record: once door1 has applied it, ann is admitted
        watch.wait_for(lambda m: any(t == "kiosk/hq/door1/snapshot" and b'"applied"' in p for t, p in m))
        assert door1.k.admitted() == {"ann"}
        assert json.loads(_retained(broker.port, "kiosk/hq/snapshot"))["people"]["ann"] == [rev, False]
    finally:
        door1.stop()
        watch.close()


def test_republish_never_undoes_a_later_deletion_or_change_by_another_administrator(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run) -> None:
    alice, bob = admins
    alice.enroll("ann", 1)
    alice.enroll("cid", 3)
    alice.enroll("dan", 4)
    code, _out, err = run_cli("admin", "delete", "--id", "ann", *bob.opts)  # bob deletes ann after alice enrolled her
    assert code == 0, err
    bob.enroll("cid", 5)  # and enrols cid again with another photo
    cid = json.loads(_retained(broker.port, "kiosk/hq/enrollments/cid"))
    # alice re-signs what her state file holds (the rotation's step 3)
    code, out, err = run_cli("admin", "republish", *alice.opts)
    assert code == 18 and "2 people not republished" in err, err  # held back: said, and not a success
    assert "ann not republished: the site holds a newer change (deleted at" in out
    assert "cid not republished: the site holds a newer change (changed at" in out
    assert "re-signed and republished 1 of 3 records" in out
    assert json.loads(_retained(broker.port, "kiosk/hq/enrollments/ann"))["type"] == "tombstone"
    assert json.loads(_retained(broker.port, "kiosk/hq/enrollments/cid")) == cid
    dan = json.loads(_retained(broker.port, "kiosk/hq/enrollments/dan"))
    assert dan["key_id"] == alice.signer.key_id
    snapshot = json.loads(_retained(broker.port, "kiosk/hq/snapshot"))["people"]
    assert snapshot["ann"][1] is True and snapshot["cid"][0] == cid["issued_at_ms"]
    assert snapshot["dan"][0] == dan["issued_at_ms"]
    kiosk = RunningKiosk(tmp_path, broker, site, "door7")  # a new kiosk converges on bob's changes
    watch = Collector(broker.port, "kiosk/hq/door7/#")
    try:
        watch.wait_for(lambda m: sum(t.split("/")[-2] == "acks" for t, _ in m) >= 3)
        assert kiosk.k.admitted() == {"cid", "dan"}
    finally:
        kiosk.stop()
        watch.close()


def test_sync_re_signs_the_snapshot_later_and_state_files_are_private(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin]) -> None:
    a = admins[0]
    a.enroll("ann", 1)
    first = json.loads(_retained(broker.port, "kiosk/hq/snapshot"))
    assert cmd_sync(a.args(snapshot_valid_h=1.0)) == 0
    second = json.loads(_retained(broker.port, "kiosk/hq/snapshot"))
    assert second["issued_at_ms"] > first["issued_at_ms"]
    assert second["expires_at_ms"] - second["issued_at_ms"] == 3_600_000
    assert second["people"] == first["people"]
    for f in (a.state, tmp_path / "keys.json", a.key):
        assert f.stat().st_mode & 0o077 == 0, f
    assert a.state.parent.stat().st_mode & 0o077 == 0


def test_sync_never_signs_away_a_deletion_when_an_older_snapshot_is_put_back(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run,
        capsys: pytest.CaptureFixture[str]) -> None:
    a = admins[0]
    a.enroll("ann", 1)
    old_snapshot = _retained(broker.port, "kiosk/hq/snapshot")  # ann enrolled
    old_ann = _retained(broker.port, "kiosk/hq/enrollments/ann")
    code, _out, err = run_cli("admin", "delete", "--id", "ann", *a.opts)
    assert code == 0, err
    deleted_at = json.loads(_retained(broker.port, "kiosk/hq/snapshot"))["people"]["ann"]
    assert deleted_at[1] is True
    # someone with write access to the broker puts back the old snapshot and ann's old enrollment
    _publish_raw(broker.port, "kiosk/hq/snapshot", old_snapshot)
    _publish_raw(broker.port, "kiosk/hq/enrollments/ann", old_ann)
    assert cmd_sync(a.args()) == 0  # the 12-hour timer re-signs the snapshot
    assert "is older than the one this administrator signed last" in capsys.readouterr().out
    fresh = json.loads(_retained(broker.port, "kiosk/hq/snapshot"))
    assert fresh["people"]["ann"] == deleted_at
    kiosk = RunningKiosk(tmp_path, broker, site, "door8")  # a new kiosk does not let ann in
    watch = Collector(broker.port, "kiosk/hq/door8/#")
    try:
        watch.wait_for(lambda m: any(t.endswith("/acks/ann") for t, _ in m))
        assert kiosk.k.admitted() == set() and not kiosk.k.store.is_valid("ann")
    finally:
        kiosk.stop()
        watch.close()


def test_an_old_snapshot_put_back_over_another_administrators_deletion_is_never_signed_again(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run) -> None:
    alice, bob = admins
    door1 = RunningKiosk(tmp_path, broker, site, "door1")
    watch = Collector(broker.port, "kiosk/hq/door1/#")
    try:
        alice.enroll("ann", 1)
        old_snapshot = _retained(broker.port, "kiosk/hq/snapshot")  # alice's: ann enrolled
        old_ann = _retained(broker.port, "kiosk/hq/enrollments/ann")
        code, _out, err = run_cli("admin", "delete", "--id", "ann", *bob.opts)  # bob deletes her
        assert code == 0, err
        watch.wait_for(lambda m: any(t.endswith("/acks/ann") and b'"deleted"' in p for t, p in m))
    finally:
        door1.stop()
        watch.close()
    # someone with write access to the broker puts back alice's old snapshot and ann's old record
    _publish_raw(broker.port, "kiosk/hq/snapshot", old_snapshot)
    _publish_raw(broker.port, "kiosk/hq/enrollments/ann", old_ann)
    code, _out, err = run_cli("admin", "sync", *alice.opts)  # alice's own last snapshot predates the deletion
    assert code == 18 and "not signed" in err and "ann (snapshot" in err, err
    assert _retained(broker.port, "kiosk/hq/snapshot") == old_snapshot  # nothing signed
    code, _out, err = run_cli("admin", "republish", *alice.opts)  # nor is anything republished over it
    assert code == 18 and "not signed" in err and "ann (snapshot" in err, err
    with pytest.raises(SiteRolledBackError, match="ann"):  # nor signed with someone else's enrollment
        alice.enroll("carl", 7)
    assert _retained(broker.port, "kiosk/hq/enrollments/ann") == old_ann
    assert _retained(broker.port, "kiosk/hq/snapshot") == old_snapshot
    code, _out, err = run_cli("admin", "sync", *alice.opts, "--force")  # an administrator who checked may sign
    assert code == 0, err
    assert _retained(broker.port, "kiosk/hq/snapshot") != old_snapshot


def test_a_forged_ack_holds_the_administrators_back_until_one_checks_and_forces_once(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run) -> None:
    alice = admins[0]
    alice.enroll("ann", 1)
    alice.enroll("bob", 2)
    forged = int(time.time() * 1000) + 3_600_000  # plausible: an hour ahead
    _publish_raw(broker.port, "kiosk/hq/ghost/acks/ann", json.dumps(
        {"person_id": "ann", "device": "ghost", "status": "deleted", "revision": forged}).encode())
    code, _out, err = run_cli("admin", "sync", *alice.opts)
    assert code == 18 and "ann (snapshot" in err and "--force" in err, err
    code, out, err = run_cli("admin", "sync", *alice.opts, "--force")
    assert code == 0 and "later runs ignore these revisions" in out, err
    code, _out, err = run_cli("admin", "sync", *alice.opts)  # checked once: the same evidence holds nothing back
    assert code == 0, err
    code, _out, err = run_cli("admin", "delete", "--id", "bob", *alice.opts)
    assert code == 0, err
    assert json.loads(_retained(broker.port, "kiosk/hq/snapshot"))["people"]["ann"][1] is False  # never signed


def test_a_forged_ack_from_the_future_holds_nothing_back(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run) -> None:
    alice = admins[0]
    alice.enroll("ann", 1)
    _publish_raw(broker.port, "kiosk/hq/ghost/acks/ann", json.dumps(
        {"person_id": "ann", "device": "ghost", "status": "applied", "revision": 2**53}).encode())
    code, _out, err = run_cli("admin", "sync", *alice.opts)  # beyond what any kiosk would take: ignored
    assert code == 0, err
    code, out, err = run_cli("admin", "republish", *alice.opts)
    assert code == 0 and "republished 1 of 1" in out, err


class _Retained:
    """A broker that holds these retained messages (what ``site_revisions`` reads)."""

    def __init__(self, messages: list[tuple[str, bytes]]) -> None:
        self.messages = messages

    def retained(self, *patterns: str) -> list[tuple[str, bytes]]:
        return self.messages


def test_a_person_the_snapshot_leaves_out_is_held_back_too(tmp_path: Path) -> None:
    """A snapshot put back from before a person was enrolled does not list them at all: a kiosk that acked
    their deletion still counts as evidence against signing it."""
    from kiosk.admin.rollback import rolled_back
    from kiosk.admin.site import SiteView

    state = AdminState(tmp_path / "state.db")
    view = SiteView("kiosk", SITE, people={"carl": (5, False)})
    deleted = json.dumps({"person_id": "ann", "device": "door1", "status": "deleted", "revision": 9}).encode()
    assert rolled_back(_Retained([("kiosk/hq/door1/acks/ann", deleted)]), view, state) == {"ann": (0, 9)}  # type: ignore[arg-type]
    view.people["ann"] = (9, True)
    assert rolled_back(_Retained([("kiosk/hq/door1/acks/ann", deleted)]), view, state) == {}  # type: ignore[arg-type]


def test_the_sync_timer_runs_admin_sync_with_settings_the_command_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    from kiosk.cli import build_parser

    root = Path(__file__).resolve().parents[1] / "systemd"
    unit = (root / "kiosk-admin-sync.service").read_text()
    timer = (root / "kiosk-admin-sync.timer").read_text()
    assert "ExecStart=/opt/kiosk/venv/bin/kiosk admin sync" in unit and "OnUnitActiveSec=12h" in timer
    env = dict(kv.split("=", 1) for line in unit.splitlines() if line.startswith("Environment=")
               for kv in line.removeprefix("Environment=").split())
    for name, value in {**env, "KIOSK_ADMIN_SITE": "hq", "KIOSK_ADMIN_SNAPSHOT_VALID_H": "72"}.items():
        monkeypatch.setenv(name, value.replace("%d", "/run/credentials/kiosk-admin-sync.service"))
    args = build_parser().parse_args(["admin", "sync"])
    assert args.site == "hq" and args.snapshot_valid_h == 72.0
    assert str(args.signing_key).endswith("kiosk-admin-key") and str(args.root_pub).endswith("kiosk-root-pub")
    assert str(args.password_file).endswith("kiosk-admin-mqtt-password")
    assert args.state == Path("/var/lib/kiosk-admin/admin.db")


# -- the second factor in `kiosk admin enroll` ----------------------------------------------------------------------

PIN_SECRET = bytes(range(32))


@pytest.mark.models
def test_admin_enroll_publishes_pin_verifiers_a_user_code_and_cards_never_the_pin(
        tmp_path: Path, broker: Mosquitto, admins: list[Admin], run_cli: Run, models: Path) -> None:
    from kiosk.artifacts import dataset_path
    from kiosk.factor.pin import check, key_id
    from kiosk.mqtt.protocol import parse

    a = admins[0]
    photos = sorted((dataset_path("5-celebrity") / "train" / "ben_afflek").glob("*.jpg"))[:3]
    secret = tmp_path / "pin.secret"
    secret.write_bytes(PIN_SECRET)
    (tmp_path / "pin").write_text("90817263\n")
    (tmp_path / "duress").write_text("90817264\n")
    (tmp_path / "kiosk.toml").write_text("[second_factor.kdf]\nmemory_kib = 8192\niterations = 1\n")
    code, out, err = run_cli("admin", "enroll", "--id", "ben", "--name", "Ben", *photos, *a.opts,
                             "--pin-file", tmp_path / "pin", "--duress-pin-file", tmp_path / "duress",
                             "--pin-secret", secret, "--config", tmp_path / "kiosk.toml",
                             "--user-code", "1001", "--card", "h10301:12:3456", "--card", "w34:300:7")
    assert code in (0, 17), err  # 17: no kiosk acknowledged (none runs here)
    assert "PIN, user code, cards" in out
    raw = _retained(broker.port, "kiosk/hq/enrollments/ben")
    # a long PIN: a short one turns up by chance in the base64 of the embeddings or the signature
    assert b"90817263" not in raw and b"90817264" not in raw
    e = parse(raw, {a.signer.key_id: a.signer.private.public_key()}, SITE, topic_person="ben")
    assert isinstance(e, Enrollment) and e.pin_verifier is not None and e.duress_verifier is not None
    assert check("90817263", e.pin_verifier, PIN_SECRET) and check("90817264", e.duress_verifier, PIN_SECRET)
    assert not check("90817264", e.pin_verifier, PIN_SECRET)
    assert f"$m=8192,t=1,p=1$k={key_id(PIN_SECRET)}$" in e.pin_verifier  # the [second_factor.kdf] parameters
    assert (e.user_code, e.cards) == ("1001", ("h10301:12:3456", "w34:300:7"))
    # the same user code for someone else is refused before anything is published
    code, _out, err = run_cli("admin", "enroll", "--id", "cid", "--name", "Cid", *photos, *a.opts,
                              "--user-code", "1001")
    assert code != 0 and "already enrolled to ben" in err


def _factor_args(tmp_path: Path, **extra: Any) -> argparse.Namespace:
    secret = tmp_path / "pin.secret"
    secret.write_bytes(PIN_SECRET)
    base: dict[str, Any] = {"id": "ann", "user_code": None, "card": [], "pin_prompt": False, "pin_file": None,
            "duress_pin_file": None, "pin_secret": secret, "config": None}
    return argparse.Namespace(**{**base, **extra})


def test_the_pin_prompt_asks_twice_and_a_person_without_duress_pin_gets_a_random_one(tmp_path: Path) -> None:
    from kiosk.admin.factor import factor_fields
    from kiosk.factor.pin import check

    answers = iter(["2580", "2580", ""])
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return next(answers)

    fields = factor_fields(_factor_args(tmp_path, pin_prompt=True), ask=ask)
    assert len(asked) == 3
    assert check("2580", fields["pin_verifier"], PIN_SECRET)
    assert fields["duress_verifier"] != fields["pin_verifier"]
    assert fields["duress_verifier"].rsplit("$", 2)[1] == fields["pin_verifier"].rsplit("$", 2)[1]  # one salt
    assert not check("2580", fields["duress_verifier"], PIN_SECRET)
    mismatch = iter(["2580", "2581"])
    with pytest.raises(Exception, match="differ"):
        factor_fields(_factor_args(tmp_path, pin_prompt=True), ask=lambda _p: next(mismatch))


@pytest.mark.parametrize(("extra", "message"), [
    ({"user_code": "12ab"}, "1-12 digits"),
    ({"card": ["h10301:256:1"]}, "facility"),
    ({"card": ["h10301:1:1", "h10301:1:1"]}, "twice"),
    ({"pin_file": "pin", "pin_prompt": True}, "not both"),
    ({"duress_pin_file": "pin"}, "needs --pin-file"),
])
def test_bad_second_factor_options_are_refused_before_anything_is_signed(
        tmp_path: Path, extra: dict[str, Any], message: str) -> None:
    from kiosk.admin.factor import factor_fields
    from kiosk.errors import ConfigError

    (tmp_path / "pin").write_text("4711")
    extra = {k: (tmp_path / v if k.endswith("_file") else v) for k, v in extra.items()}
    with pytest.raises(ConfigError, match=message):
        factor_fields(_factor_args(tmp_path, **extra), ask=lambda _p: "")


def test_a_pin_is_never_accepted_on_the_command_line() -> None:
    from kiosk.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["admin", "enroll", "--id", "ann", "--name", "Ann", "--pin", "4711", "x.jpg"])


def test_republish_keeps_the_second_factor_under_the_new_signature() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.admin import resign
    from kiosk.factor.pin import KdfParams, make_verifier_pair
    from kiosk.mqtt.protocol import Signer, parse

    old, new = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    pin, duress = make_verifier_pair("4711", "4712", PIN_SECRET, KdfParams("argon2id", memory_kib=64, iterations=1))
    payload = old.enrollment(SITE, Enrollment("ann", "Ann", 5, FP, emb(1), pin_verifier=pin, duress_verifier=duress,
                                              user_code="1001", cards=("w34:1:2",)))
    got = parse(resign(new, SITE, payload, 6), {new.key_id: new.private.public_key()}, SITE)
    assert isinstance(got, Enrollment) and got.revision == 6
    assert (got.pin_verifier, got.duress_verifier, got.user_code, got.cards) == (pin, duress, "1001", ("w34:1:2",))


def test_republish_migrates_a_per_photo_record_to_one_fused_template() -> None:
    import numpy as np
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.admin.commands import resign
    from kiosk.match import fuse_rows
    from kiosk.mqtt.protocol import Signer, parse
    from kiosk.records import Enrollment

    signer = Signer(Ed25519PrivateKey.generate())
    photos = np.random.default_rng(3).normal(size=(3, 128)).astype(np.float32)
    photos /= np.linalg.norm(photos, axis=1, keepdims=True)
    old = signer.enrollment("hq", Enrollment("ann", "Ann", 1_000, "0" * 64, photos))
    record = parse(resign(signer, "hq", old, 2_000), {signer.key_id: signer.private.public_key()}, "hq")
    assert isinstance(record, Enrollment) and record.template == "fused-mean-v1"
    assert record.embeddings.shape == (1, 128)
    assert np.allclose(record.embeddings[0], fuse_rows(photos), atol=1e-6)
