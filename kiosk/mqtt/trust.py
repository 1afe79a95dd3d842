"""What a kiosk trusts: the root-signed admin key list, the signed site snapshot, a known clock.

``SiteTrust`` is the one object the sync core and the store ask:

- ``keys()``: the administrator keys valid now: those of the newest key list
  the pinned root signed, less those kept revoked (``kiosk.mqtt.revocations``)
  (or, with no root key configured, the public keys in the admin-keys
  folder: no rotation, no revocation);
- ``on_key_list(payload)`` / ``on_snapshot(payload)``: verify, refuse
  anything older than what is held (``ProtocolError``; one held dated ahead of
  the synchronised clock gives way to any; one refused so while the clock is
  unknown is kept (what it refuses holds at once) and judged again once it
  is known: ``kiosk.mqtt.deferred``, ``refresh``), persist in the store
  (a restart works offline) and make the store re-apply its policy;
  ``on_snapshot`` returns the people to erase;
- ``admits(person, revision)``: ``None``, or why a record must not be used.

Date rules fail closed: with the clock not known to be synchronised, records
are not refused for being ahead of it, but the snapshot counts as expired and
validity windows are shut.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.clock import TrustedClock
from kiosk.errors import ConfigError
from kiosk.mqtt import standing
from kiosk.mqtt.deferred import Deferred
from kiosk.mqtt.floor import Floor
from kiosk.mqtt.keys import MAX_KEY_LIST, KeyList, load_public_key, load_public_keys, parse_key_list
from kiosk.mqtt.protocol import MAX_AHEAD_MS, ProtocolError, key_id, same_or_older
from kiosk.mqtt.revocations import Revocations
from kiosk.mqtt.settings import TrustSettings
from kiosk.mqtt.snapshot import MAX_SNAPSHOT, Snapshot, parse_snapshot, read_unverified
from kiosk.mqtt.standing import FRESH
from kiosk.store import Store

logger = logging.getLogger(__name__)

KEY_LIST = "key_list"
SNAPSHOT = "snapshot"
FLOOR = "snapshot_floor"  # refusals kept from snapshots that gave way (kiosk.mqtt.floor)
REVOKED = "key_revocations_kept"  # revocations kept from key lists that gave way (kiosk.mqtt.revocations)


class SiteTrust:
    def __init__(self, store: Store, site: str, clock: TrustedClock, *, root_key: Ed25519PublicKey | None = None,
                 static_keys: dict[str, Ed25519PublicKey] | None = None, require_snapshot: bool = True,
                 pinned_key_list: bytes | None = None) -> None:
        """Restores the key list and snapshot the store holds, then attaches itself to the store.

        Lock order: the store calls into this object while holding its own
        lock, so this object never calls the store while holding its lock.
        """
        self.site = site
        self.store = store
        self.clock = clock
        self.root_key = root_key
        self._static = dict(static_keys or {})
        self.require_snapshot = require_snapshot and root_key is not None
        if root_key is not None and not require_snapshot:
            logger.warning("trust.require_snapshot = false: a kiosk that holds no current site snapshot admits "
                           "records put back on the broker, a deleted person's old one among them")
        if root_key is not None and self._static:
            logger.warning("a site root key is pinned: the %d administrator key files are ignored; administrator "
                           "keys come from the root-signed key list", len(self._static))
        if root_key is None:
            logger.warning("no site root key pinned: trusting %d administrator key files, with no rotation or "
                           "revocation (see docs/keys.md)", len(self._static))
        self._lock = threading.RLock()
        self._key_list: KeyList | None = None
        self._snapshot: Snapshot | None = None
        self._floor = Floor(site)
        self._revocations = Revocations(site)
        self._unstored: set[str] = set()  # the floor or revocations held that a store write failed to keep
        self._deferred = Deferred(store, site)  # refused as stale while the clock is unknown
        self._fresh = False
        self._restore()
        if pinned_key_list is not None:
            self._pin(pinned_key_list)
        store.use_verifier(self)

    @classmethod
    def from_files(cls, store: Store, site: str, settings: TrustSettings, admin_keys: list[Path]) -> SiteTrust:
        root = load_public_key(settings.root_key) if settings.root_key is not None else None
        static = {} if root is not None else load_public_keys([p for p in admin_keys if p.exists()])
        pinned = None
        if settings.key_list is not None:
            if root is None:
                raise ConfigError("trust.key_list is set but trust.root_key is not: a key list is checked against "
                                  "the site root key")
            try:
                pinned = settings.key_list.read_bytes()
            except OSError as exc:
                raise ConfigError(f"trust.key_list {settings.key_list} is not readable ({exc.strerror})") from exc
        return cls(store, site, TrustedClock.from_settings(settings.clock), root_key=root, static_keys=static,
                   require_snapshot=settings.require_snapshot, pinned_key_list=pinned)

    def _pin(self, payload: bytes) -> None:
        """Hold the installed key list unless the store holds a newer one (``trust.key_list``)."""
        assert self.root_key is not None
        try:
            got = parse_key_list(payload, self.root_key, self.site, max_bytes=len(payload))
        except ProtocolError as exc:
            raise ConfigError(f"trust.key_list does not verify against trust.root_key for site {self.site!r}: "
                              f"{exc}") from exc
        held = self._key_list
        if held is None or got.issued_at_ms > held.issued_at_ms:
            self._keep_revocations(held, self.clock.now_ms())
            self.store.save_state(KEY_LIST, payload)
            self._key_list = got
            logger.info("administrator key list of %d from trust.key_list: %d keys, %d revoked", got.issued_at_ms,
                        len(got.keys), len(got.revoked))

    def _restore(self) -> None:
        """The key list and snapshot held before a restart, verified again (no clock check, nor size: they
        were when they arrived, under ``sync.max_snapshot_bytes``)."""
        if self.root_key is not None and (payload := self.store.load_state(KEY_LIST)) is not None:
            try:
                self._key_list = parse_key_list(payload, self.root_key, self.site, max_bytes=len(payload))
            except ProtocolError as exc:
                logger.error("the stored key list does not verify (%s): waiting for the retained one", exc)
            self._deferred.restore_key_list(self.root_key)
        self._revocations = Revocations.decode(self.store.load_state(REVOKED), self.site)
        root = key_id(self.root_key) if self.root_key is not None else None
        self._fresh = standing.restore(self.store, self.site, root, self._key_list is not None)
        self._floor = Floor.decode(self.store.load_state(FLOOR), self.site)
        if (payload := self.store.load_state(SNAPSHOT)) is not None:
            try:
                self._snapshot = parse_snapshot(payload, self.keys(), self.site, max_bytes=len(payload))
            except ProtocolError as exc:
                self._snapshot = self._unverified(payload) if exc.reason == "unknown_key" else None
                if self._snapshot is None:
                    logger.error("the stored snapshot does not verify (%s): waiting for the retained one", exc)
        self._deferred.restore_snapshot({**self._deferred_keys(), **self.keys()})

    def _standing(self, issued_at_ms: int) -> bytes:
        """The record of having held a current snapshot, naming the site and root key it was earned under."""
        return standing.standing(self.site, key_id(self.root_key) if self.root_key is not None else None, issued_at_ms)

    def _unverified(self, payload: bytes) -> Snapshot | None:
        """The stored snapshot whose signer was dropped since it was verified: its refusals still hold."""
        if (snap := read_unverified(payload, self.site)) is not None:
            logger.warning("the stored snapshot was signed by %s, no longer a current key: its deletions and "
                           "refusals hold until a newer one a current key signs", snap.key_id)
        return snap

    # what the store and the sync core ask
    def keys(self) -> dict[str, Ed25519PublicKey]:
        with self._lock:
            if self.root_key is None:
                return dict(self._static)
            kl, kept = self._key_list, self._revocations.ids() | self._deferred.revoked()
            return {kid: key for kid, key in kl.keys.items() if kid not in kept} if kl is not None else {}

    def revoked(self) -> frozenset[str]:
        with self._lock:
            held = self._key_list.revoked if self._key_list is not None else frozenset()
            return held | self._revocations.ids() | self._deferred.revoked()

    def now(self) -> float | None:
        return self.clock.now()

    def redeliveries(self) -> int:
        """Changes when the retained sync messages must be judged again (``kiosk.mqtt.deferred``)."""
        return self._deferred.lists_judged

    def admits(self, person_id: str, revision: int) -> str | None:
        now_ms = self.clock.now_ms()
        if now_ms is not None and revision > now_ms + MAX_AHEAD_MS:
            return "from_the_future"
        with self._lock:
            snap, floor = self._snapshot, self._floor
        if self.require_snapshot and not self._fresh:
            # With a root key pinned the site is managed: records wait for a current snapshot, so that a kiosk
            # that never held one (a new one, a reset store) cannot be handed back a deleted person's old
            # record, nor an old snapshot that still lists them.
            return "no_snapshot"
        cap = now_ms + MAX_AHEAD_MS if now_ms is not None else None  # until ``_cap_kept`` has stored it
        return (snap.refusal(person_id, revision) if snap is not None else None) or floor.refusal(person_id, revision,
                                                                                                    cap)

    def deleted_revision(self, person_id: str) -> int | None:
        with self._lock:
            entry = self._snapshot.people.get(person_id) if self._snapshot is not None else None
        return entry[0] if entry is not None and entry[1] else None

    # updates from the broker
    def on_key_list(self, payload: bytes, max_bytes: int = MAX_KEY_LIST) -> None:
        if self.root_key is None:
            raise ProtocolError("no_root_key", "this kiosk pins no site root key (trust.root_key); it uses its "
                                               "administrator key files and ignores key lists")
        now_ms = self.clock.now_ms()
        got = parse_key_list(payload, self.root_key, self.site, now_ms, max_bytes)
        self._cap_kept()
        try:
            with self._lock:
                if self._key_list_held(got, payload):
                    return
                replaced = self._key_list
        except ProtocolError as exc:
            if exc.reason == "stale_key_list" and now_ms is None:  # the one held may be dated ahead
                # judged again once the clock is known (``refresh``); the revocations of the one that loses
                # the place are kept: the one kept may be a list put back, dated ahead of a revoking one. Those
                # of one pushed out of the store are stored first (else ``store_error``, and it stays kept).
                if (lost := self._deferred.keep_key_list(
                        got, lambda out: self._hold(REVOKED, self._revocations.kept_from(out)))) is not None:
                    self._hold(REVOKED, self._revocations.kept_from(lost), required=False)
                self.store.trust_changed()
            raise
        self._keep_revocations(replaced, now_ms)  # kept before the list replacing it is
        # Kept before it is used: a list that could not be stored is not held either, so the next copy of it
        # (a reconnection's retained message) is applied afresh rather than seen as the one already held.
        self._save(KEY_LIST, payload)  # outside our lock: the store calls back into keys()
        with self._lock:
            if self._key_list_held(got, payload):  # another thread installed this one or a newer one meanwhile
                return
            self._key_list = got
            snap = self._snapshot
            if snap is not None and snap.key_id not in got.keys:
                # Signed by a key this list drops: its deletions and refusals stay in force (they can only keep
                # people out), but it no longer counts as current (``refresh``, ``expired``); a newer snapshot a
                # current key signs replaces it (any, if it is dated ahead: ``_snapshot_held``).
                logger.warning("the site snapshot held was signed by %s, which the new key list drops: a newer "
                               "one a current administrator signs replaces it", snap.key_id)
        logger.info("administrator key list of %d: %d keys, %d revoked", got.issued_at_ms, len(got.keys),
                    len(got.revoked))
        if now_ms is not None:  # judged by a synchronised clock: the root may re-admit a key kept revoked
            self._hold(REVOKED, self._revocations.released_by(got, now_ms), required=False)
        self.store.trust_changed()

    def _keep_revocations(self, replaced: KeyList | None, now_ms: int | None) -> None:
        """Keep the revocations of a key list that gives way (``kiosk.mqtt.revocations``): replaced while the
        clock is unknown (by one that may be dated ahead, put back on the broker), or dated ahead of it."""
        cap = now_ms + MAX_AHEAD_MS if now_ms is not None else None
        if replaced is None or (cap is not None and replaced.issued_at_ms <= cap):
            return
        if self._hold(REVOKED, self._revocations.kept_from(replaced)):
            logger.warning("the key list of %d gives way (the clock is unknown, or it is dated ahead of it): the "
                           "keys it revoked stay revoked", replaced.issued_at_ms)

    def on_snapshot(self, payload: bytes, max_bytes: int = MAX_SNAPSHOT) -> list[str]:
        now_ms = self.clock.now_ms()
        try:
            got = parse_snapshot(payload, self.keys(), self.site, now_ms, max_bytes)
        except ProtocolError as exc:
            if exc.reason == "unknown_key" and now_ms is None:
                self._keep_for_the_deferred_list(payload, max_bytes)
            raise
        try:
            with self._lock:
                held, replaced = self._snapshot_held(got, payload), self._snapshot
        except ProtocolError as exc:
            if exc.reason == "stale_snapshot" and now_ms is None and self._snapshot is not None:
                # the one held may be dated ahead: what ``got`` refuses holds now, and it is judged again later
                self._hold(FLOOR, self._floor.folded(got, self._snapshot, None), required=False)
                self._deferred.keep_snapshot(got)
                self.store.trust_changed()
            raise
        if held:  # the one held, again (a reconnection): the clock may have been synchronised since it came
            self.refresh()
            return []
        self._cap_kept()
        if replaced is not None and (now_ms is None or replaced.dated_ahead(now_ms)):
            self._keep_refusals(replaced, got, now_ms)  # kept first (``kiosk.mqtt.floor``)
        # An expired snapshot still holds: its deletions and revisions are true, only maybe not all there is
        # (it raises the alarm). But it is no evidence of the site's state now: it may be one put back on the
        # broker to undo the deletions made since. So only one that had not expired when it arrived, by a
        # synchronised clock, lets a kiosk that never held a current one admit anybody (``admits``).
        fresh = now_ms is not None and not got.expired(now_ms)
        self._save(SNAPSHOT, payload)  # kept before it is used, as the key list
        if fresh and not self._fresh:
            self._save(FRESH, self._standing(got.issued_at_ms))
        with self._lock:
            if self._snapshot_held(got, payload):
                return []
            self._snapshot = got
            self._fresh = self._fresh or fresh
        logger.info("site snapshot of %d: %d people, %d deleted", got.issued_at_ms, len(got.people),
                    len(got.deleted()))
        self._hold(FLOOR, self._floor.pruned(got), required=False)  # what it refuses as well, it keeps now
        self.store.trust_changed()
        erase = []
        for person, revision in got.deleted().items():
            held_rev = self.store.revision(person)
            if held_rev is None or held_rev < revision:
                erase.append(person)
        return sorted(erase)

    def _keep_for_the_deferred_list(self, payload: bytes, max_bytes: int) -> None:
        """A snapshot signed by a key that only the key list kept until the clock is known lists (a new
        administrator): kept with it, and judged again once that list is (``kiosk.mqtt.deferred``). Not in
        force meanwhile: that list may be an old one put back, its key revoked since."""
        if (keys := self._deferred_keys()) and (got := self._verified(payload, keys, max_bytes)) is not None:
            self._deferred.keep_snapshot(got)

    def _deferred_keys(self) -> dict[str, Ed25519PublicKey]:
        with self._lock:
            kl, kept = self._deferred.key_list, self._revocations.ids()
        return {kid: key for kid, key in kl.keys.items() if kid not in kept} if kl is not None else {}

    def _verified(self, payload: bytes, keys: dict[str, Ed25519PublicKey], max_bytes: int) -> Snapshot | None:
        try:
            return parse_snapshot(payload, keys, self.site, None, max_bytes)
        except ProtocolError:
            return None

    def _keep_refusals(self, replaced: Snapshot, got: Snapshot, now_ms: int | None) -> None:
        """Before ``got`` replaces ``replaced``: keep what ``replaced`` refused that ``got`` does not. Taken
        while the clock is unknown, ``got`` may be one dated ahead put back on the broker; dated ahead of
        the synchronised clock, ``replaced`` gives way (``_snapshot_held``): neither undoes its refusals.
        (With the clock synchronised, a newer snapshot, not dated ahead, is the administrators' word.)"""
        cap = now_ms + MAX_AHEAD_MS if now_ms is not None else None
        if self._hold(FLOOR, self._floor.folded(replaced, got, cap)) and replaced.dated_ahead(now_ms):
            logger.warning("the site snapshot held, of %d, is dated ahead of the synchronised clock: replaced by "
                           "the one of %d, its deletions and revisions kept (up to a day ahead)",
                           replaced.issued_at_ms, got.issued_at_ms)

    def _hold(self, name: str, kept: Floor | Revocations, required: bool = True) -> bool:
        """Store and hold the floor or the revocations kept when they changed, or when those held could not be
        stored before; True when they changed. ``required`` False: held even if they could not be stored
        (the next hold of that name stores them, required or not, before it counts as done)."""
        attr = "_floor" if name == FLOOR else "_revocations"
        held = getattr(self, attr)
        if kept == held and name not in self._unstored:
            return False
        try:
            self._save(name, kept.encode())  # held but not stored before: stored now, or the caller told
        except ProtocolError as exc:
            if required:
                raise
            logger.warning("%s", exc)
            self._unstored.add(name)
        else:
            self._unstored.discard(name)
        with self._lock:
            setattr(self, attr, kept)
        return kept != held

    def _cap_kept(self) -> None:
        """Lower the revisions kept while the clock was unknown to a day after the synchronised clock (the
        dates of revocations are kept as they are: ``kiosk.mqtt.revocations``)."""
        now_ms = self.clock.now_ms()
        if now_ms is not None and self._floor.ahead_of(now_ms + MAX_AHEAD_MS):
            self._hold(FLOOR, self._floor.capped(now_ms + MAX_AHEAD_MS))

    def refresh(self) -> bool:
        """Count the snapshot held as current once it is, by a synchronised clock (it came while the clock
        was not, or the store kept it from before a restart): a kiosk that waits for a current snapshot
        then admits the records it set aside. True when that happened now. First, once the clock is known,
        what was refused as stale before it was is judged again (``kiosk.mqtt.deferred``)."""
        self._cap_kept()
        if self.clock.now_ms() is not None and self._deferred.retake(self.on_key_list, self.on_snapshot,
                                                                     self.store.erase):
            self.store.trust_changed()  # a list dropped as stale set records aside while kept: nothing else tells
        with self._lock:
            snap, fresh = self._snapshot, self._fresh
        if fresh or snap is None:
            return False
        now_ms = self.clock.now_ms()
        if now_ms is None or snap.expired(now_ms):
            return False
        try:  # still signed by a current administrator key, and not from the future now that the clock tells
            parse_snapshot(snap.payload, self.keys(), self.site, now_ms, max_bytes=len(snap.payload))
        except ProtocolError as exc:
            logger.warning("the snapshot held is not counted as current: %s", exc)
            return False
        self._save(FRESH, self._standing(snap.issued_at_ms))
        with self._lock:
            self._fresh = True
        logger.info("site snapshot of %d is current: records waiting for it are admitted", snap.issued_at_ms)
        self.store.trust_changed()
        return True

    def _save(self, name: str, payload: bytes) -> None:
        try:
            self.store.save_state(name, payload)
        except Exception as exc:  # a full disk, a locked database: not held, and refused with the reason
            raise ProtocolError("store_error", f"the {name.replace('_', ' ')} could not be stored ({exc}); it is "
                                               "not in force, and its next copy is applied afresh") from exc

    def _key_list_held(self, got: KeyList, payload: bytes) -> bool:
        held, now_ms = self._key_list, self.clock.now_ms()
        if held is not None and now_ms is not None and held.issued_at_ms > now_ms + MAX_AHEAD_MS:
            return False  # dated ahead of the synchronised clock: it gives way, its revocations kept
        return held is not None and same_or_older(got.issued_at_ms, payload, held.issued_at_ms, held.payload,
                                                   "key_list")

    def _snapshot_held(self, got: Snapshot, payload: bytes) -> bool:
        held = self._snapshot
        if held is None:
            return False
        if held.dated_ahead(self.clock.now_ms()):  # taken while the clock was unknown: it binds nothing now, its
            return False  # refusals are kept (``on_snapshot``, ``kiosk.mqtt.floor``)
        return same_or_older(got.issued_at_ms, payload, held.issued_at_ms, held.payload, "snapshot")

    # status
    def expired(self, now: float | None = None) -> bool:
        """The snapshot held has expired (alarm). ``now`` (wall seconds) defaults to the trusted clock;
        an unsynchronised clock counts as expired. No snapshot held is not expired (see ``status``), unless
        a current one is required and none has been held yet (``require_snapshot``): then nobody is admitted,
        and that is the same alarm."""
        with self._lock:
            snap, fresh = self._snapshot, self._fresh
        if self.require_snapshot and (not fresh or snap is None):
            return True  # none current yet (nobody is admitted), or none held now (a rotation, a restart)
        if snap is None:
            return False
        if self.root_key is not None and snap.key_id not in self.keys():
            return True  # signed by a key dropped since: it refuses, but says nothing current
        now_ms = int(now * 1000) if now is not None else self.clock.now_ms()
        return snap.expired(now_ms) or snap.dated_ahead(now_ms)  # dated ahead: it says nothing current either

    def status(self) -> dict[str, Any]:
        """For stats and ``kiosk doctor``."""
        with self._lock:
            kl, snap = self._key_list, self._snapshot
        return {"root_key": key_id(self.root_key) if self.root_key is not None else None,
                "key_list_issued_at_ms": kl.issued_at_ms if kl else None,
                "admin_keys": sorted(self.keys()), "revoked_keys": sorted(self.revoked()),
                "key_revocations_kept": len(self._revocations.kept),
                "snapshot_issued_at_ms": snap.issued_at_ms if snap else None,
                "snapshot_expires_at_ms": snap.expires_at_ms if snap else None,
                "snapshot_people": len(snap.people) if snap else 0,
                "snapshot_refusals_kept": len(self._floor.people),
                "snapshot_expired": self.expired(), "snapshot_missing": snap is None,
                "snapshot_current_seen": self._fresh,
                "clock_synchronised": self.clock.synchronised()}
