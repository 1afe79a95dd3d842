"""Administrator keys: files the kiosk loads, the root-signed key list, rotation and revocation."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kiosk.errors import ConfigError
from kiosk.mqtt.keys import load_public_keys, parse_key_list, write_private_key
from kiosk.mqtt.protocol import ProtocolError, Signer, key_id
from tests.site import SITE, Kiosk, Site


@pytest.fixture()
def site() -> Site:
    return Site(admins=2)


@pytest.fixture()
def kiosk(tmp_path: Path, site: Site) -> Kiosk:
    return Kiosk(site, tmp_path / "kiosk.db", os.urandom(32))


def test_keygen_output_is_loadable_from_the_admin_keys_folder(tmp_path: Path) -> None:
    pub = write_private_key(tmp_path / "admin.key", Ed25519PrivateKey.generate())
    assert pub.name == "admin.key.pub" and (tmp_path / "admin.key").stat().st_mode & 0o077 == 0
    folder = tmp_path / "admin-keys"
    folder.mkdir()
    (folder / pub.name).write_bytes(pub.read_bytes())  # the documented path: copy the .pub into the folder
    other = Ed25519PrivateKey.generate().public_key()
    (folder / "other.pem").write_bytes(other.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    raw = Ed25519PrivateKey.generate().public_key()
    (folder / "raw.pub").write_text(base64.b64encode(raw.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode())
    (folder / "README.txt").write_text("not a key")
    keys = load_public_keys([folder])
    assert len(keys) == 3 and key_id(other) in keys and key_id(raw) in keys
    with pytest.raises(ConfigError, match="overwrite"):
        write_private_key(tmp_path / "admin.key", Ed25519PrivateKey.generate())


def test_a_bad_key_file_is_a_clear_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.pub").write_text("hello")
    with pytest.raises(ConfigError, match="neither a PEM public key"):
        load_public_keys([tmp_path])


def test_a_key_list_signed_by_the_root_sets_the_admin_keys(kiosk: Kiosk, site: Site) -> None:
    assert kiosk.trust.keys() == {}  # a kiosk pinning a root trusts no admin before the list arrives
    kiosk.trust.on_key_list(site.key_list(kiosk.now_ms()))
    assert set(kiosk.trust.keys()) == {a.key_id for a in site.admins}


def test_a_key_list_not_signed_by_the_root_is_refused(kiosk: Kiosk, site: Site) -> None:
    impostor = Site()
    with pytest.raises(ProtocolError) as err:
        kiosk.trust.on_key_list(impostor.key_list(kiosk.now_ms()))
    assert err.value.reason == "unknown_key"
    body = json.loads(site.key_list(kiosk.now_ms()))
    body["keys"][0]["public_key"] = body["keys"][1]["public_key"]
    with pytest.raises(ProtocolError) as err:
        kiosk.trust.on_key_list(json.dumps(body).encode())
    assert err.value.reason == "bad_signature"
    assert kiosk.trust.keys() == {}


def test_an_older_key_list_is_refused_and_the_same_one_is_a_no_op(kiosk: Kiosk, site: Site) -> None:
    now = kiosk.now_ms()
    current = site.key_list(now, admins=[site.admins[1]], revoked={site.admins[0].key_id})
    kiosk.trust.on_key_list(current)
    kiosk.trust.on_key_list(current)  # retained, seen again after a reconnect
    with pytest.raises(ProtocolError) as err:
        kiosk.trust.on_key_list(site.key_list(now - 1000))  # the list that still had admin 0
    assert err.value.reason == "stale_key_list"
    assert set(kiosk.trust.keys()) == {site.admins[1].key_id}


def test_the_list_held_re_encoded_is_the_same_one_and_another_of_its_date_is_stale(kiosk: Kiosk, site: Site) -> None:
    now = kiosk.now_ms()
    current = site.key_list(now, admins=[site.admins[1]], revoked={site.admins[0].key_id})
    kiosk.trust.on_key_list(current)
    body = json.loads(current)
    kiosk.trust.on_key_list(json.dumps(dict(reversed(body.items())), indent=1).encode())  # still verifies
    with pytest.raises(ProtocolError) as err:
        kiosk.trust.on_key_list(site.key_list(now))  # signed apart, of the same date: another list
    assert err.value.reason == "stale_key_list"
    assert set(kiosk.trust.keys()) == {site.admins[1].key_id}


def test_rows_signed_by_a_revoked_key_stop_granting_until_re_signed(kiosk: Kiosk, site: Site) -> None:
    now = kiosk.now_ms()
    old, new = site.admins
    kiosk.trust.on_key_list(site.key_list(now - 100))
    kiosk.receive(site.enrollment("ann", now - 50, signer=old))
    kiosk.receive(site.enrollment("bob", now - 50, seed=2, signer=new))
    assert kiosk.admitted() == {"ann", "bob"}
    kiosk.trust.on_key_list(site.key_list(now, admins=[new], revoked={old.key_id}))
    assert kiosk.admitted() == {"bob"} and not kiosk.store.is_valid("ann")
    assert kiosk.store.store_health()["set_aside"] == {"revoked_key": 1}
    with pytest.raises(ProtocolError) as err:  # the old key cannot sign anything new
        kiosk.receive(site.enrollment("eve", now, seed=3, signer=old))
    assert err.value.reason == "revoked_key"
    # `kiosk admin republish`: the same person re-signed with the current key, at a new revision
    assert kiosk.receive(site.enrollment("ann", now + 1, signer=new)).applied  # type: ignore[attr-defined]
    assert kiosk.admitted() == {"ann", "bob"}


def test_a_restored_key_brings_its_rows_back_without_a_store_reset(kiosk: Kiosk, site: Site) -> None:
    now = kiosk.now_ms()
    a = site.admins[0]
    kiosk.trust.on_key_list(site.key_list(now - 100, admins=[a]))
    kiosk.receive(site.enrollment("ann", now - 50, signer=a))
    kiosk.trust.on_key_list(site.key_list(now - 90, admins=[site.admins[1]]))  # dropped, not revoked
    assert kiosk.admitted() == set()
    kiosk.trust.on_key_list(site.key_list(now - 80))
    assert kiosk.admitted() == {"ann"}


def test_a_kiosk_without_a_root_key_uses_its_key_files_and_ignores_key_lists(tmp_path: Path, site: Site) -> None:
    k = Kiosk(site, tmp_path / "k.db", os.urandom(32), root=False)
    assert set(k.trust.keys()) == {a.key_id for a in site.admins}
    with pytest.raises(ProtocolError) as err:
        k.trust.on_key_list(site.key_list(k.now_ms()))
    assert err.value.reason == "no_root_key"


def test_a_key_list_for_another_site_is_refused(site: Site) -> None:
    payload = Signer(site.root.private).sign({"v": 1, "type": "key_list", "site": "elsewhere", "issued_at_ms": 5,
                                              "keys": [], "revoked": []})
    with pytest.raises(ProtocolError) as err:
        parse_key_list(payload, site.root.private.public_key(), SITE)
    assert err.value.reason == "wrong_site"
