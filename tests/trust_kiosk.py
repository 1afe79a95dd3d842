"""A kiosk of the test site with the snapshot requirement on, and a person deleted, as the trust tests use them."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from kiosk.mqtt.core import Publish, SyncCore
from kiosk.mqtt.topics import Topics
from tests.site import DAY_MS, SITE, Kiosk, Site

TOPICS = Topics("kiosk", SITE, "door1")


def acks(actions: Sequence[object]) -> list[dict[str, object]]:
    return [json.loads(a.payload) for a in actions if isinstance(a, Publish)]


def eve_enrolled(core: SyncCore, site: Site, now: int) -> None:
    """The root lists alice (40 days ago), alice's snapshot holds eve (2 days ago), eve's enrollment (10 days)."""
    alice, eve_rev = site.admins[0], now - 10 * DAY_MS
    core.handle(TOPICS.keys, site.key_list(now - 40 * DAY_MS, admins=[alice]), 0.0)
    core.handle(TOPICS.snapshot, site.snapshot({"eve": (eve_rev, False)}, now - 2 * DAY_MS, signer=alice), 0.0)
    core.handle(TOPICS.enrollment("eve"), site.enrollment("eve", eve_rev, signer=alice), 0.0)


def fresh(tmp_path: Path, site: Site, **kw: object) -> tuple[Kiosk, SyncCore]:
    k = Kiosk(site, tmp_path / "k.db", os.urandom(32), require_snapshot=True, **kw)  # type: ignore[arg-type]
    return k, SyncCore(TOPICS, k.store, k.trust)


class Deleted:
    """ann enrolled 30 days ago and deleted 20 days ago; bob enrolled 30 days ago and still in."""

    def __init__(self, site: Site, now: int) -> None:
        self.enrolled, self.deleted = now - 30 * DAY_MS, now - 20 * DAY_MS
        self.keys = site.key_list(self.enrolled - 1)
        self.ann = site.enrollment("ann", self.enrolled)
        self.bob = site.enrollment("bob", self.enrolled, seed=2)
        self.tombstone = site.tombstone("ann", self.deleted)
        # the snapshot of the day ann was enrolled: it expired 27 days ago
        self.old = site.snapshot({"ann": (self.enrolled, False), "bob": (self.enrolled, False)}, self.enrolled + 1,
                                 expires_ms=self.enrolled + 3 * DAY_MS)
        self.current = site.snapshot({"ann": (self.deleted, True), "bob": (self.enrolled, False)}, now - DAY_MS,
                                     expires_ms=now + 2 * DAY_MS)


def fail_first_save(k: Kiosk) -> list[str]:
    """The kiosk's next store write of a trust document fails (a full disk); the names that failed."""
    real, failed = k.store.save_state, list[str]()

    def save_state(name: str, payload: bytes) -> None:
        if not failed:
            failed.append(name)
            raise sqlite3.OperationalError("database or disk is full")
        real(name, payload)

    k.store.save_state = save_state  # type: ignore[method-assign]
    return failed
