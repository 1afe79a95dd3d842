"""PIN verifiers: keyed, salted, parameters in the string, constant-time check, duress pair sharing one KDF."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import kiosk.factor.pin as pinmod
from kiosk.errors import ConfigError
from kiosk.factor.pin import (
    KdfParams,
    VerifierError,
    argon2_available,
    check,
    default_params,
    derive,
    make_verifier,
    make_verifier_pair,
    match,
    parse_verifier,
    read_secret,
)

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
# Cheap parameters: the tests check behaviour, benchmarks/pin_kdf.py measures the real cost.
FAST = [KdfParams("argon2id", memory_kib=64, iterations=1), KdfParams("scrypt", log2_n=10, r=1, p=1)]
IDS = ["argon2id", "scrypt"]


@pytest.mark.parametrize("params", FAST, ids=IDS)
def test_the_right_pin_checks_and_a_wrong_one_does_not(params: KdfParams) -> None:
    v = make_verifier("4711", SECRET, params)
    assert check("4711", v, SECRET)
    assert not check("4712", v, SECRET)
    assert not check("47110", v, SECRET)


@pytest.mark.parametrize("params", FAST, ids=IDS)
def test_the_verifier_names_its_algorithm_and_parameters_and_never_holds_the_pin(params: KdfParams) -> None:
    v = make_verifier("123456", SECRET, params)
    assert v.startswith(f"$kpin-{params.algorithm}$")
    assert parse_verifier(v).params == params
    assert "123456" not in v


def test_each_verifier_gets_its_own_random_salt() -> None:
    a, b = (make_verifier("4711", SECRET, FAST[0]) for _ in range(2))
    assert a != b
    assert parse_verifier(a).salt != parse_verifier(b).salt


@pytest.mark.parametrize("params", FAST, ids=IDS)
def test_the_tag_depends_on_the_site_secret(params: KdfParams) -> None:
    salt = os.urandom(16)
    assert derive("4711", salt, SECRET, params) != derive("4711", salt, OTHER_SECRET, params)


def test_a_verifier_from_another_site_secret_is_reported_not_silently_wrong() -> None:
    v = make_verifier("4711", SECRET, FAST[0])
    with pytest.raises(VerifierError, match="install the same kiosk-pin-secret"):
        check("4711", v, OTHER_SECRET)


def test_raised_parameters_still_check_older_verifiers() -> None:
    old = make_verifier("2580", SECRET, KdfParams("argon2id", memory_kib=64, iterations=1))
    new = make_verifier("2580", SECRET, KdfParams("argon2id", memory_kib=128, iterations=2))
    assert check("2580", old, SECRET) and check("2580", new, SECRET)
    assert parse_verifier(new).params.iterations == 2


def test_duress_pair_shares_a_salt_and_one_kdf_checks_both(monkeypatch: pytest.MonkeyPatch) -> None:
    normal, duress = make_verifier_pair("1357", "1358", SECRET, FAST[0])
    assert parse_verifier(normal).salt == parse_verifier(duress).salt
    evaluations: list[str] = []
    real = pinmod.derive

    def counting(pin: str, salt: bytes, secret: bytes, params: KdfParams) -> bytes:
        evaluations.append(pin)
        return real(pin, salt, secret, params)

    monkeypatch.setattr(pinmod, "derive", counting)
    assert match("1358", [normal, duress], SECRET) == [False, True]
    assert match("1357", [normal, duress], SECRET) == [True, False]
    assert match("0000", [normal, duress], SECRET) == [False, False]
    assert len(evaluations) == 3


def test_the_duress_pin_must_differ_from_the_pin() -> None:
    with pytest.raises(ValueError, match="must differ"):
        make_verifier_pair("1357", "1357", SECRET, FAST[0])


def test_a_non_digit_or_short_entry_never_checks_but_still_costs_a_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    v = make_verifier("4711", SECRET, FAST[0])
    evaluations: list[str] = []
    real = pinmod.derive

    def counting(pin: str, salt: bytes, secret: bytes, params: KdfParams) -> bytes:
        evaluations.append(pin)
        return real(pin, salt, secret, params)

    monkeypatch.setattr(pinmod, "derive", counting)
    assert not check("47a1", v, SECRET)
    assert not check("471", v, SECRET)
    assert len(evaluations) == 2


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", ""])
def test_enrolling_a_pin_that_is_not_4_to_12_digits_fails(pin: str) -> None:
    with pytest.raises(ValueError, match="4 to 12 digits"):
        make_verifier(pin, SECRET, FAST[0])


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(VerifierError, match="at least 32 random bytes"):
        make_verifier("4711", b"short", FAST[0])


@pytest.mark.parametrize("bad", ["", "4711", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$dGFn",
                                 "$kpin-argon2id$v=19$m=64,t=1,p=1$k=00000000$c2FsdA$dGFn"])
def test_malformed_verifiers_are_rejected_with_what_to_do(bad: str) -> None:
    with pytest.raises(VerifierError, match="re-enroll"):
        parse_verifier(bad)


def test_parameters_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="Argon2id parameters out of range"):
        KdfParams("argon2id", memory_kib=4)
    with pytest.raises(ValueError, match="scrypt parameters out of range"):
        KdfParams("scrypt", log2_n=30)


def test_default_parameters_are_argon2id_64_mib_when_the_library_has_it() -> None:
    params = default_params()
    if argon2_available():
        assert (params.algorithm, params.memory_kib, params.iterations) == ("argon2id", 65536, 3)
    else:
        assert (params.algorithm, params.log2_n, params.r) == ("scrypt", 16, 8)
    assert params.memory_bytes == 64 * 1024 * 1024


def test_read_secret_needs_32_bytes(tmp_path: Path) -> None:
    good, short = tmp_path / "pin.secret", tmp_path / "short"
    good.write_bytes(os.urandom(32))
    short.write_bytes(b"abc")
    assert read_secret(good) == good.read_bytes()
    with pytest.raises(ConfigError, match="holds 3 bytes"):
        read_secret(short)
    with pytest.raises(ConfigError, match="cannot read the PIN secret"):
        read_secret(tmp_path / "missing")
