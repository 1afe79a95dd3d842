"""Signed enrollment messages: round trip, and every bad input refused with its reason."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.mqtt.protocol import MAX_PAYLOAD, ProtocolError, Signer, key_id, parse
from kiosk.store import Enrollment, Tombstone
from kiosk.vision.quant import l2_normalize

FP = "c" * 64
ADMIN = Signer(Ed25519PrivateKey.generate())
KEYS = {ADMIN.key_id: ADMIN.private.public_key()}


def _enrollment(pid: str = "ann", rev: int = 3, n: int = 2) -> Enrollment:
    return Enrollment(pid, "Ann", rev, FP, l2_normalize(np.random.default_rng(rev).normal(size=(n, 128))))


def _signed(**changes: object) -> bytes:
    """A validly signed message with fields changed before signing."""
    body = json.loads(ADMIN.enrollment("hq", _enrollment(), 1.0))
    body.update(changes)
    body.pop("signature")
    body.pop("key_id")
    del body["v"]
    body["v"] = 1
    return ADMIN._sign(body)


def test_enrollment_round_trip() -> None:
    e = _enrollment()
    got = parse(ADMIN.enrollment("hq", e, 1.0), KEYS, "hq", topic_person="ann")
    assert isinstance(got, Enrollment)
    assert got.person_id == "ann" and got.revision == 3 and got.model_fingerprint == FP
    assert np.allclose(got.embeddings, e.embeddings)


def test_tombstone_round_trip() -> None:
    got = parse(ADMIN.tombstone("hq", Tombstone("ann", 9), 1.0), KEYS, "hq")
    assert got == Tombstone("ann", 9)


def _tamper(payload: bytes, **changes: object) -> bytes:
    body = json.loads(payload)
    body.update(changes)
    return json.dumps(body).encode()


GOOD = ADMIN.enrollment("hq", _enrollment(), 1.0)
OTHER = Signer(Ed25519PrivateKey.generate())
NAN_ROW = base64.b64encode(np.full(128, np.nan, "<f4").tobytes()).decode()
SHORT_ROW = base64.b64encode(np.ones(64, "<f4").tobytes()).decode()
BIG_ROW = base64.b64encode(np.ones(128, "<f4").tobytes()).decode()


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{not json", "malformed_json"),
    (b"[1, 2]", "schema"),
    (b'{"type": "launch"}', "schema"),
    (_tamper(GOOD, extra_field=1), "schema"),
    (_tamper(GOOD, revision="3"), "schema"),
    (_tamper(GOOD, revision=0), "schema"),
    (_tamper(GOOD, person_id="../etc"), "schema"),
    (_tamper(GOOD, embeddings=[]), "schema"),
    (_tamper(GOOD, embeddings=["x"] * 11), "schema"),
    (_tamper(GOOD, name="Mallory"), "bad_signature"),
    (_tamper(GOOD, revision=4), "bad_signature"),
    (_tamper(GOOD, signature="AAAA"), "bad_signature"),
    (OTHER.enrollment("hq", _enrollment(), 1.0), "unknown_key"),
    (_signed(embeddings=[NAN_ROW]), "bad_embedding"),
    (_signed(embeddings=[SHORT_ROW]), "bad_embedding"),
    (_signed(embeddings=[BIG_ROW]), "bad_embedding"),
    (_signed(embeddings=["!!notbase64!!"]), "bad_embedding"),
    (ADMIN.enrollment("elsewhere", _enrollment(), 1.0), "wrong_site"),
    (b'{"v": 1, "valid_from": NaN}', "malformed_json"),
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


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "type", "site", "person_id", "name", "revision", "embeddings",
                                        "key_id", "signature", "issued_at", "enabled"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                                 st.lists(st.text(max_size=10), max_size=3))))
def test_arbitrary_json_objects_are_refused_cleanly(obj: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        parse(json.dumps(obj).encode(), KEYS, "hq")
