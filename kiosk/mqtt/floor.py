"""Refusals kept from a site snapshot that gave way while it was dated ahead of the synchronised clock.

A kiosk takes the retained snapshot even while its clock is unknown (a Raspberry Pi boots without a
real-time clock). Once the clock is synchronised, a snapshot held that is dated, or gives a person a
revision, more than a day ahead of it (an administrator's fast clock, a stolen key) cannot be told
from a future nobody reached: it must not hold back the site's later snapshots until the wall clock
catches up with it, so any snapshot a current key signs replaces it, older ones included. Its
deletions and revisions are still evidence, though, and an older snapshot put back on the broker must
not undo them: they are kept here, each revision capped at a day after the clock when the snapshot
gave way (no record past that is taken either, so none can be refused for good), and a record older
than the floor's revision of its person is refused as it would be by the snapshot held.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from kiosk.mqtt.snapshot import Snapshot, entry_refusal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Floor:
    site: str
    people: dict[str, tuple[int, bool]] = field(default_factory=dict)  # person -> (revision, deleted)

    def refusal(self, person_id: str, revision: int) -> str | None:
        return entry_refusal(self.people.get(person_id), revision)

    def raised(self, snap: Snapshot, cap_ms: int) -> Floor:
        """This floor with ``snap``'s entries, each revision capped at ``cap_ms``: per person the higher
        revision wins, and at the same revision a deletion."""
        people = dict(self.people)
        for person, (revision, deleted) in snap.people.items():
            entry = (min(revision, cap_ms), deleted)
            if person not in people or entry > people[person]:
                people[person] = entry
        return Floor(self.site, people)

    def encode(self) -> bytes:
        return json.dumps({"site": self.site, "people": {p: [r, d] for p, (r, d) in sorted(self.people.items())}},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes | None, site: str) -> Floor:
        """The stored floor of ``site``; an empty one when there is none, or it is another site's."""
        try:
            data = json.loads(payload) if payload is not None else None
            if not isinstance(data, dict) or data.get("site") != site:
                return cls(site)
            return cls(site, {str(p): (int(r), bool(d)) for p, (r, d) in data["people"].items()})
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # written by this kiosk: a damaged store
            logger.error("the refusals kept from a snapshot dated ahead are not readable (%s): dropped", exc)
            return cls(site)
