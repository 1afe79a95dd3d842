"""Signed enrollment messages: round trip, and every bad input refused with its reason."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kiosk.mqtt.protocol import MAX_PAYLOAD, ProtocolError, Signer, key_id, parse
from kiosk.store import Enrollment, Tombstone
from kiosk.vision.quant import l2_normalize

FP = "c" * 64
ADMIN = Signer(Ed25519PrivateKey.generate())
KEYS = {ADMIN.key_id: ADMIN.private.public_key()}


REV = 1_800_000_000_000  # the issue time in ms is the revision


def _enrollment(pid: str = "ann", rev: int = REV, n: int = 2) -> Enrollment:
    return Enrollment(pid, "Ann", rev, FP, l2_normalize(np.random.default_rng(rev % 1000).normal(size=(n, 128))))


def _signed(**changes: object) -> bytes:
    """A validly signed message with fields changed before signing."""
    body = json.loads(ADMIN.enrollment("hq", _enrollment()))
    body.update(changes)
    body.pop("signature")
    body.pop("key_id")
    return ADMIN.sign(body)


def test_enrollment_round_trip_keeps_the_signed_payload() -> None:
    e = _enrollment()
    payload = ADMIN.enrollment("hq", e)
    got = parse(payload, KEYS, "hq", topic_person="ann")
    assert isinstance(got, Enrollment)
    assert got.person_id == "ann" and got.revision == REV and got.model_fingerprint == FP
    assert np.allclose(got.embeddings, e.embeddings)
    assert got.signed == payload and got.key_id == ADMIN.key_id


def test_tombstone_round_trip() -> None:
    got = parse(ADMIN.tombstone("hq", Tombstone("ann", 9)), KEYS, "hq")
    assert got == Tombstone("ann", 9)


def test_a_revision_more_than_a_day_ahead_of_a_synchronised_clock_is_refused() -> None:
    payload = ADMIN.enrollment("hq", _enrollment(rev=REV + 86_400_001))
    with pytest.raises(ProtocolError) as err:
        parse(payload, KEYS, "hq", now_ms=REV)
    assert err.value.reason == "from_the_future"
    assert parse(payload, KEYS, "hq", now_ms=None).revision == REV + 86_400_001  # unknown clock: not on that ground
    assert parse(ADMIN.enrollment("hq", _enrollment(rev=1)), KEYS, "hq", now_ms=REV).revision == 1  # never by age


def test_a_revoked_key_is_named_as_such() -> None:
    with pytest.raises(ProtocolError) as err:
        parse(GOOD, {}, "hq", revoked={ADMIN.key_id})
    assert err.value.reason == "revoked_key"


def _tamper(payload: bytes, **changes: object) -> bytes:
    body = json.loads(payload)
    body.update(changes)
    return json.dumps(body).encode()


GOOD = ADMIN.enrollment("hq", _enrollment())
OTHER = Signer(Ed25519PrivateKey.generate())
NAN_ROW = base64.b64encode(np.full(128, np.nan, "<f4").tobytes()).decode()
SHORT_ROW = base64.b64encode(np.ones(64, "<f4").tobytes()).decode()
BIG_ROW = base64.b64encode(np.ones(128, "<f4").tobytes()).decode()


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{not json", "malformed_json"),
    (b"[1, 2]", "schema"),
    (b'{"type": "launch"}', "schema"),
    (_tamper(GOOD, extra_field=1), "schema"),
    (_tamper(GOOD, issued_at_ms="3"), "schema"),
    (_tamper(GOOD, issued_at_ms=0), "schema"),
    (_tamper(GOOD, issued_at_ms=2**53 + 1), "schema"),
    (_tamper(GOOD, issued_at_ms=True), "schema"),
    (_tamper(GOOD, v=1), "schema"),
    (_tamper(GOOD, person_id="../etc"), "schema"),
    (_tamper(GOOD, embeddings=[]), "schema"),
    (_tamper(GOOD, embeddings=["x"] * 11), "schema"),
    (_tamper(GOOD, name="Mallory"), "bad_signature"),
    (_tamper(GOOD, issued_at_ms=REV + 1), "bad_signature"),
    (_tamper(GOOD, signature="AAAA"), "bad_signature"),
    (OTHER.enrollment("hq", _enrollment()), "unknown_key"),
    (_signed(embeddings=[NAN_ROW]), "bad_embedding"),
    (_signed(embeddings=[SHORT_ROW]), "bad_embedding"),
    (_signed(embeddings=[BIG_ROW]), "bad_embedding"),
    (_signed(embeddings=["!!notbase64!!"]), "bad_embedding"),
    (_signed(embeddings=[None]), "schema"),
    (_signed(enabled=1), "schema"),
    (_signed(valid_from="yesterday"), "schema"),
    (ADMIN.enrollment("elsewhere", _enrollment()), "wrong_site"),
    (b'{"v": 1, "valid_from": NaN}', "malformed_json"),
    (b'{"v": 1, "valid_from": 1e999}', "malformed_json"),
    (b"[" * 8000 + b"]" * 8000, "malformed_json"),
    (b'{"a":' * 2000 + b"1" + b"}" * 2000, "malformed_json"),
    (b'{"v": ' + b"9" * 5000 + b"}", "malformed_json"),
    (b"[" + b"1," * 8000 + b"1]", "schema"),
    (b'{"v": 2, "v": 2}', "malformed_json"),
    (b'{"name": "' + bytes([0xFF, 0xFE]) + b'"}', "malformed_json"),
    (b'"just a string"', "schema"),
    (b"{" + b" " * MAX_PAYLOAD + b"}", "oversized"),
])
def test_bad_input_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse(payload, KEYS, "hq", topic_person="ann")
    assert err.value.reason == reason


def test_payload_for_another_person_than_its_topic_is_refused() -> None:
    with pytest.raises(ProtocolError) as err:
        parse(GOOD, KEYS, "hq", topic_person="bob")
    assert err.value.reason == "topic_mismatch"


def test_key_id_is_stable_and_short() -> None:
    assert key_id(ADMIN.private.public_key()) == ADMIN.key_id and len(ADMIN.key_id) == 16


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(data, KEYS, "hq")


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=20)
FIELDS = ["v", "type", "site", "person_id", "name", "issued_at_ms", "embeddings", "key_id", "signature", "enabled",
          "valid_from", "valid_until", "model_fingerprint"]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), JSON))
def test_arbitrary_json_objects_are_refused_cleanly(obj: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        parse(json.dumps(obj).encode(), KEYS, "hq")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FIELDS), JSON)
@example("issued_at_ms", 1)
def test_every_json_type_in_every_field_is_refused_with_a_reason_or_decoded_as_signed(field: str, value: object) -> None:
    body = json.loads(GOOD)
    if body.get(field) == value:
        return
    if field in ("key_id", "signature"):  # signing sets these: change them afterwards
        body[field] = value
        payload = json.dumps(body).encode()
    else:
        body[field] = value
        body.pop("signature")
        body.pop("key_id")
        payload = ADMIN.sign(body)
    try:
        got = parse(payload, KEYS, "hq")
    except ProtocolError as err:
        assert err.reason in {"schema", "bad_embedding", "wrong_site", "unknown_key", "malformed_json",
                              "bad_signature"}
        return
    # accepted only when the value is a valid one for that field, and then it is what was decoded
    decoded = {"enabled": "enabled", "name": "name", "valid_from": "valid_from", "valid_until": "valid_until",
               "issued_at_ms": "revision",  # any issue time from 1 ms up to now is a valid revision
               "person_id": "person_id"}  # another valid id ("0") names another person, signed as such
    assert isinstance(got, Enrollment) and field in decoded
    assert getattr(got, decoded[field]) == value


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 50_000), st.sampled_from([b"[", b'{"a":']))
def test_nesting_of_any_depth_is_malformed_json(depth: int, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    with pytest.raises(ProtocolError) as err:
        parse(opener * depth + b"1" + closer * depth, KEYS, "hq")
    assert err.value.reason in {"malformed_json", "schema", "oversized"}


# -- the second factor in the signed enrollment ---------------------------------------------------------------------

PIN_SECRET = bytes(range(32))


def _pair() -> tuple[str, str]:
    from kiosk.factor.pin import KdfParams, make_verifier_pair

    return make_verifier_pair("4711", "4712", PIN_SECRET, KdfParams("argon2id", memory_kib=64, iterations=1))


PIN_V, DURESS_V = _pair()
OTHER_V = _pair()[0]  # the same PIN under another salt


def test_second_factor_fields_round_trip_under_the_signature() -> None:
    e = Enrollment("ann", "Ann", REV, FP, _enrollment().embeddings, pin_verifier=PIN_V, duress_verifier=DURESS_V,
                   user_code="1001", cards=("h10301:12:3456", "w34:65535:0"))
    got = parse(ADMIN.enrollment("hq", e), KEYS, "hq", topic_person="ann")
    assert isinstance(got, Enrollment)
    assert (got.pin_verifier, got.duress_verifier, got.user_code, got.cards) == (
        PIN_V, DURESS_V, "1001", ("h10301:12:3456", "w34:65535:0"))
    for field, value in (("pin_verifier", OTHER_V), ("user_code", "1002"), ("cards", ["h10301:12:3457"])):
        with pytest.raises(ProtocolError) as err:
            parse(_tamper(ADMIN.enrollment("hq", e), **{field: value}), KEYS, "hq")
        assert err.value.reason == "bad_signature", field


def test_a_payload_without_second_factor_fields_carries_none_and_signs_as_before() -> None:
    body = json.loads(GOOD)
    assert not {"pin_verifier", "duress_verifier", "user_code", "cards"} & set(body)
    got = parse(GOOD, KEYS, "hq")
    assert isinstance(got, Enrollment)
    assert (got.pin_verifier, got.duress_verifier, got.user_code, got.cards) == (None, None, None, ())


@pytest.mark.parametrize("changes", [
    {"pin_verifier": "4711"},  # a PIN, not a verifier
    {"pin_verifier": PIN_V.replace("m=64", "m=4")},  # parameters out of range
    {"pin_verifier": PIN_V[:-4]},  # a short tag
    {"pin_verifier": PIN_V + "x" * 200},
    {"pin_verifier": None},
    {"duress_verifier": DURESS_V},  # a duress verifier needs a normal one
    {"pin_verifier": PIN_V, "duress_verifier": PIN_V},
    {"user_code": "12a4"},
    {"user_code": ""},
    {"user_code": "1" * 13},
    {"user_code": 1001},
    {"cards": []},
    {"cards": ["h10301:256:1"]},  # an 8-bit facility
    {"cards": ["h10301:1:65536"]},
    {"cards": ["h10301:012:1"]},  # not as the decoder writes it
    {"cards": ["w26:1:1"]},
    {"cards": ["h10301:1:1", "h10301:1:1"]},
    {"cards": ["h10301:1:1"] * 9},
    {"cards": "h10301:1:1"},
])
def test_bad_second_factor_fields_are_refused_as_schema(changes: dict[str, object]) -> None:
    with pytest.raises(ProtocolError) as err:
        parse(_signed(**changes), KEYS, "hq", topic_person="ann")
    assert err.value.reason == "schema"
