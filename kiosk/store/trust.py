"""What the store asks of the site's trust, and the policy that sets a verified row aside.

Pure: a refusal depends only on the verifier's keys, revocations and
snapshot, never on the database.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["HELD", "POLICY", "Verifier", "policy_refusal"]

# Reasons a verified row is set aside by policy (it may come back when keys or snapshot change);
# anything else is an integrity failure and quarantines the row.
POLICY = {"unknown_key", "revoked_key", "older_than_snapshot", "deleted_in_snapshot", "model_mismatch", "no_trust",
          "unsigned", "no_snapshot"}
# A verified record refused for this reason is still kept (set aside): it is admitted once a snapshot says it may be.
HELD = "no_snapshot"


class Verifier(Protocol):
    """What the store asks of the site's trust (``kiosk.mqtt.trust.SiteTrust``)."""

    site: str

    def keys(self) -> dict[str, Ed25519PublicKey]: ...

    def revoked(self) -> frozenset[str]: ...

    def admits(self, person_id: str, revision: int) -> str | None: ...

    def now(self) -> float | None: ...

    def deleted_revision(self, person_id: str) -> int | None: ...


def policy_refusal(v: Verifier | None, pid: str, revision: int, key_id: str | None) -> str | None:
    """Why the site's trust refuses a verified row signed by ``key_id``; None when it is admitted."""
    if v is None:
        return "no_trust"
    trusted = v.keys()
    if key_id is None or key_id not in trusted:
        return "revoked_key" if key_id in v.revoked() else "unknown_key"
    return v.admits(pid, revision)
