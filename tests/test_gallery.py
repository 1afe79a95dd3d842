"""The incremental gallery equals a full rebuild, and a snapshot never changes under its reader."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.gallery import IncrementalGallery
from kiosk.match import Gallery

DIM = 8


def _rows(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def _full_rebuild(people: dict[str, np.ndarray]) -> Gallery:
    labels = [p for p, rows in people.items() for _ in rows]
    return Gallery(np.concatenate(list(people.values())) if people else np.zeros((0, DIM), np.float32), labels)


def _as_multiset(g: Gallery) -> list[tuple[str, tuple[float, ...]]]:
    return sorted((label, tuple(np.round(row, 6))) for label, row in zip(g.labels, g.matrix))


OPS = st.lists(st.tuples(st.sampled_from(["put", "remove"]), st.sampled_from(list("abcdefgh")),
                         st.integers(1, 10), st.integers(0, 10_000)), max_size=80)


@settings(max_examples=200, deadline=None)
@given(OPS, st.integers(1, 4))
def test_incremental_gallery_equals_a_full_rebuild_after_random_operations(
        ops: list[tuple[str, str, int, int]], capacity: int) -> None:
    g = IncrementalGallery(DIM, capacity=capacity)
    truth: dict[str, np.ndarray] = {}
    snapshots: list[tuple[Gallery, list[tuple[str, tuple[float, ...]]]]] = []
    for op, label, n, seed in ops:
        if op == "put":
            rows = _rows(seed, n)
            g.put(label, rows)
            truth[label] = rows
        else:
            assert g.remove(label) == (label in truth)
            truth.pop(label, None)
        snap = g.snapshot()
        snapshots.append((snap, _as_multiset(snap)))
        assert _as_multiset(snap) == _as_multiset(_full_rebuild(truth))
        assert len(g) == sum(len(r) for r in truth.values()) and g.people() == len(truth)
    for snap, seen in snapshots:  # copy-on-write: no later write changed what a reader holds
        assert _as_multiset(snap) == seen


def test_a_match_finds_the_person_after_other_people_are_removed() -> None:
    g = IncrementalGallery(DIM, capacity=2)
    for i, label in enumerate("abcde"):
        g.put(label, _rows(i, 3))
    g.remove("a")
    g.remove("c")
    probe = _rows(4, 3)[1]
    m = g.snapshot().match(probe / np.linalg.norm(probe), -1.0)
    assert m.label == "e"


def test_appending_people_copies_nothing_a_reader_holds() -> None:
    g = IncrementalGallery(DIM, capacity=1024)
    for i in range(100):
        g.put(f"p{i}", _rows(i, 3))
        g.snapshot()
    assert g.copies == 0  # appends land in rows no snapshot sees
    g.remove("p0")
    assert g.copies == 1  # the swap writes a row a snapshot sees: copied once
    g.remove("p1")
    assert g.copies == 1  # no snapshot taken since: written in place


def test_the_snapshot_is_cached_between_changes() -> None:
    g = IncrementalGallery(DIM)
    g.put("a", _rows(1, 2))
    assert g.snapshot() is g.snapshot()
    g.put("a", _rows(2, 1))
    assert len(g.snapshot()) == 1 and np.allclose(g.rows_of("a"), _rows(2, 1))


STORE_OPS = st.lists(st.tuples(st.sampled_from(["enroll", "enroll", "delete", "revoke", "restore", "snapshot"]),
                               st.sampled_from(["ann", "bob", "cid", "dan"]), st.integers(0, 1), st.integers(1, 5)),
                     min_size=1, max_size=14)


@settings(max_examples=25, deadline=None)
@given(STORE_OPS)
def test_the_running_store_gallery_equals_a_fresh_verified_load_after_random_changes(
        ops: list[tuple[str, str, int, int]]) -> None:
    import os
    import tempfile
    from pathlib import Path

    from tests.site import Kiosk, Site

    site = Site(admins=2)
    with tempfile.TemporaryDirectory() as d:
        key = os.urandom(32)
        k = Kiosk(site, Path(d) / "k.db", key)
        t = k.now_ms() - 100_000
        k.trust.on_key_list(site.key_list(t))
        k.admitted()  # the gallery is loaded: from here on every change is applied incrementally
        for op, pid, admin, n in ops:
            t += 1000
            signer = site.admins[admin]
            if op == "enroll":
                try:
                    k.receive(site.enrollment(pid, t, seed=t % 997, signer=signer), pid)
                except Exception as exc:  # a revoked signer: refused, as a kiosk would
                    assert "revoked_key" in str(exc)
            elif op == "delete":
                k.receive(site.tombstone(pid, t, signer=site.admins[1]), pid)
            elif op in ("revoke", "restore"):
                chosen = [site.admins[1]] if op == "revoke" else site.admins
                k.trust.on_key_list(site.key_list(t, admins=chosen,
                                                  revoked={site.admins[0].key_id} if op == "revoke" else None))
            else:
                k.snapshot(site.snapshot({pid: (t - n * 1000, n % 2 == 0)}, t, signer=site.admins[1]))
            fresh = Kiosk(site, Path(d) / "k.db", key)
            assert _as_multiset(k.store.gallery()) == _as_multiset(fresh.store.gallery())
            assert {p: k.store.is_valid(p) for p in ["ann", "bob", "cid", "dan"]} == \
                {p: fresh.store.is_valid(p) for p in ["ann", "bob", "cid", "dan"]}
            fresh.store.close()
        k.store.close()
