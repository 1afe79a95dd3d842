"""A kiosk's standing (it has held a current snapshot of its site) belongs to one site and one root key.

A store kept across a change of site name or root key is, for the new one, a kiosk without history; a
standing row written before it named them counts once, then is rewritten or dropped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kiosk.mqtt.core import SyncCore
from kiosk.mqtt.keys import sign_key_list
from kiosk.mqtt.snapshot import sign_snapshot
from kiosk.mqtt.trust import SiteTrust
from kiosk.store import Store
from tests.site import DAY_MS, FP, Kiosk, Site
from tests.trust_kiosk import TOPICS, Deleted, acks


def test_a_store_of_another_site_starts_without_its_snapshot(tmp_path: Path) -> None:
    """The store kept from before the site was renamed: its key list and snapshot are another site's."""
    site = Site()
    key = os.urandom(32)
    k = Kiosk(site, tmp_path / "k.db", key, require_snapshot=True)
    core = SyncCore(TOPICS, k.store, k.trust)
    now = k.now_ms()
    core.handle(TOPICS.keys, site.key_list(now - DAY_MS), 0.0)
    core.handle(TOPICS.snapshot, site.snapshot({}, now - 1000), 0.0)
    k.store.close()
    store = Store(tmp_path / "k.db", key, FP)
    trust = SiteTrust(store, "other", k.clock, root_key=site.root.private.public_key())
    assert trust.status()["snapshot_missing"] and trust.status()["key_list_issued_at_ms"] is None


def _renamed(tmp_path: Path, site: Site, key: bytes, legacy: bool) -> tuple[Kiosk, SyncCore]:
    """A kiosk that held a current snapshot as site "old", its store kept when the site became ``SITE``.
    ``legacy``: its record of a current snapshot as written before that record named the site."""
    old = Kiosk(site, tmp_path / "k.db", key, require_snapshot=True)
    old.trust = SiteTrust(old.store, "old", old.clock, root_key=site.root.private.public_key())
    now = old.now_ms()
    admins = {site.admin.key_id: site.admin.private.public_key()}
    old.trust.on_key_list(sign_key_list(site.root, "old", admins, now - 10 * DAY_MS))
    old.trust.on_snapshot(sign_snapshot(site.admin, "old", {}, set(admins), now - 1000, now + 3 * DAY_MS))
    assert old.trust.status()["snapshot_current_seen"]
    if legacy:
        old.store.save_state("snapshot_fresh", str(now - 1000).encode())
    old.store.close()
    k = Kiosk(site, tmp_path / "k.db", key, require_snapshot=True)
    return k, SyncCore(TOPICS, k.store, k.trust)


@pytest.mark.parametrize("legacy", [False, True])
def test_a_store_of_another_site_admits_nobody_until_a_current_snapshot_of_this_site(tmp_path: Path,
                                                                                    legacy: bool) -> None:
    """Having held a current snapshot of the site it had before counts for nothing here: ann, deleted in this
    site, has her old record put back and the snapshot withheld; she is held, as by a new kiosk."""
    site, key = Site(), os.urandom(32)
    k, core = _renamed(tmp_path, site, key, legacy)
    h = Deleted(site, k.now_ms())
    assert not k.trust.status()["snapshot_current_seen"] and k.trust.expired()
    core.handle(TOPICS.keys, h.keys, 0.0)
    [ack] = acks(core.handle(TOPICS.enrollment("ann"), h.ann, 0.0))
    assert ack["status"] == "held" and ack["reason"] == "no_snapshot" and k.admitted() == set()
    core.handle(TOPICS.enrollment("bob"), h.bob, 0.0)
    core.handle(TOPICS.snapshot, h.current, 1.0)  # this site's current snapshot
    assert k.admitted() == {"bob"} and k.trust.status()["snapshot_current_seen"]
    k.store.close()
    again = Kiosk(site, tmp_path / "k.db", key, require_snapshot=True)  # earned here now: kept across a restart
    assert again.trust.status()["snapshot_current_seen"] and again.admitted() == {"bob"}


def _bob_admitted(site: Site, path: Path, key: bytes) -> Kiosk:
    """A kiosk that took the site's key list, its current snapshot and bob's enrollment (``Deleted``)."""
    k = Kiosk(site, path, key, require_snapshot=True)
    core = SyncCore(TOPICS, k.store, k.trust)
    h = Deleted(site, k.now_ms())
    core.handle(TOPICS.keys, h.keys, 0.0)
    core.handle(TOPICS.snapshot, h.current, 0.0)
    core.handle(TOPICS.enrollment("bob"), h.bob, 0.0)
    return k


def test_a_new_root_key_starts_without_the_standing_the_old_one_gave(tmp_path: Path) -> None:
    """After a lost root key, a new one is pinned: what the old root's administrators signed counts no more."""
    site, key = Site(), os.urandom(32)
    k = _bob_admitted(site, tmp_path / "k.db", key)
    assert k.trust.status()["snapshot_current_seen"] and k.admitted() == {"bob"}
    k.store.close()
    renewed = Site()
    renewed.admins = site.admins
    again = Kiosk(renewed, tmp_path / "k.db", key, require_snapshot=True)
    assert not again.trust.status()["snapshot_current_seen"] and again.trust.expired() and again.admitted() == set()


def test_a_standing_written_before_it_named_its_root_is_dropped_not_earned_again_by_a_new_roots_key_list(
        tmp_path: Path) -> None:
    """A kiosk upgraded from before the standing named its root: its root key is replaced at the same time.
    The old record does not count under the new root, at the first start nor at any later one, once the new
    root's key list is stored: ann, deleted under the new root, has her old record put back with the new
    snapshot withheld, and is held across restarts until that snapshot comes."""
    site, key = Site(), os.urandom(32)
    k = Kiosk(site, tmp_path / "k.db", key, require_snapshot=True)
    core = SyncCore(TOPICS, k.store, k.trust)
    now = k.now_ms()
    core.handle(TOPICS.keys, site.key_list(now - 40 * DAY_MS), 0.0)
    core.handle(TOPICS.snapshot, site.snapshot({}, now - DAY_MS, expires_ms=now + 2 * DAY_MS), 0.0)
    k.store.save_state("snapshot_fresh", str(now - DAY_MS).encode())  # as written before it named them
    k.store.close()
    renewed = Site()
    renewed.admins, renewed.admin = site.admins, site.admin
    h = Deleted(renewed, now)
    for start in range(2):
        again = Kiosk(renewed, tmp_path / "k.db", key, require_snapshot=True)
        core = SyncCore(TOPICS, again.store, again.trust)
        assert not again.trust.status()["snapshot_current_seen"], f"start {start}"
        assert again.store.load_state("snapshot_fresh") is None
        core.handle(TOPICS.keys, h.keys, 0.0)  # the new root's list is stored
        core.handle(TOPICS.enrollment("ann"), h.ann, 0.0)
        assert again.trust.admits("ann", h.enrolled) == "no_snapshot" and again.admitted() == set()
        again.store.close()


def test_a_standing_written_before_it_named_its_root_is_rewritten_when_the_stored_key_list_verifies(
        tmp_path: Path) -> None:
    site, key = Site(), os.urandom(32)
    k = _bob_admitted(site, tmp_path / "k.db", key)
    k.store.save_state("snapshot_fresh", str(k.now_ms() - DAY_MS).encode())
    k.store.close()
    again = Kiosk(site, tmp_path / "k.db", key, require_snapshot=True)
    assert again.trust.status()["snapshot_current_seen"] and again.admitted() == {"bob"}
    assert json.loads(again.store.load_state("snapshot_fresh") or b"")["root"] == site.root.key_id
