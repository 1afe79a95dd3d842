"""Administrator keys kept revoked: revocations of key lists that gave way, which no replay may undo.

A kiosk takes the retained key list even while its clock is unknown (a Raspberry Pi boots without a
real-time clock). A list the root once signed with its clock fast is newer, by its date, than the current
one: put back on the broker before NTP, it replaces it, and with it a revocation made since (a lost
laptop's key listed again). Once the clock is synchronised, a list held that is dated more than a day
ahead of it cannot be told from a future nobody reached, so it gives way to any list the root signed for
the site, older ones included, rather than refuse the current one as stale until the wall clock reaches
its date; and a list older than the revocation may be what replaces it.

So a revocation is kept here, with the issue time of the list that made it, whenever its list gives way:
replaced while the clock is unknown, or dated ahead of the synchronised clock. A key kept revoked is no
administrator key whatever list is held (``SiteTrust.keys``) and its records are refused as revoked.
Only the root can re-admit it: a list taken while the clock is synchronised (never one taken before),
issued after the date kept but not dated ahead of that clock (the root's fast clock may have dated it
after a revocation it predates), that lists the key again (or revokes it itself, which then holds). A key
list refused as stale before NTP that loses its place to another (``kiosk.mqtt.deferred``) gives way too.

The date kept is the issue time of the list that revoked it, even when the root's fast clock dated it
ahead: lowered to the clock, the root's other lists of those days, older but dated ahead of the clock
too, would re-admit the key once put back, and nothing tells them from the root's next list by a correct
clock. So a key that only a list dated ahead revoked stays revoked until the root lists it in one dated
after that list, published once that date has passed (a list taken ahead of the clock, beyond
``RELEASE_SKEW_MS``, re-admits nothing, and is not judged again); to re-admit its holder
sooner, list a new key for them. A list put back, issued before the revoking one, never re-admits it.

Bounded by the keys the site's root revoked (at most 4096 a list), one entry a key.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from kiosk.mqtt.keys import KeyList
from kiosk.mqtt.strictjson import is_json_int, read_stored

logger = logging.getLogger(__name__)


RELEASE_SKEW_MS = 5 * 60_000  # how far ahead of a synchronised clock a list may be dated and still re-admit


@dataclass(frozen=True)
class Revocations:
    site: str
    kept: dict[str, int] = field(default_factory=dict)  # key id -> issue time of the list that revoked it

    def ids(self) -> frozenset[str]:
        return frozenset(self.kept)

    def kept_from(self, given_way: KeyList) -> Revocations:
        """With the revocations of ``given_way``, dated by its own issue time, even one dated ahead of the
        clock: lowered, a list the root signed before it, dated between, would re-admit its keys."""
        kept = dict(self.kept)
        for kid in given_way.revoked:
            kept[kid] = max(kept.get(kid, 0), given_way.issued_at_ms)
        return Revocations(self.site, kept)

    def released_by(self, got: KeyList, now_ms: int) -> Revocations:
        """Without the keys ``got``, taken with the clock synchronised at ``now_ms``, lists or revokes after
        they were kept. Not ``got`` dated ahead of that clock (beyond ``RELEASE_SKEW_MS``, the drift of an
        offline root's clock): the root's fast clock may have dated it, so it may have been issued before
        the list that revoked them, though dated after. It is judged when taken, never again."""
        if got.issued_at_ms > now_ms + RELEASE_SKEW_MS:
            return self
        return Revocations(self.site, {kid: at for kid, at in self.kept.items()
                                       if not (got.issued_at_ms > at and (kid in got.keys or kid in got.revoked))})

    def encode(self) -> bytes:
        return json.dumps({"site": self.site, "kept": dict(sorted(self.kept.items()))}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes | None, site: str) -> Revocations:
        """The stored revocations of ``site``; none when there are none, or they are another site's."""
        try:
            data = read_stored(payload)
            if not isinstance(data, dict) or data.get("site") != site:
                return cls(site)
            kept = {}
            for kid, at in data["kept"].items():
                if is_json_int(at):
                    kept[str(kid)] = at
                else:  # 1e400 reads as a float (inf): each damaged entry goes, the readable ones stay
                    logger.error("the revocation kept of key %s is not readable (%r): dropped", kid, at)
            return cls(site, kept)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a damaged store
            logger.error("the administrator key revocations kept are not readable (%s): dropped", exc)
            return cls(site)
