"""A site for tests: root key, administrator keys, signed records, a kiosk store with its trust."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.clock import TrustedClock
from kiosk.mqtt.keys import sign_key_list
from kiosk.mqtt.protocol import Signer, parse
from kiosk.mqtt.snapshot import sign_snapshot
from kiosk.mqtt.trust import SiteTrust
from kiosk.records import Enrollment, Tombstone
from kiosk.store import Store
from kiosk.vision.quant import l2_normalize
from tests.clock import FakeClock

FP = "a" * 64
SITE = "hq"
T0 = 1_800_000_000.0  # wall seconds at the start of every test
DAY_MS = 86_400_000


def emb(seed: int, n: int = 3) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=(n, 128))).astype(np.float32)


class Site:
    """The administrators' side: one root, named admin keys, and what they signed."""

    def __init__(self, admins: int = 1) -> None:
        self.root = Signer(Ed25519PrivateKey.generate())
        self.admins = [Signer(Ed25519PrivateKey.generate()) for _ in range(admins)]
        self.admin = self.admins[0]

    def key_list(self, issued_ms: int, admins: list[Signer] | None = None, revoked: set[str] | None = None) -> bytes:
        chosen = self.admins if admins is None else admins
        return sign_key_list(self.root, SITE, {a.key_id: a.private.public_key() for a in chosen}, issued_ms,
                             frozenset(revoked or ()))

    def enrollment(self, pid: str, revision: int, seed: int = 1, signer: Signer | None = None,
                   **fields: object) -> bytes:
        e = Enrollment(pid, pid.title(), revision, FP, emb(seed), **fields)  # type: ignore[arg-type]
        return (signer or self.admin).enrollment(SITE, e)

    def tombstone(self, pid: str, revision: int, signer: Signer | None = None) -> bytes:
        return (signer or self.admin).tombstone(SITE, Tombstone(pid, revision))

    def snapshot(self, people: dict[str, tuple[int, bool]], issued_ms: int, expires_ms: int | None = None,
                 signer: Signer | None = None) -> bytes:
        s = signer or self.admin
        return sign_snapshot(s, SITE, people, {a.key_id for a in self.admins}, issued_ms,
                             expires_ms or issued_ms + 7 * DAY_MS)


class Kiosk:
    """A kiosk's store and trust, with an injected wall clock and clock-sync flag."""

    def __init__(self, site: Site, path: Path, key: bytes, synced: bool = True, root: bool = True,
                 events: list[tuple[str, dict[str, object]]] | None = None, require_snapshot: bool = False) -> None:
        self.site = site
        self.wall = FakeClock(T0)
        self.synced = synced
        self.events: list[tuple[str, dict[str, object]]] = [] if events is None else events
        self.sleeps: list[float] = []
        self.store = Store(path, key, FP, wall_clock=self.wall, on_event=lambda k, f: self.events.append((k, f)),
                           sleep=self.sleeps.append, monotonic=self.wall)
        ticks = itertools.count()  # every question re-probes the sync flag
        self.clock = TrustedClock(lambda: self.synced, wall=self.wall, monotonic=lambda: float(next(ticks)),
                                  recheck_s=0.5)
        admins = {a.key_id: a.private.public_key() for a in site.admins}
        self.trust = SiteTrust(self.store, SITE, self.clock, root_key=site.root.private.public_key() if root else None,
                               static_keys=None if root else admins, require_snapshot=require_snapshot)

    def receive(self, payload: bytes, pid: str | None = None) -> object:
        """What the sync core does with one enrollment message."""
        record = parse(payload, self.trust.keys(), SITE, topic_person=pid, revoked=self.trust.revoked())
        refusal = self.trust.admits(record.person_id, record.revision)
        if refusal is not None and refusal != "no_snapshot":  # as the sync core: held records go to the store
            return refusal
        return self.store.apply(record)

    def snapshot(self, payload: bytes) -> list[str]:
        erase = self.trust.on_snapshot(payload)
        for pid in erase:
            self.store.erase(pid)
        return erase

    def admitted(self) -> set[str]:
        return set(self.store.gallery().labels)

    def now_ms(self) -> int:
        return int(self.wall() * 1000)
