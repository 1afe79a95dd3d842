"""An administrator never signs over a site rolled back: an old snapshot or record put back on the broker,
or a forged ack, holds the snapshot and republishing back until an administrator checks (``--force``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kiosk.admin import AdminState, cmd_sync
from kiosk.admin.rollback import SiteRolledBackError
from tests.admin_site import Admin, Run, RunningKiosk, publish_raw, retained
from tests.broker import Mosquitto
from tests.mqtt_kiosk import Collector
from tests.site import SITE, Site


def test_sync_never_signs_away_a_deletion_when_an_older_snapshot_is_put_back(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run,
        capsys: pytest.CaptureFixture[str]) -> None:
    a = admins[0]
    a.enroll("ann", 1)
    old_snapshot = retained(broker.port, "kiosk/hq/snapshot")  # ann enrolled
    old_ann = retained(broker.port, "kiosk/hq/enrollments/ann")
    code, _out, err = run_cli("admin", "delete", "--id", "ann", *a.opts)
    assert code == 0, err
    deleted_at = json.loads(retained(broker.port, "kiosk/hq/snapshot"))["people"]["ann"]
    assert deleted_at[1] is True
    # someone with write access to the broker puts back the old snapshot and ann's old enrollment
    publish_raw(broker.port, "kiosk/hq/snapshot", old_snapshot)
    publish_raw(broker.port, "kiosk/hq/enrollments/ann", old_ann)
    assert cmd_sync(a.args()) == 0  # the 12-hour timer re-signs the snapshot
    assert "is older than the one this administrator signed last" in capsys.readouterr().out
    fresh = json.loads(retained(broker.port, "kiosk/hq/snapshot"))
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
        old_snapshot = retained(broker.port, "kiosk/hq/snapshot")  # alice's: ann enrolled
        old_ann = retained(broker.port, "kiosk/hq/enrollments/ann")
        code, _out, err = run_cli("admin", "delete", "--id", "ann", *bob.opts)  # bob deletes her
        assert code == 0, err
        watch.wait_for(lambda m: any(t.endswith("/acks/ann") and b'"deleted"' in p for t, p in m))
    finally:
        door1.stop()
        watch.close()
    # someone with write access to the broker puts back alice's old snapshot and ann's old record
    publish_raw(broker.port, "kiosk/hq/snapshot", old_snapshot)
    publish_raw(broker.port, "kiosk/hq/enrollments/ann", old_ann)
    code, _out, err = run_cli("admin", "sync", *alice.opts)  # alice's own last snapshot predates the deletion
    assert code == 18 and "not signed" in err and "ann (snapshot" in err, err
    assert retained(broker.port, "kiosk/hq/snapshot") == old_snapshot  # nothing signed
    code, _out, err = run_cli("admin", "republish", *alice.opts)  # nor is anything republished over it
    assert code == 18 and "not signed" in err and "ann (snapshot" in err, err
    with pytest.raises(SiteRolledBackError, match="ann"):  # nor signed with someone else's enrollment
        alice.enroll("carl", 7)
    assert retained(broker.port, "kiosk/hq/enrollments/ann") == old_ann
    assert retained(broker.port, "kiosk/hq/snapshot") == old_snapshot
    code, _out, err = run_cli("admin", "sync", *alice.opts, "--force")  # an administrator who checked may sign
    assert code == 0, err
    assert retained(broker.port, "kiosk/hq/snapshot") != old_snapshot


def test_a_forged_ack_holds_the_administrators_back_until_one_checks_and_forces_once(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run) -> None:
    alice = admins[0]
    alice.enroll("ann", 1)
    alice.enroll("bob", 2)
    forged = int(time.time() * 1000) + 3_600_000  # plausible: an hour ahead
    publish_raw(broker.port, "kiosk/hq/ghost/acks/ann", json.dumps(
        {"person_id": "ann", "device": "ghost", "status": "deleted", "revision": forged}).encode())
    code, _out, err = run_cli("admin", "sync", *alice.opts)
    assert code == 18 and "ann (snapshot" in err and "--force" in err, err
    code, out, err = run_cli("admin", "sync", *alice.opts, "--force")
    assert code == 0 and "later runs ignore these revisions" in out, err
    code, _out, err = run_cli("admin", "sync", *alice.opts)  # checked once: the same evidence holds nothing back
    assert code == 0, err
    code, _out, err = run_cli("admin", "delete", "--id", "bob", *alice.opts)
    assert code == 0, err
    assert json.loads(retained(broker.port, "kiosk/hq/snapshot"))["people"]["ann"][1] is False  # never signed


def test_a_forged_ack_from_the_future_holds_nothing_back(
        tmp_path: Path, broker: Mosquitto, site: Site, admins: list[Admin], run_cli: Run) -> None:
    alice = admins[0]
    alice.enroll("ann", 1)
    publish_raw(broker.port, "kiosk/hq/ghost/acks/ann", json.dumps(
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
