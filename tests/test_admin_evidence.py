"""What the broker holds unsigned (a person's retained record read for its revision, kiosks' acks) can hold an
administrator's signature back, within bounds: never stop a change for good, never hide a genuine one."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kiosk.admin import AdminState
from kiosk.admin.commands import cmd_delete
from kiosk.errors import ConfigError
from kiosk.mqtt.core import SyncCore
from kiosk.mqtt.keys import write_private_key
from kiosk.mqtt.topics import Topics
from tests import retained_broker
from tests.site import DAY_MS, SITE, Kiosk, Site

TOPICS = Topics("kiosk", SITE, "door1")


@pytest.fixture()
def site(tmp_path: Path) -> Site:
    s = Site(admins=2)
    write_private_key(tmp_path / "root.key", s.root.private)
    return s


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
