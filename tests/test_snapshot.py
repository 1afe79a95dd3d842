"""The signed site snapshot: deleted people stay deleted, old enrollments replayed stay out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.mqtt.actions import Emit
from kiosk.mqtt.core import SyncCore
from kiosk.mqtt.protocol import ProtocolError, Signer
from tests.site import DAY_MS, SITE, Kiosk, Site
from tests.trust_kiosk import TOPICS


@pytest.fixture()
def site() -> Site:
    return Site()


def _kiosk(tmp_path: Path, site: Site, name: str = "k", synced: bool = True) -> Kiosk:
    k = Kiosk(site, tmp_path / f"{name}.db", os.urandom(32), synced=synced)
    k.trust.on_key_list(site.key_list(int(k.wall() * 1000) - DAY_MS))
    return k


class History:
    """ann enrolled, then deleted; the broker's retained tombstone overwritten by her older enrollment."""

    def __init__(self, site: Site, now_ms: int) -> None:
        self.enrolled = now_ms - 60_000
        self.deleted = now_ms - 30_000
        self.old_enrollment = site.enrollment("ann", self.enrolled)
        self.tombstone = site.tombstone("ann", self.deleted)
        self.snapshot = site.snapshot({"ann": (self.deleted, True), "bob": (self.enrolled, False)}, now_ms - 20_000)
        self.bob = site.enrollment("bob", self.enrolled, seed=2)


def test_a_new_kiosk_from_an_empty_store_does_not_admit_a_deleted_person_replayed(tmp_path: Path, site: Site) -> None:
    k = _kiosk(tmp_path, site)
    h = History(site, k.now_ms())
    assert k.snapshot(h.snapshot) == ["ann"]  # recorded as deleted even though this kiosk never held her
    assert k.receive(h.old_enrollment, "ann") in ("deleted_in_snapshot", "stale_revision") or \
        not k.receive(h.old_enrollment, "ann").applied  # type: ignore[attr-defined]
    assert k.receive(h.bob, "bob").applied  # type: ignore[attr-defined]
    assert k.admitted() == {"bob"} and not k.store.is_valid("ann")


def test_the_replayed_enrollment_arriving_before_the_snapshot_is_erased_by_it(tmp_path: Path, site: Site) -> None:
    k = _kiosk(tmp_path, site)
    h = History(site, k.now_ms())
    assert k.receive(h.old_enrollment, "ann").applied  # type: ignore[attr-defined]  # no snapshot yet: nothing to say
    assert k.admitted() == {"ann"}
    assert k.snapshot(h.snapshot) == ["ann"]
    assert k.admitted() == set() and not k.store.is_valid("ann")
    assert k.store.people()[0]["deleted"]


def test_the_admission_rule_without_a_store(tmp_path: Path, site: Site) -> None:
    k = _kiosk(tmp_path, site)
    now = k.now_ms()
    k.trust.on_snapshot(site.snapshot({"ann": (now - 10, False), "bob": (now - 10, True)}, now))
    assert k.trust.admits("ann", now - 11) == "older_than_snapshot"
    assert k.trust.admits("ann", now - 10) is None
    assert k.trust.admits("ann", now + 5) is None  # a change made after the snapshot
    assert k.trust.admits("bob", now - 10) == "deleted_in_snapshot"
    assert k.trust.admits("bob", now - 9) is None  # enrolled again after the deletion
    assert k.trust.admits("cid", 1) is None  # not in the snapshot: enrolled after it; never refused by age
    assert k.trust.admits("cid", now + DAY_MS + 1) == "from_the_future"


def test_an_enrollment_older_than_the_snapshot_stops_granting(tmp_path: Path, site: Site) -> None:
    k = _kiosk(tmp_path, site)
    now = k.now_ms()
    k.receive(site.enrollment("ann", now - 100))
    k.snapshot(site.snapshot({"ann": (now - 50, False)}, now))  # a newer enrollment exists somewhere
    assert k.admitted() == set()
    assert k.store.store_health()["set_aside"] == {"older_than_snapshot": 1}
    assert k.receive(site.enrollment("ann", now - 50, seed=5)).applied  # type: ignore[attr-defined]
    assert k.admitted() == {"ann"}


def test_an_older_snapshot_is_refused(tmp_path: Path, site: Site) -> None:
    k = _kiosk(tmp_path, site)
    now = k.now_ms()
    newer = site.snapshot({"ann": (now - 10, True)}, now)
    k.trust.on_snapshot(newer)
    assert k.trust.on_snapshot(newer) == []  # the retained one again
    with pytest.raises(ProtocolError) as err:
        k.trust.on_snapshot(site.snapshot({"ann": (now - 20, False)}, now - 5))
    assert err.value.reason == "stale_snapshot"
    assert k.trust.admits("ann", now - 20) == "deleted_in_snapshot"


def test_a_snapshot_signed_by_an_unknown_or_revoked_key_is_refused(tmp_path: Path, site: Site) -> None:
    k = _kiosk(tmp_path, site)
    rogue = Site()
    with pytest.raises(ProtocolError) as err:
        k.trust.on_snapshot(rogue.snapshot({}, k.now_ms()))
    assert err.value.reason == "unknown_key"
    tampered = json.loads(site.snapshot({"ann": (5, True)}, k.now_ms()))
    tampered["people"]["ann"] = [5, False]
    with pytest.raises(ProtocolError) as err:
        k.trust.on_snapshot(json.dumps(tampered).encode())
    assert err.value.reason == "bad_signature"


@pytest.mark.parametrize("people", [{"ann": [1, 0]}, {"ann": [True, False]}, {"ann": [1]}, {"../x": [1, False]},
                                    {"ann": [2**60, False]}, {"ann": "1"}])
def test_a_malformed_snapshot_is_refused_by_schema(tmp_path: Path, site: Site, people: dict[str, object]) -> None:
    k = _kiosk(tmp_path, site)
    body = json.loads(site.snapshot({}, k.now_ms()))
    body["people"] = people
    body.pop("signature")
    body.pop("key_id")
    with pytest.raises(ProtocolError) as err:
        k.trust.on_snapshot(site.admin.sign(body))
    assert err.value.reason == "schema"


def test_a_snapshot_from_the_future_is_refused_only_by_a_synchronised_clock(tmp_path: Path, site: Site) -> None:
    k = _kiosk(tmp_path, site)
    ahead = site.snapshot({}, k.now_ms() + 2 * DAY_MS)
    with pytest.raises(ProtocolError) as err:
        k.trust.on_snapshot(ahead)
    assert err.value.reason == "from_the_future"
    k.synced = False
    k.wall.advance(1)
    assert k.trust.on_snapshot(ahead) == []


def test_a_person_cannot_be_made_undeletable_by_a_snapshot_revision_from_the_future(tmp_path: Path) -> None:
    """A revision in a snapshot is a record's issue time, refused more than a day ahead as the record is: a key
    that is later revoked cannot leave a deletion behind that no record an administrator signs can pass."""
    site = Site()
    stolen = Signer(Ed25519PrivateKey.generate())
    site.admins.append(stolen)
    k = _kiosk(tmp_path, site)
    now = k.now_ms()
    k.snapshot(site.snapshot({"bob": (now - 5 * DAY_MS, False)}, now - DAY_MS))
    k.receive(site.enrollment("bob", now - 5 * DAY_MS), "bob")
    for far in (2**53 - 1, now + 2 * DAY_MS):
        with pytest.raises(ProtocolError) as err:
            k.trust.on_snapshot(site.snapshot({"bob": (far, True)}, now - 1000, signer=stolen))
        assert err.value.reason == "from_the_future" and "'bob'" in str(err.value)
    assert k.admitted() == {"bob"} and k.store.revision("bob") == now - 5 * DAY_MS
    within_a_day = {"bob": (now - 5 * DAY_MS, False), "cy": (now + DAY_MS - 1, True)}
    assert k.snapshot(site.snapshot(within_a_day, now - 1000)) == ["cy"]
    # the stolen key is revoked; bob is enrolled again, and the next snapshot says so
    site.admins.remove(stolen)
    k.trust.on_key_list(site.key_list(now - 500, revoked={stolen.key_id}))
    k.wall.advance(DAY_MS / 1000)
    later = k.now_ms()
    k.snapshot(site.snapshot({"bob": (later - 10, False)}, later - 5))
    assert k.receive(site.enrollment("bob", later - 10), "bob").applied  # type: ignore[attr-defined]
    assert k.admitted() == {"bob"}


def test_expiry_raises_the_alarm_and_an_unknown_clock_fails_closed(tmp_path: Path, site: Site) -> None:
    k = _kiosk(tmp_path, site)
    now = k.now_ms()
    assert not k.trust.expired() and k.trust.status()["snapshot_missing"]
    k.trust.on_snapshot(site.snapshot({}, now, expires_ms=now + 3_600_000))
    assert not k.trust.expired()
    k.wall.advance(3601)
    assert k.trust.expired()
    assert k.trust.expired(now / 1000 + 10) is False  # an explicit wall time
    k.wall.advance(-3601)
    k.synced = False
    k.wall.advance(0.01)
    assert k.trust.expired() and k.trust.status()["clock_synchronised"] is False


def test_a_restarted_kiosk_keeps_refusing_offline(tmp_path: Path, site: Site) -> None:
    k = _kiosk(tmp_path, site)
    h = History(site, k.now_ms())
    k.snapshot(h.snapshot)
    k.store.close()
    again = Kiosk(site, tmp_path / "k.db", os.urandom(32))  # a fresh store key: nothing readable, trust state kept
    assert again.trust.admits("ann", h.enrolled) == "deleted_in_snapshot"


def test_a_snapshot_no_current_key_signed_is_refused_by_its_signer_before_its_entries_are_validated(
        tmp_path: Path, site: Site) -> None:
    """Anyone may publish on the snapshot topic: what no current key signed is refused for that, after one
    strict decoding, before a schema validation of however many entries it lists."""
    k = _kiosk(tmp_path, site)
    junk = {"v": 1, "type": "snapshot", "site": SITE, "issued_at_ms": 2, "expires_at_ms": 3,
            "people": {f"p{i}": "not an entry" for i in range(20_000)}, "keys": [],
            "key_id": site.admin.key_id, "signature": "AAAA"}
    for signature, reason in (("AAAA", "bad_signature"), ("A" * 86 + "==", "bad_signature"), (7, "bad_signature")):
        with pytest.raises(ProtocolError) as err:
            k.trust.on_snapshot(json.dumps({**junk, "signature": signature}).encode())
        assert err.value.reason == reason
    for key_id in (Site().admin.key_id, None, ["x"]):
        with pytest.raises(ProtocolError) as err:
            k.trust.on_snapshot(json.dumps({**junk, "key_id": key_id}).encode())
        assert err.value.reason == "unknown_key"
    core = SyncCore(TOPICS, k.store, k.trust)
    actions = core.handle(TOPICS.snapshot, json.dumps(junk).encode(), 1.0)
    assert core.stats()["refused_by_reason"] == {"bad_signature": 1} and not k.trust.status()["snapshot_people"]
    assert any(isinstance(a, Emit) and a.kind == "sync_error" for a in actions)
    for duplicate in (b'{"v":1,"v":1}', b"[" * 5000 + b"]" * 5000):  # still refused by the strict decoding first
        assert core.handle(TOPICS.snapshot, duplicate, 2.0) and core.stats()["refused_by_reason"]["malformed_json"]
