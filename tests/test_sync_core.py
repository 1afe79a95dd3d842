"""The sync core without paho or a broker: every message becomes actions, nothing it receives can make it raise."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.mqtt.core import (
    MAX_DEPTH,
    Action,
    Changed,
    Emit,
    Publish,
    StaticTrust,
    SyncCore,
    SyncSettings,
    check_nesting,
    decode_json,
)
from kiosk.mqtt.protocol import ProtocolError, Signer
from kiosk.mqtt.snapshot import Snapshot, parse_snapshot, sign_snapshot
from kiosk.mqtt.topics import Topics
from kiosk.ratelimit import Limits, RefusalLimiter, TokenBucket, topic_key
from kiosk.records import Enrollment, Tombstone
from kiosk.store import Store
from kiosk.vision.quant import l2_normalize
from tests.clock import FakeClock

FP = "d" * 64
SITE = "hq"
ADMIN = Signer(Ed25519PrivateKey.generate())
KEYS = {ADMIN.key_id: ADMIN.private.public_key()}
TOPICS = Topics("kiosk", SITE, "door1")
SIGNED_KEY_LIST = b'{"signed":"root"}'  # what the fake trust below takes for a root-signed key list
T0 = 1_795_000_000_000  # revisions are issue times in ms


def emb(seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=(2, 128)))


def enroll_msg(pid: str, rev: int, name: str | None = None, fp: str = FP) -> bytes:
    return ADMIN.enrollment(SITE, Enrollment(pid, name or pid.title(), rev, fp, emb(rev % 1000)))


class SnapshotTrust(StaticTrust):
    """Fixed administrator keys plus the real signed snapshot (what ``Trust`` asks for, nothing more)."""

    site = SITE

    def __init__(self) -> None:
        super().__init__(KEYS, site=SITE)
        self.snapshot: Snapshot | None = None
        self.key_lists: list[bytes] = []

    def keys(self) -> dict[str, Ed25519PublicKey]:
        return KEYS

    def revoked(self) -> frozenset[str]:
        return frozenset()

    def now(self) -> float | None:
        return None

    def deleted_revision(self, person_id: str) -> int | None:
        return None if self.snapshot is None else self.snapshot.deleted().get(person_id)

    def on_key_list(self, payload: bytes, max_bytes: int = 0) -> None:
        # one exact payload stands for a list signed by the root (json.dumps spaces its separators, so the
        # fuzzing below cannot make it); "root" anywhere let the fuzzed body b'"root"' in
        if payload != SIGNED_KEY_LIST:
            raise ProtocolError("unknown_key", "not signed by the root")
        self.key_lists.append(payload)

    def on_snapshot(self, payload: bytes, max_bytes: int = 8 * 2**20) -> list[str]:
        self.snapshot = parse_snapshot(payload, KEYS, SITE, max_bytes=max_bytes)
        return sorted(self.snapshot.deleted())

    def admits(self, person_id: str, revision: int) -> str | None:
        return None if self.snapshot is None else self.snapshot.refusal(person_id, revision)


def make(tmp: Path, trust: Any = None, **limits: Any) -> tuple[SyncCore, Store]:
    trust = trust or StaticTrust(KEYS, site=SITE)
    store = Store(tmp / "kiosk.db", b"k" * 32, FP, verifier=trust)
    return SyncCore(TOPICS, store, trust, SyncSettings(**limits)), store


def publishes(actions: list[Action]) -> list[Publish]:
    return [a for a in actions if isinstance(a, Publish)]


def events(actions: list[Action], kind: str | None = None) -> list[Emit]:
    return [a for a in actions if isinstance(a, Emit) and (kind is None or a.kind == kind)]


def refusal(actions: list[Action]) -> str:
    """The reason of the one refusal ack among the actions."""
    acks = [json.loads(p.payload) for p in publishes(actions)]
    assert len(acks) == 1 and acks[0]["status"] == "refused", acks
    return str(acks[0]["reason"])


# applying

def test_a_valid_enrollment_is_applied_with_a_retained_ack_an_event_and_a_change(tmp_path: Path) -> None:
    core, store = make(tmp_path)
    actions = core.handle(TOPICS.enrollment("ann"), enroll_msg("ann", T0), 1.0)
    (ack,) = publishes(actions)
    assert ack.topic == "kiosk/hq/door1/acks/ann" and ack.retain and ack.qos == 1
    assert json.loads(ack.payload)["status"] == "applied"
    assert events(actions, "sync")[0].fields == {"person": "ann", "status": "applied", "revision": T0}
    assert Changed("ann", False) in actions
    assert store.revision("ann") == T0 and core.stats()["applied"] == 1


def test_a_replayed_current_revision_is_acked_current_and_an_older_one_refused_unretained(tmp_path: Path) -> None:
    core, store = make(tmp_path)
    core.handle(TOPICS.enrollment("ann"), enroll_msg("ann", T0 + 5), 1.0)
    again = core.handle(TOPICS.enrollment("ann"), enroll_msg("ann", T0 + 5), 2.0)
    assert json.loads(publishes(again)[0].payload)["status"] == "current" and publishes(again)[0].retain
    older = core.handle(TOPICS.enrollment("ann"), enroll_msg("ann", T0 + 3), 3.0)
    assert refusal(older) == "stale_revision"
    assert not publishes(older)[0].retain and publishes(older)[0].qos == 0
    assert store.revision("ann") == T0 + 5 and core.stats()["duplicates"] == 1


def test_a_tombstone_erases_and_acks_deleted(tmp_path: Path) -> None:
    core, store = make(tmp_path)
    core.handle(TOPICS.enrollment("ann"), enroll_msg("ann", T0), 1.0)
    actions = core.handle(TOPICS.enrollment("ann"), ADMIN.tombstone(SITE, Tombstone("ann", T0 + 1)), 2.0)
    ack = json.loads(publishes(actions)[0].payload)
    assert ack["status"] == "deleted" and ack["erased"] is True and publishes(actions)[0].retain
    assert Changed("ann", True) in actions and len(store.gallery()) == 0


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    core, store = make(tmp_path)
    name = "[" * 100 + "{" * 27  # 127 characters, all inside a JSON string
    core.handle(TOPICS.enrollment("ann"), enroll_msg("ann", T0, name=name), 1.0)
    assert store.revision("ann") == T0


# poison: every message refused with a reason, the next one applied

POISON = {
    "nesting_10k": (b"[" * 10_000 + b"]" * 6_000, "malformed_json"),  # 16,000 bytes: under the size limit
    "nesting_10k_closed": (b"[" * 10_000 + b"]" * 10_000, "oversized"),  # 20 KB: over it on enrollment topics
    "nested_objects": (b'{"a":' * 2500 + b"1" + b"}" * 2500, "malformed_json"),
    "digits_16k": (b"9" * 16_000, "malformed_json"),
    "numbers_16k": (("[" + ",".join(["123456789"] * 1600) + "]").encode(), "schema"),
    "huge_float": (b'{"v":1e999}', "malformed_json"),
    "nan": (b'{"v":NaN}', "malformed_json"),
    "invalid_utf8": (b'{"v":"\xff\xfe"}', "malformed_json"),
    "lone_surrogate": (b'{"v":"\xed\xa0\x80"}', "malformed_json"),
    "duplicate_keys": (b'{"v":2,"v":2}', "malformed_json"),
    "empty": (b"", "malformed_json"),
    "oversized": (b" " * 17_000, "oversized"),
}


@pytest.mark.parametrize("name", sorted(POISON))
def test_poison_on_an_enrollment_topic_is_refused_with_its_reason_and_sync_goes_on(tmp_path: Path, name: str) -> None:
    core, store = make(tmp_path)
    payload, reason = POISON[name]
    actions = core.handle(TOPICS.enrollment("evil"), payload, 1.0)
    assert refusal(actions) == reason
    assert events(actions, "sync_error")[0].fields["reason"] == reason
    core.handle(TOPICS.enrollment("ann"), enroll_msg("ann", T0), 2.0)
    assert store.revision("ann") == T0 and store.revision("evil") is None


@pytest.mark.parametrize("topic", [TOPICS.snapshot, TOPICS.keys])
@pytest.mark.parametrize("name", sorted(POISON))
def test_poison_on_the_snapshot_and_key_topics_is_refused_on_their_own_ack_topics(tmp_path: Path, topic: str,
                                                                                  name: str) -> None:
    core, _ = make(tmp_path, SnapshotTrust())
    payload, reason = POISON[name]
    actions = core.handle(topic, payload, 1.0)
    if reason == "oversized":  # far under the 8 MiB a snapshot may take: refused as what it is
        reason = "malformed_json"
    if reason == "schema":  # a list, not an object: the snapshot schema, or a key list not signed by the root
        reason = "schema" if topic == TOPICS.snapshot else "unknown_key"
    assert refusal(actions) == reason
    (ack,) = publishes(actions)
    assert ack.topic == (TOPICS.snapshot_ack if topic == TOPICS.snapshot else TOPICS.keys_ack) and not ack.retain


JSON_VALUES: list[Any] = [None, True, False, 0, -1, 2**53 + 1, 2**64, 10**300, 1.5, -0.0, 1e308, "", "x" * 300,
                          "ann", [], [1], ["a", None], {}, {"a": 1}, [[[]]]]
FIELDS = list(json.loads(enroll_msg("ann", T0)))


@pytest.mark.parametrize("field_name", FIELDS)
def test_every_json_type_in_every_field_is_refused_with_a_reason(tmp_path: Path, field_name: str) -> None:
    core, store = make(tmp_path, refusal_topic_burst=1000, refusal_total_burst=10_000)
    good = json.loads(enroll_msg("ann", T0))
    for value in JSON_VALUES:
        if value == good[field_name]:
            continue
        body = {**good, field_name: value}
        actions = core.handle(TOPICS.enrollment("ann"), json.dumps(body).encode(), 1.0)
        assert refusal(actions) in {"schema", "bad_signature", "malformed_json", "topic_mismatch", "wrong_site",
                                    "unknown_key"}, (field_name, value)
    # and with the field missing altogether
    del good[field_name]
    assert refusal(core.handle(TOPICS.enrollment("ann"), json.dumps(good).encode(), 1.0)) in {"schema", "bad_signature"}
    assert store.revision("ann") is None and core.stats()["refused_by_reason"].get("internal_error") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=300),
                      st.integers(1, 3000).map(lambda d: b"[" * d + b"]" * d)),
       which=st.sampled_from(["enrollment", "snapshot", "keys", "elsewhere"]))
def test_fuzzed_payloads_on_every_topic_never_raise_and_never_apply(tmp_path: Path, body: bytes, which: str) -> None:
    core, store = make(tmp_path / str(abs(hash((body, which)))), SnapshotTrust())
    topic = {"enrollment": TOPICS.enrollment("ann"), "snapshot": TOPICS.snapshot, "keys": TOPICS.keys,
             "elsewhere": "kiosk/hq/somewhere/else"}[which]
    actions = core.handle(topic, body, 1.0)
    assert all(not isinstance(a, Changed) for a in actions)
    assert core.stats()["refused"] == 1
    assert "internal_error" not in core.stats()["refused_by_reason"]
    store.close()


def test_nesting_check_refuses_only_beyond_the_limit() -> None:
    check_nesting(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    with pytest.raises(ProtocolError) as exc:
        check_nesting(b"[" * (MAX_DEPTH + 1))
    assert exc.value.reason == "malformed_json"
    assert decode_json(b'{"a":"]]]]"}', 100) == {"a": "]]]]"}


# failures of the collaborators

class ExplodingTrust(StaticTrust):
    def admits(self, person_id: str, revision: int) -> str | None:
        raise RuntimeError("trust store unreadable")


def test_a_collaborator_raising_anything_is_an_internal_error_refusal_not_a_crash(tmp_path: Path) -> None:
    core, store = make(tmp_path, ExplodingTrust(KEYS, site=SITE))
    actions = core.handle(TOPICS.enrollment("ann"), enroll_msg("ann", T0), 1.0)
    assert refusal(actions) == "internal_error" and "trust store unreadable" in json.loads(
        publishes(actions)[0].payload)["detail"]
    core.trust = StaticTrust(KEYS, site=SITE)
    store.use_verifier(core.trust)
    core.handle(TOPICS.enrollment("ann"), enroll_msg("ann", T0), 2.0)
    assert store.revision("ann") == T0


def test_a_recursion_error_anywhere_is_malformed_json(tmp_path: Path) -> None:
    class Deep(StaticTrust):
        def admits(self, person_id: str, revision: int) -> str | None:
            raise RecursionError("maximum recursion depth exceeded")

    core, _ = make(tmp_path, Deep(KEYS, site=SITE))
    assert refusal(core.handle(TOPICS.enrollment("ann"), enroll_msg("ann", T0), 1.0)) == "malformed_json"


def test_a_person_id_the_store_cannot_hold_is_refused_on_the_refusals_topic(tmp_path: Path) -> None:
    core, _ = make(tmp_path)
    actions = core.handle(TOPICS.enrollment("not valid!" * 20), enroll_msg("ann", T0), 1.0)
    assert refusal(actions) == "bad_topic" and publishes(actions)[0].topic == TOPICS.refused
    assert refusal(core.handle("kiosk/hq/enrollments/a/b", b"{}", 1.0)) == "unknown_topic"


# snapshot and key list through the trust

def test_static_trust_refuses_key_lists_and_snapshots_as_unsupported(tmp_path: Path) -> None:
    core, _ = make(tmp_path)
    snap = sign_snapshot(ADMIN, SITE, {}, set(KEYS), T0, T0 + 86_400_000)
    assert refusal(core.handle(TOPICS.snapshot, snap, 1.0)) == "unsupported"
    assert refusal(core.handle(TOPICS.keys, b'{"v":1}', 1.0)) == "unsupported"


def test_a_snapshot_erases_the_people_it_marks_deleted_at_their_snapshot_revision(tmp_path: Path) -> None:
    trust = SnapshotTrust()
    core, store = make(tmp_path, trust)
    for pid in ("ann", "bob"):
        core.handle(TOPICS.enrollment(pid), enroll_msg(pid, T0), 1.0)
    snap = sign_snapshot(ADMIN, SITE, {"ann": (T0, False), "bob": (T0 + 50, True), "cid": (T0 + 60, True)},
                         set(KEYS), T0 + 100, T0 + 86_400_000)
    actions = core.handle(TOPICS.snapshot, snap, 2.0)
    assert publishes(actions)[0].topic == TOPICS.snapshot_ack and publishes(actions)[0].retain
    assert {c.person_id for c in actions if isinstance(c, Changed)} == {"bob", "cid"}
    assert store.revision("bob") == T0 + 50 and store.revision("cid") == T0 + 60
    assert sorted(set(store.gallery().labels)) == ["ann"]
    assert events(actions, "sync")[-1].fields["erased_count"] == 2
    # the replayed older enrollment of a deleted person is refused by the snapshot, even on an empty store
    core2, store2 = make(tmp_path / "fresh", trust)
    core2.handle(TOPICS.snapshot, snap, 3.0)
    assert refusal(core2.handle(TOPICS.enrollment("bob"), enroll_msg("bob", T0), 4.0)) == "deleted_in_snapshot"
    assert refusal(core2.handle(TOPICS.enrollment("ann"), enroll_msg("ann", T0 - 10), 4.0)) == "older_than_snapshot"
    assert store2.revision("bob") == T0 + 50 and len(store2.gallery()) == 0


def test_a_key_list_the_trust_accepts_is_acked_retained_and_one_it_refuses_is_not(tmp_path: Path) -> None:
    trust = SnapshotTrust()
    core, _ = make(tmp_path, trust)
    ok = core.handle(TOPICS.keys, SIGNED_KEY_LIST, 1.0)
    assert publishes(ok)[0].retain and json.loads(publishes(ok)[0].payload)["status"] == "applied"
    bad = core.handle(TOPICS.keys, b'{"signed":"someone"}', 2.0)
    assert refusal(bad) == "unknown_key" and not publishes(bad)[0].retain
    assert len(trust.key_lists) == 1


# floods: counted, reported within budget, summarised

def test_a_refusal_flood_on_one_topic_reports_only_the_topic_burst_and_counts_everything(tmp_path: Path) -> None:
    core, _ = make(tmp_path, refusal_topic_burst=3, refusal_topic_per_min=1, refusal_total_burst=20)
    reported = sum(bool(core.handle(TOPICS.enrollment("evil"), b"{", 10.0)) for _ in range(1000))
    assert reported == 3
    s = core.stats()
    assert s["refused"] == 1000 and s["suppressed"] == 997 and s["refused_by_reason"] == {"malformed_json": 1000}


def test_a_flood_over_many_topics_is_bounded_by_the_total_budget_which_refills_with_time(tmp_path: Path) -> None:
    clock = FakeClock(100.0)
    core, _ = make(tmp_path, refusal_total_burst=20, refusal_total_per_s=2, refusal_topics_tracked=16)
    reported = sum(bool(core.handle(TOPICS.enrollment(f"p{i}"), b"{", clock())) for i in range(5000))
    assert reported == 20 and core.limiter.tracked_topics == 16
    clock.advance(5.0)  # 2 per second
    assert sum(bool(core.handle(TOPICS.enrollment(f"q{i}"), b"{", clock())) for i in range(100)) == 10


def test_one_summary_event_per_interval_with_refusals_and_none_without(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    core, _ = make(tmp_path, summary_interval_s=60, refusal_topic_burst=1, refusal_total_burst=1)
    assert core.tick(clock()) == []
    for i in range(500):
        core.handle(TOPICS.enrollment(f"p{i % 7}"), b"{" if i % 2 else b"\xff", clock())
    clock.advance(59)
    assert core.tick(clock()) == []
    clock.advance(1)
    (summary,) = core.tick(clock())
    assert isinstance(summary, Emit) and summary.kind == "sync_refusals"
    f = summary.fields
    assert f["refused"] == 500 and f["reported"] == 1 and f["suppressed"] == 499
    assert f["by_reason"] == {"malformed_json": 500} and f["topics"] == 7 and len(f["top_topics"]) == 5
    assert core.tick(clock()) == []
    clock.advance(600)
    assert core.tick(clock()) == []  # a quiet interval says nothing


def test_applied_messages_are_never_rate_limited(tmp_path: Path) -> None:
    core, store = make(tmp_path, refusal_topic_burst=1, refusal_total_burst=1, refusal_total_per_s=0)
    for _ in range(50):
        core.handle(TOPICS.enrollment("evil"), b"{", 1.0)
    actions = core.handle(TOPICS.enrollment("ann"), enroll_msg("ann", T0), 1.0)
    assert publishes(actions)[0].retain and store.revision("ann") == T0


# the token buckets

def test_token_bucket_spends_its_burst_then_refills_at_its_rate_and_ignores_a_clock_going_back() -> None:
    b = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.take(0.5) and not b.take(0.5)
    assert not b.take(-100.0)  # backwards: nothing refills
    assert b.full(100.0)


def test_limiter_spends_both_budgets_together_or_neither() -> None:
    lim = RefusalLimiter(Limits(topic_rate=0, topic_burst=2, total_rate=0, total_burst=3, max_topics=10))
    assert [lim.allow("a", 0) for _ in range(3)] == [True, True, False]
    assert [lim.allow("b", 0) for _ in range(2)] == [True, False]  # the total had one token left


def test_refusal_budgets_hold_a_bounded_key_not_the_senders_long_topic_names(tmp_path: Path) -> None:
    core, _ = make(tmp_path)  # 1024 topics tracked; MQTT allows topic names of 65,535 bytes
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1024):  # not a person id: refused bad_topic before the store is asked
            core.handle(TOPICS.enrollment_root + f"{i:05d}" + "x" * 60_000, b"{}", float(i))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert core.limiter.tracked_topics == 1024
    assert held < 8 * 2**20, f"{held / 2**20:.0f} MiB held after 1024 refused long topics"


def test_long_topics_alike_but_for_their_end_keep_budgets_of_their_own() -> None:
    lim = RefusalLimiter(Limits(topic_rate=0, topic_burst=1, total_rate=0, total_burst=10, max_topics=10))
    a, b = "x" * 70_000 + "a", "x" * 70_000 + "b"
    assert topic_key(a) != topic_key(b) and len(topic_key(a)) < 100 and topic_key("kiosk/hq/keys") == "kiosk/hq/keys"
    assert [lim.allow(a, 0), lim.allow(a, 0), lim.allow(b, 0)] == [True, False, True]
