"""Refusals kept from site snapshots that gave way: the floor under the snapshot held.

A kiosk takes the retained snapshot even while its clock is unknown (a Raspberry Pi boots without a
real-time clock), so a snapshot that replaces the one held then may be one dated ahead, put back on the
broker (an administrator's fast clock, a stolen key): newer by its date, older by what it says. Once the
clock is synchronised, a snapshot held that is dated, or gives a person a revision, more than a day ahead
of it cannot be told from a future nobody reached: it must not hold back the site's later snapshots until
the wall clock catches up with it, so any snapshot a current key signs replaces it, older ones included.

Neither way may undo what the snapshot given way refused. So whenever a snapshot replaces the one held
while the clock is unknown, or the one held gives way for being dated ahead, the refusals of the one
replaced that the new one does not make at least as well are kept here, and a record older than the
floor's revision of its person is refused as it would be by the snapshot held (per person the higher
revision wins, and at the same revision a deletion). A newer snapshot, not dated ahead, that replaces the
one held while the clock is synchronised is the administrators' word, as it ever was. A snapshot refused
as stale while the clock is unknown (the one held may be dated ahead) has its refusals kept here at once,
the same way, until it is judged again once the clock is known (``kiosk.mqtt.deferred``).

Each revision kept is capped at a day after the synchronised clock (no record past that is taken either,
so none can be refused for good): at once when the clock is known, else at the first moment it is.

The floor stays small: it holds at most one entry per person, and only where a snapshot given way
refused more than the one held does: an entry the snapshot held refuses at least as much is dropped when
it comes (that snapshot keeps it, and gives it back here if it is replaced in one of the ways above). Its
people are people the site's administrators signed into a snapshot, at most those of the snapshots given
way (each at most ``sync.max_snapshot_bytes``); as the administrators re-sign the snapshot, with
revisions that only grow, each entry goes once a snapshot held refuses as much.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from kiosk.mqtt.snapshot import Snapshot, entry_refusal
from kiosk.mqtt.strictjson import is_json_int, read_stored

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Floor:
    site: str
    people: dict[str, tuple[int, bool]] = field(default_factory=dict)  # person -> (revision, deleted)

    def refusal(self, person_id: str, revision: int, cap_ms: int | None = None) -> str | None:
        """Why a record of this person at this revision must not be used; ``cap_ms``: a day after the
        synchronised clock, the cap of entries kept while it was unknown and not capped yet."""
        entry = self.people.get(person_id)
        if entry is not None and cap_ms is not None and entry[0] > cap_ms:
            entry = (cap_ms, entry[1])
        return entry_refusal(entry, revision)

    def folded(self, replaced: Snapshot, held: Snapshot, cap_ms: int | None) -> Floor:
        """This floor with the entries of ``replaced`` that ``held`` does not refuse at least as much, each
        revision capped at ``cap_ms`` (None: the clock is unknown; ``capped`` lowers them once it is known)."""
        people = dict(self.people)
        for person, (revision, deleted) in replaced.people.items():
            entry = (revision if cap_ms is None else min(revision, cap_ms), deleted)
            if _covers(held.people.get(person), entry):
                continue
            if person not in people or entry > people[person]:
                people[person] = entry
        return Floor(self.site, people)

    def pruned(self, held: Snapshot) -> Floor:
        """Without the entries that ``held`` refuses at least as much (it keeps them while held, and gives
        them back to the floor when it is replaced)."""
        return Floor(self.site, {p: e for p, e in self.people.items() if not _covers(held.people.get(p), e)})

    def capped(self, cap_ms: int) -> Floor:
        """Each revision lowered to ``cap_ms``, a day after the synchronised clock."""
        return Floor(self.site, {p: (min(r, cap_ms), d) for p, (r, d) in self.people.items()})

    def ahead_of(self, cap_ms: int) -> bool:
        return any(r > cap_ms for r, _ in self.people.values())

    def encode(self) -> bytes:
        return json.dumps({"site": self.site, "people": {p: [r, d] for p, (r, d) in sorted(self.people.items())}},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes | None, site: str) -> Floor:
        """The stored floor of ``site``; an empty one when there is none, or it is another site's."""
        try:
            data = read_stored(payload)
            if not isinstance(data, dict) or data.get("site") != site:
                return cls(site)
            people = {}
            for person, entry in data["people"].items():
                if isinstance(entry, list) and len(entry) == 2 and is_json_int(entry[0]) and isinstance(entry[1], bool):
                    people[str(person)] = (entry[0], entry[1])
                else:  # 1e400 reads as a float (inf): each damaged entry goes, the readable ones stay
                    logger.error("the refusal kept for %r is not readable (%r): dropped", person, entry)
            return cls(site, people)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a damaged store
            logger.error("the refusals kept from a snapshot dated ahead are not readable (%s): dropped", exc)
            return cls(site)



def _covers(held: tuple[int, bool] | None, kept: tuple[int, bool]) -> bool:
    """The snapshot entry ``held`` refuses every record the entry ``kept`` does: a higher revision, or the
    same one and a deletion if ``kept`` is one."""
    return held is not None and held >= kept
