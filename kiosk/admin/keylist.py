"""The site's root-signed key list as an administrator reads it: on the broker, in a file, in the state file."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.admin.state import AdminState
from kiosk.errors import ConfigError
from kiosk.mqtt.keys import KeyList, parse_key_list
from kiosk.mqtt.protocol import MAX_AHEAD_MS, ProtocolError, Signer, decode_json, same_signed
from kiosk.mqtt.snapshot import MAX_SNAPSHOT

# The kiosks take a key list as large as a snapshot (sync.max_snapshot_bytes, MAX_SNAPSHOT by default): a
# long-lived site's revocations outgrow the 64 KiB of MAX_KEY_LIST, and a list the kiosks take must be one the
# administrators can sign over, publish and verify.
KEY_LIST_BYTES = MAX_SNAPSHOT


def read_key_list(payload: bytes, root: Ed25519PublicKey, site: str) -> KeyList:
    """A key list verified against the site's root key, up to the size kiosks take; ``ProtocolError`` if not."""
    return parse_key_list(payload, root, site, max_bytes=KEY_LIST_BYTES)


def ahead(issued_at_ms: int, now_ms: int) -> bool:
    """Dated more than a day after ``now_ms``: what kiosks with a synchronised clock refuse (from_the_future)."""
    return issued_at_ms > now_ms + MAX_AHEAD_MS


def check_replaces(held: bytes, issued_at_ms: int, root: Ed25519PublicKey | None, site: str, name: str,
                   now_ms: int) -> str | None:
    """Whether the key list ``name``, issued at ``issued_at_ms``, may replace ``held``, the one retained on the
    broker: ``ConfigError`` when kiosks holding ``held`` would refuse it, else a warning to print (or None).

    Only a retained list that verifies against the root key (``root``), dated no more than a day ahead of this
    clock (``now_ms``), can be what kiosks hold: anything else there (junk, a list another root signed, one
    the root signed while its clock ran fast) was refused by every kiosk with a synchronised clock and is
    overwritten, so that nobody who can write on the broker can stop a revocation. Without ``root`` nothing can
    be verified: a well-formed list claiming to be as new is refused, naming --root-pub, which tells the two
    apart."""
    if root is not None:
        try:
            got = read_key_list(held, root, site)
        except ProtocolError as exc:
            return (f"the broker holds a key list that does not verify against the root key ({exc}): kiosks refused "
                    "it; overwriting it")
        if ahead(got.issued_at_ms, now_ms):
            return (f"the broker holds a key list the root signed at {got.issued_at_ms}, more than a day ahead of this "
                    f"clock ({now_ms}): the root's clock ran fast, and kiosks with a synchronised clock refuse it; "
                    "overwriting it")
        if got.issued_at_ms >= issued_at_ms:
            raise ConfigError(f"the broker holds a key list the root signed at {got.issued_at_ms}, not older than {name} "
                              f"({issued_at_ms}); kiosks would refuse it: sign a new one")
        return None
    try:
        held_ms = decode_json(held, KEY_LIST_BYTES).get("issued_at_ms")
    except ProtocolError as exc:
        return f"the broker holds something that is not a key list ({exc}): kiosks refused it; overwriting it"
    if not isinstance(held_ms, int) or isinstance(held_ms, bool):
        return "the broker holds something that is not a key list (no issue time): kiosks refused it; overwriting it"
    if ahead(held_ms, now_ms):
        return (f"the broker holds a key list claiming issue time {held_ms}, more than a day ahead of this clock "
                f"({now_ms}): kiosks with a synchronised clock refuse it, whoever signed it; overwriting it")
    if held_ms >= issued_at_ms:
        raise ConfigError(f"the broker holds a key list claiming issue time {held_ms}, not older than {name} "
                          f"({issued_at_ms}); pass --root-pub to check it: one the root signed means kiosks would "
                          "refuse this one (sign a new one), one it did not is overwritten")
    return None


@dataclass
class SiteKeys:
    """The administrator keys a retained snapshot must be signed by to be merged into the next one."""

    keys: dict[str, Ed25519PublicKey]
    listed: set[str] = field(default_factory=set)  # the newest verified key list's; empty: none verified
    warnings: list[str] = field(default_factory=list)


def site_keys(retained: bytes | None, root: Ed25519PublicKey | None, site: str, state: AdminState,
              signer: Signer, now_ms: int) -> SiteKeys:
    """The keys of the newest key list verified against ``root`` (the retained one, or the newest this
    administrator saw before, kept in ``state``), and this administrator's own key unless that list revokes it;
    never a key any list the root signed revoked (``AdminState.revoked_keys``).

    A key list is only ever taken from the root, and only dated no more than a day ahead of this clock
    (``now_ms``), as kiosks with a synchronised clock take it: an old one put back on the broker, still naming a
    key revoked since, does not let that key's snapshot in (kiosks refuse both), nor does a list dated ahead
    make every correct list after it look like an old one put back. Without ``root`` no key list can be
    checked: only this administrator's own key is, and another's snapshot is not merged."""
    own = {signer.key_id: signer.private.public_key()}
    if root is None:
        return SiteKeys(own, warnings=[
            "without the site's root key (--root-pub) no key list is checked: only a snapshot this administrator's "
            "own key signed is merged, and other administrators' changes hold the signature back (exit 18) rather "
            "than go into it"] if retained else [])
    newest, warnings = _newest_key_list(retained, root, site, state, now_ms)
    revoked = state.revoked_keys()
    if newest is None:
        return SiteKeys({} if signer.key_id in revoked else own, warnings=warnings)
    keys = {kid: public for kid, public in newest.keys.items() if kid not in revoked}
    if relisted := sorted(set(newest.keys) & revoked):
        warnings.append(f"the key list of {newest.issued_at_ms} lists {', '.join(relisted)}, revoked by another "
                        "list the root signed: a revoked key stays revoked here, and what it signs is not merged "
                        "(give that administrator a new key)")
    if signer.key_id not in newest.keys:
        warnings.append(f"this signing key {signer.key_id} is not in the site's key list: kiosks that pin the root "
                        "key refuse what it signs")
        if signer.key_id not in revoked:
            keys.update(own)
    return SiteKeys(keys, set(newest.keys), warnings)


def _newest_key_list(retained: bytes | None, root: Ed25519PublicKey, site: str, state: AdminState,
                     now_ms: int) -> tuple[KeyList | None, list[str]]:
    warnings: list[str] = []
    seen = None
    if (stored := state.key_list()) is not None:
        try:
            kept = read_key_list(stored, root, site)
        except ProtocolError as exc:
            warnings.append(f"the key list kept in the state file does not verify against --root-pub ({exc}): "
                            "not used")
        else:
            seen = _current(kept, now_ms, state, warnings, "the key list kept in the state file",
                            "dropped from the state file")
            if seen is None:
                state.forget_key_list()
    if not retained:
        return seen, warnings
    try:
        got = _current(read_key_list(retained, root, site), now_ms, state, warnings, "the retained key list",
                       "sign a new one by a correct clock (`kiosk admin keys sign --previous` takes its revocations) "
                       "and publish it")
    except ProtocolError as exc:
        warnings.append(f"the retained key list does not verify: {exc}")
        return seen, warnings
    if got is None:
        return seen, warnings
    if seen is None or got.issued_at_ms > seen.issued_at_ms:
        state.record_key_list(got.issued_at_ms, retained)
        return got, warnings
    if not same_signed(got.payload, seen.payload):  # a copy re-encoded is the same list
        warnings.append(f"the retained key list (issued {got.issued_at_ms}) is not the newest this administrator "
                        f"has verified ({seen.issued_at_ms}): someone put an old one back on the broker (kiosks "
                        "holding the newer refuse it); snapshots are verified against the newer one, publish it "
                        "again with `kiosk admin keys publish`")
    return seen, warnings


def _current(got: KeyList, now_ms: int, state: AdminState, warnings: list[str], what: str, then: str) -> KeyList | None:
    """A verified key list, unless it is dated more than a day ahead of this clock (the root's clock ran fast):
    kiosks with a synchronised clock refuse it, so it decides nothing here either (``then`` says what next).
    The keys it revokes stay revoked, as those of every list verified (``AdminState.record_revoked``)."""
    state.record_revoked(got.revoked, got.issued_at_ms)
    if not ahead(got.issued_at_ms, now_ms):
        return got
    warnings.append(f"{what} is issued at {got.issued_at_ms}, more than a day ahead of this clock ({now_ms}): the "
                    "root's clock ran fast, and kiosks with a synchronised clock refuse it; not used, the keys it "
                    f"revokes stay revoked here; {then}")
    return None
