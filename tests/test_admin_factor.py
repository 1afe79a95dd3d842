"""The second factor in ``kiosk admin enroll``: PIN verifiers, user codes and cards signed, never the PIN."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from kiosk.records import Enrollment
from tests.admin_site import Admin, Run, retained
from tests.broker import Mosquitto
from tests.site import FP, SITE, emb

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
    raw = retained(broker.port, "kiosk/hq/enrollments/ben")
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
