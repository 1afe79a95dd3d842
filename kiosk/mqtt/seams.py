"""What the sync core asks of the outside: the site's trust, and the store a record is applied to.

``kiosk.mqtt.trust.SiteTrust`` (or ``StaticTrust``) is the trust and
``kiosk.store.Store`` the store; the core sees only these few methods, so
tests hand it fakes that speak the same protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.records import Enrollment, Tombstone

__all__ = ["ApplyOutcome", "SyncStore", "Trust"]


class Trust(Protocol):
    def keys(self) -> dict[str, Ed25519PublicKey]: ...
    def revoked(self) -> frozenset[str]: ...
    def now(self) -> float | None: ...  # the synchronised wall clock, s; None when unknown
    def on_key_list(self, payload: bytes, max_bytes: int = ...) -> None: ...
    def on_snapshot(self, payload: bytes, max_bytes: int = ...) -> Sequence[str | Tombstone]: ...
    def admits(self, person_id: str, revision: int) -> str | None: ...
    def deleted_revision(self, person_id: str) -> int | None: ...
    def expired(self) -> bool: ...  # the snapshot held is expired or says nothing current
    def redeliveries(self) -> int: ...  # times what was refused meanwhile may verify now (grows only)


class ApplyOutcome(Protocol):
    @property
    def applied(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    @property
    def revision(self) -> int: ...


class SyncStore(Protocol):
    @property
    def model_fingerprint(self) -> str: ...
    def revision(self, person_id: str) -> int | None: ...
    def apply(self, record: Enrollment | Tombstone) -> ApplyOutcome: ...
