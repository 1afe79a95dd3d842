"""The trust of a kiosk that pins fixed administrator keys and no site root key."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.mqtt.protocol import ProtocolError

__all__ = ["StaticTrust"]


class StaticTrust:
    """Fixed administrator keys and no snapshot: key lists and snapshots are refused, every revision admitted.

    Also what the store asks of the site's trust (``site``, ``revoked``, ``now``, ``deleted_revision``), and the
    sync core's ``expired`` and ``redeliveries`` (never: no snapshot, nothing kept).
    ``now`` is the synchronised wall clock (e.g. ``kiosk.clock``'s), or ``None`` when it is not known: then
    nothing is refused as issued in the future, and the store fails validity windows closed.
    """

    def __init__(self, keys: dict[str, Ed25519PublicKey], site: str = "",
                 now: Callable[[], float | None] | None = None) -> None:
        self._keys = dict(keys)
        self.site = site
        self._now = now

    def keys(self) -> dict[str, Ed25519PublicKey]:
        return self._keys

    def revoked(self) -> frozenset[str]:
        return frozenset()

    def now(self) -> float | None:
        return self._now() if self._now is not None else None

    def deleted_revision(self, person_id: str) -> int | None:
        return None

    def on_key_list(self, payload: bytes, max_bytes: int = 0) -> None:
        raise ProtocolError("unsupported", "this kiosk pins fixed administrator keys and pins no site root key: "
                                           "configure a root key to use signed key lists")

    def on_snapshot(self, payload: bytes, max_bytes: int = 0) -> list[str]:
        raise ProtocolError("unsupported", "this kiosk pins fixed administrator keys and pins no site root key: "
                                           "configure a root key to use signed snapshots")

    def admits(self, person_id: str, revision: int) -> str | None:
        return None

    def expired(self) -> bool:
        return False  # no snapshot is asked for

    def redeliveries(self) -> int:
        return 0  # nothing is kept to be judged again
