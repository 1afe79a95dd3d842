"""The administrator's tool against a real mosquitto and real kiosks (store, trust, sync core, paho adapter)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kiosk.admin import AdminState, cmd_sync, publish_change
from kiosk.records import Enrollment
from tests.admin_site import Admin, Run, RunningKiosk, publish_raw, retained
from tests.broker import Mosquitto
from tests.mqtt_kiosk import Collector
from tests.site import FP, SITE, Site, emb


def test_rollback_a_new_kiosk_does_not_admit_a_deleted_person_whose_old_enrollment_was_replayed(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run) -> None:
    a = admins[0]
    a.enroll("ann", 1)
    a.enroll("bob", 2)
    old_ann = retained(broker.port, "kiosk/hq/enrollments/ann")
    code, _out, err = run_cli("admin", "delete", "--id", "ann", *a.opts)
    assert code == 0, err
    publish_raw(broker.port, "kiosk/hq/enrollments/ann", old_ann)  # the tombstone overwritten on the broker
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
    publish_raw(broker.port, "kiosk/hq/door2/availability", b"offline")  # a kiosk that is known but away
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
    tomb = json.loads(retained(broker.port, "kiosk/hq/enrollments/ann"))
    assert tomb["type"] == "tombstone" and tomb["issued_at_ms"] > rev_a and tomb["key_id"] == b.signer.key_id
    snap = json.loads(retained(broker.port, "kiosk/hq/snapshot"))
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
        payload = json.loads(retained(broker.port, "kiosk/hq/enrollments/ann"))
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
        assert json.loads(retained(broker.port, "kiosk/hq/snapshot"))["people"]["ann"] == [rev, False]
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
    cid = json.loads(retained(broker.port, "kiosk/hq/enrollments/cid"))
    # alice re-signs what her state file holds (the rotation's step 3)
    code, out, err = run_cli("admin", "republish", *alice.opts)
    assert code == 18 and "2 people not republished" in err, err  # held back: said, and not a success
    assert "ann not republished: the site holds a newer change (deleted at" in out
    assert "cid not republished: the site holds a newer change (changed at" in out
    assert "re-signed and republished 1 of 3 records" in out
    assert json.loads(retained(broker.port, "kiosk/hq/enrollments/ann"))["type"] == "tombstone"
    assert json.loads(retained(broker.port, "kiosk/hq/enrollments/cid")) == cid
    dan = json.loads(retained(broker.port, "kiosk/hq/enrollments/dan"))
    assert dan["key_id"] == alice.signer.key_id
    snapshot = json.loads(retained(broker.port, "kiosk/hq/snapshot"))["people"]
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
    first = json.loads(retained(broker.port, "kiosk/hq/snapshot"))
    assert cmd_sync(a.args(snapshot_valid_h=1.0)) == 0
    second = json.loads(retained(broker.port, "kiosk/hq/snapshot"))
    assert second["issued_at_ms"] > first["issued_at_ms"]
    assert second["expires_at_ms"] - second["issued_at_ms"] == 3_600_000
    assert second["people"] == first["people"]
    for f in (a.state, tmp_path / "keys.json", a.key):
        assert f.stat().st_mode & 0o077 == 0, f
    assert a.state.parent.stat().st_mode & 0o077 == 0


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
