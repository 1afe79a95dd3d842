"""The administrator's tool and the site's root-signed key list: publishing it, signing over it, reading it."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pytest

from kiosk.admin import AdminState, cmd_sync, publish_change
from kiosk.admin.commands import cmd_keys_publish, cmd_keys_sign
from kiosk.admin.keylist import site_keys
from kiosk.errors import ConfigError
from kiosk.mqtt.core import SyncCore
from kiosk.mqtt.topics import Topics
from kiosk.records import Enrollment
from tests import retained_broker
from tests.site import DAY_MS, FP, SITE, Kiosk, Site, emb

TOPICS = Topics("kiosk", SITE, "door1")


def _publish_args(tmp_path: Path, file: Path, root_pub: bool = True) -> argparse.Namespace:
    return argparse.Namespace(file=file, root_pub=tmp_path / "root.key.pub" if root_pub else None, site=SITE,
                              prefix="kiosk", host="127.0.0.1", port=1883)


def test_a_key_list_as_large_as_kiosks_take_is_published_signed_over_and_read(
        tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-lived site's revocations take the key list over 64 KiB; kiosks take it (sync.max_snapshot_bytes)."""
    broker = retained_broker.install(monkeypatch)
    alice, bert = site.admins
    now = int(time.time() * 1000)
    big = site.key_list(now - DAY_MS, revoked={f"{i:016x}" for i in range(4000)})
    assert len(big) > 64 * 1024
    (tmp_path / "keys.json").write_bytes(big)
    assert cmd_keys_publish(_publish_args(tmp_path, tmp_path / "keys.json")) == 0
    assert broker.topics["kiosk/hq/keys"] == big
    for name, admin in (("alice", alice), ("bert", bert)):
        retained_broker.admin_args(tmp_path, name, admin, None)  # writes NAME.key and NAME.key.pub
    args = argparse.Namespace(root_key=tmp_path / "root.key", site=SITE, admin=[tmp_path / "alice.key.pub"],
                              revoke=None, previous=tmp_path / "keys.json", out=tmp_path / "keys2.json")
    assert cmd_keys_sign(args) == 0  # the next list carries the revocations forward
    assert bert.key_id in json.loads((tmp_path / "keys2.json").read_bytes())["revoked"]

    # the other administrator's snapshot verifies against it, so the sync timer keeps their people
    root_pub = tmp_path / "root.key.pub"
    b_args = retained_broker.admin_args(tmp_path, "bert", bert, root_pub)
    publish_change(b_args, bert, AdminState(b_args.state), "zed",
                   lambda r: (bert.enrollment(SITE, Enrollment("zed", "Zed", r, FP, emb(1))), "Zed"))
    assert cmd_sync(retained_broker.admin_args(tmp_path, "alice", alice, root_pub)) == 0
    signed = json.loads(broker.topics["kiosk/hq/snapshot"])
    assert signed["key_id"] == alice.key_id and "zed" in signed["people"]


def test_junk_on_the_key_list_topic_never_stops_a_revocation(
        tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Someone holding a stolen administrator key and broker credentials leaves an unsigned "key list" dated
    far ahead on the topic: the root holder still publishes the list revoking that key, and kiosks take it."""
    broker = retained_broker.install(monkeypatch)
    alice, stolen = site.admins
    now = int(time.time() * 1000)
    k = Kiosk(site, tmp_path / "k.db", os.urandom(32))
    k.wall.now = time.time()
    core = SyncCore(TOPICS, k.store, k.trust)
    core.handle(TOPICS.keys, site.key_list(now - 10 * DAY_MS), 0.0)
    junk = json.dumps({"issued_at_ms": 2**53}).encode()
    broker.topics["kiosk/hq/keys"] = junk
    core.handle(TOPICS.keys, junk, 1.0)  # refused: the kiosk keeps the list it holds
    revoking = site.key_list(now, admins=[alice], revoked={stolen.key_id})
    (tmp_path / "keys2.json").write_bytes(revoking)
    assert cmd_keys_publish(_publish_args(tmp_path, tmp_path / "keys2.json")) == 0
    assert "does not verify against the root key" in capsys.readouterr().out
    core.handle(TOPICS.keys, broker.topics["kiosk/hq/keys"], 2.0)
    assert stolen.key_id in k.trust.revoked()

    # what is not even JSON is no key list either, with or without --root-pub: said, and overwritten
    broker.topics["kiosk/hq/keys"] = b"\xff not json"
    assert cmd_keys_publish(_publish_args(tmp_path, tmp_path / "keys2.json", root_pub=False)) == 0
    assert "not a key list" in capsys.readouterr().out and broker.topics["kiosk/hq/keys"] == revoking


def test_a_key_list_on_the_broker_as_new_as_the_one_published_is_kept(
        tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kiosks holding it would refuse an older one: signed by the root, it stays; unchecked, --root-pub is named."""
    broker = retained_broker.install(monkeypatch)
    now = int(time.time() * 1000)
    (tmp_path / "old.json").write_bytes(site.key_list(now - DAY_MS))
    broker.topics["kiosk/hq/keys"] = newer = site.key_list(now)
    with pytest.raises(ConfigError, match=r"root signed at .* sign a new one"):
        cmd_keys_publish(_publish_args(tmp_path, tmp_path / "old.json"))
    with pytest.raises(ConfigError, match="pass --root-pub to check it"):
        cmd_keys_publish(_publish_args(tmp_path, tmp_path / "old.json", root_pub=False))
    assert broker.topics["kiosk/hq/keys"] == newer


def test_the_newest_list_on_the_broker_re_encoded_is_that_list_not_an_old_one_put_back(
        tmp_path: Path, site: Site) -> None:
    """Kiosks take a copy re-encoded (it verifies: the signature covers the canonical form) as the list they
    hold: the administrator's tool says nothing of an old list put back either."""
    now = int(time.time() * 1000)
    state = AdminState(tmp_path / "state.db")
    newest = site.key_list(now - DAY_MS)
    state.record_key_list(now - DAY_MS, newest)
    root = site.root.private.public_key()
    respaced = newest.replace(b',"', b', "', 1)
    assert site_keys(respaced, root, SITE, state, site.admin, now).warnings == []
    older = site_keys(site.key_list(now - 2 * DAY_MS), root, SITE, state, site.admin, now)
    assert any("not the newest" in w for w in older.warnings)


def test_a_root_signed_list_dated_ahead_never_stops_a_revocation(
        tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The root's offline machine ran 30 days fast once: kiosks with a synchronised clock refuse the list it
    signed. It is not published; put on the broker anyway, it stops neither the next list signed over it
    (dated by the clock, with its revocations) nor that list's publication, and kiosks take the revocation."""
    broker = retained_broker.install(monkeypatch)
    alice, stolen = site.admins
    now = int(time.time() * 1000)
    k = Kiosk(site, tmp_path / "k.db", os.urandom(32))
    k.wall.now = time.time()
    core = SyncCore(TOPICS, k.store, k.trust)
    core.handle(TOPICS.keys, site.key_list(now - 40 * DAY_MS), 0.0)
    ahead = site.key_list(now + 30 * DAY_MS, revoked={"00000000000000aa"})
    (tmp_path / "ahead.json").write_bytes(ahead)
    with pytest.raises(ConfigError, match="more than a day ahead of this clock"):
        cmd_keys_publish(_publish_args(tmp_path, tmp_path / "ahead.json"))
    broker.topics["kiosk/hq/keys"] = ahead  # someone holding the stolen key's broker credentials puts it there
    core.handle(TOPICS.keys, ahead, 1.0)  # refused: from_the_future

    for name, admin in (("alice", alice), ("stolen", stolen)):
        retained_broker.admin_args(tmp_path, name, admin, None)  # writes NAME.key.pub
    sign = argparse.Namespace(root_key=tmp_path / "root.key", site=SITE, admin=[tmp_path / "alice.key.pub"],
                              revoke=None, previous=tmp_path / "ahead.json", out=tmp_path / "keys2.json")
    assert cmd_keys_sign(sign) == 0
    assert "more than a day ahead of this clock" in capsys.readouterr().out
    signed = json.loads((tmp_path / "keys2.json").read_bytes())
    assert now <= signed["issued_at_ms"] <= time.time() * 1000
    assert set(signed["revoked"]) == {stolen.key_id, "00000000000000aa"}
    assert cmd_keys_publish(_publish_args(tmp_path, tmp_path / "keys2.json")) == 0
    assert "the root signed at" in capsys.readouterr().out and broker.topics["kiosk/hq/keys"] != ahead
    core.handle(TOPICS.keys, broker.topics["kiosk/hq/keys"], 2.0)
    assert stolen.key_id in k.trust.revoked()

    broker.topics["kiosk/hq/keys"] = ahead  # and without --root-pub, what claims that date is no obstacle either
    assert cmd_keys_publish(_publish_args(tmp_path, tmp_path / "keys2.json", root_pub=False)) == 0
    assert "more than a day ahead" in capsys.readouterr().out and broker.topics["kiosk/hq/keys"] != ahead
