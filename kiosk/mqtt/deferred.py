"""Key lists and snapshots refused as stale while the clock is unknown, kept until it is known.

A kiosk that took a key list or snapshot dated ahead (the root's or an administrator's fast clock) holds
it across a reboot. On the next boot the broker delivers the retained, current one before NTP; without a
clock the one held dated ahead looks newer, so the current one is refused as stale. It is not sent again
on a timer (only on a reconnection), so it would never be taken once the clock is known, and the one dated
ahead, though it gives way then to any the root or a current key signs, would stay in force meanwhile: a
key the current list revokes still valid, a person the current snapshot deletes admitted again.

So the newest key list and the newest snapshot refused as stale while the clock is unknown (verified: the
root signed the list for the site, a current key the snapshot) are kept here, stored (a restart keeps
them), and judged again as if they had just arrived once the clock is known (``SiteTrust.refresh``, the
trust watch's next check): taken if the one held proves dated ahead, else dropped as the stale ones they
then are. Meanwhile they keep people out, never let them in: the keys the list kept revokes are no
administrator keys (``SiteTrust.keys``), and what the snapshot kept refuses is folded into the floor at
once (``kiosk.mqtt.floor``). A snapshot refused as signed by a key only the key list kept adds (a new
administrator, ``SiteTrust._keep_for_the_deferred_list``) is kept too, not in force until judged, right
after that list. One of each at most, a key list or snapshot in size. A record (enrollment, tombstone) refused
meanwhile for its key is not kept: each time a key list kept is judged (``lists_judged``), the sync core has the
broker deliver the retained key list, snapshot and records again, in that order (``SyncCore.tick``), and they are
judged with the clock known: the records against the keys then held, and the current list too when another list
put back took its place (and the snapshot kept with it was dropped for want of its keys).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.mqtt.keys import KeyList, parse_key_list
from kiosk.mqtt.protocol import ProtocolError, same_signed
from kiosk.mqtt.snapshot import Snapshot, parse_snapshot
from kiosk.records import Tombstone

logger = logging.getLogger(__name__)

KEY_LIST_KEPT = "key_list_refused_before_ntp"
SNAPSHOT_KEPT = "snapshot_refused_before_ntp"


class _Store(Protocol):
    def load_state(self, name: str) -> bytes | None: ...
    def save_state(self, name: str, payload: bytes) -> None: ...
    def delete_state(self, name: str) -> None: ...


class Deferred:
    def __init__(self, store: _Store, site: str) -> None:
        self.store = store
        self.site = site
        self.key_list: KeyList | None = None
        self.snapshot: Snapshot | None = None
        self.lists_judged = 0  # key lists kept that were judged, taken or dropped, since the start

    def revoked(self) -> frozenset[str]:
        """The keys the key list kept revokes: none of them is an administrator key until it is judged."""
        kl = self.key_list
        return kl.revoked if kl is not None else frozenset()

    def restore_key_list(self, root: Ed25519PublicKey) -> None:
        if (payload := self.store.load_state(KEY_LIST_KEPT)) is not None:
            try:
                self.key_list = parse_key_list(payload, root, self.site, max_bytes=len(payload))
            except ProtocolError as exc:
                logger.error("the key list kept until the clock is known does not verify (%s): dropped", exc)
                self.store.delete_state(KEY_LIST_KEPT)

    def restore_snapshot(self, keys: dict[str, Ed25519PublicKey]) -> None:
        if (payload := self.store.load_state(SNAPSHOT_KEPT)) is not None:
            try:
                self.snapshot = parse_snapshot(payload, keys, self.site, max_bytes=len(payload))
            except ProtocolError as exc:  # its refusals are in the floor already
                logger.warning("the snapshot kept until the clock is known no longer verifies (%s): dropped", exc)
                self.store.delete_state(SNAPSHOT_KEPT)

    def keep_key_list(self, got: KeyList, store_revocations: Callable[[KeyList], object]) -> KeyList | None:
        """Keep ``got``, refused as stale while the clock is unknown, unless a newer one is kept already. The
        one that loses the place, ``got`` or the one it pushes out, is returned: its revocations are kept by
        the caller (``kiosk.mqtt.revocations``), since either may be a list put back on the broker, dated
        later than the one that revoked a key since (the root's clock ran fast). Those of the one pushed out
        are stored first, by ``store_revocations``, as its row is overwritten next: when they cannot be (it
        raises), it stays kept and ``got`` is not."""
        held = self.key_list
        if held is not None and same_signed(got.payload, held.payload):  # the one kept, however re-encoded
            return None
        if held is None or got.issued_at_ms > held.issued_at_ms:
            if held is not None:
                store_revocations(held)
            self._save(KEY_LIST_KEPT, got.payload)
            self.key_list = got
            logger.warning("the key list of %d is refused as older than the one held, with the clock unknown: "
                           "kept, its revocations in force, and judged again once the clock is known",
                           got.issued_at_ms)
            return held
        return got

    def keep_snapshot(self, got: Snapshot) -> None:
        if self.snapshot is None or got.issued_at_ms > self.snapshot.issued_at_ms:
            self._save(SNAPSHOT_KEPT, got.payload)
            self.snapshot = got
            logger.warning("the site snapshot of %d is refused with the clock unknown (older than the one "
                           "held, or signed by a key only the key list kept adds): kept, and judged again once "
                           "the clock is known", got.issued_at_ms)

    def _save(self, name: str, payload: bytes) -> None:
        try:
            self.store.save_state(name, payload)
        except Exception as exc:  # held all the same: it only keeps people out, and is judged at the next check
            logger.warning("the %s could not be stored (%s): held until a restart", name.replace("_", " "), exc)

    def retake(self, on_key_list: Callable[[bytes, int], None],
               on_snapshot: Callable[[bytes, int], Sequence[str | Tombstone]],
               erase: Callable[[str], object]) -> bool:
        """With the clock known: judge again what was kept, as if it had just arrived (the key list first: the
        snapshot is verified against the keys it leaves). What could not be stored is tried again later.
        True when the key list kept was judged, taken or dropped: the keys it revoked are administrator keys
        again unless the list held revokes them, so the records they signed must be judged again too."""
        judged = False
        if (kl := self.key_list) is not None:
            self.key_list = None  # before: judging it may come back here (``SiteTrust.refresh``)
            if not self._judged(KEY_LIST_KEPT, kl.issued_at_ms, lambda: on_key_list(kl.payload, len(kl.payload))):
                self.key_list = kl
            judged = self.key_list is None
            if judged:
                self.lists_judged += 1
        if (snap := self.snapshot) is not None and self.key_list is None:  # it may need the keys that list adds
            self.snapshot = None
            erasures: list[str | Tombstone] = []

            def take() -> None:
                erasures.extend(on_snapshot(snap.payload, len(snap.payload)))

            if not self._judged(SNAPSHOT_KEPT, snap.issued_at_ms, take):
                self.snapshot = snap
            for person in erasures:
                erase(person.person_id if isinstance(person, Tombstone) else person)
        return judged

    def _judged(self, name: str, issued_at_ms: int, take: Callable[[], None]) -> bool:
        """Judge a kept document (``take``); False keeps it, to be judged again at the next check: a store
        fault, as a ProtocolError or raw (the store may have failed after the document was taken; judged
        again, it is then the one held, and taken as such)."""
        what = name.split("_refused")[0].replace("_", " ")
        try:
            take()
        except ProtocolError as exc:
            if exc.reason == "store_error":
                logger.warning("%s", exc)
                return False
            logger.info("the %s of %d kept until the clock is known is not taken (%s): dropped", what,
                        issued_at_ms, exc.reason)
        except Exception as exc:
            logger.warning("the %s of %d kept until the clock is known could not be judged (%s): kept, judged "
                           "again at the next check", what, issued_at_ms, exc)
            return False
        else:
            logger.warning("the %s of %d, refused before the clock was known, is taken now: the one held was "
                           "dated ahead", what, issued_at_ms)
        try:
            self.store.delete_state(name)
        except Exception as exc:  # judged all the same: a restart judges the stored copy again, to the same end
            logger.warning("the judged %s could not be removed from the store (%s)", what, exc)
        return True
