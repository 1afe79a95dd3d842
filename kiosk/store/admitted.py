"""The people the store admits right now, only ever from records that verified.

One template per person in the gallery (a record carrying several photos'
embeddings, as older enrollments do, is fused), each person's validity
window, and the second factors (PIN verifiers, user codes, cards) of
``kiosk.factor.index``. Not locked: the ``Store`` calls it under its own
lock, and builds a new one whenever every row is verified again.
"""

from __future__ import annotations

from kiosk.factor.index import FactorIndex
from kiosk.gallery import IncrementalGallery
from kiosk.match import fuse_rows
from kiosk.records import EMBEDDING_SIZE, Enrollment

__all__ = ["Admitted"]


class Admitted:
    def __init__(self) -> None:
        self.gallery = IncrementalGallery(EMBEDDING_SIZE)
        self.validity: dict[str, tuple[bool, float | None, float | None]] = {}
        self.factor = FactorIndex()  # PIN verifiers, user codes, cards: from verified records only

    def put(self, e: Enrollment) -> None:
        """Admit a verified enrollment, replacing what the person had."""
        # one template per person: a record carrying several photos' embeddings (older enrollments) is fused,
        # so the gallery holds one row per person and the security level counts people, not photos
        rows = e.embeddings if len(e.embeddings) == 1 else fuse_rows(e.embeddings)[None, :]
        self.gallery.put(e.person_id, rows)
        self.validity[e.person_id] = (e.enabled, e.valid_from, e.valid_until)
        self.factor.put(e)

    def forget(self, person_id: str) -> None:
        """The person is no longer admitted: template, validity window and second factors gone."""
        self.gallery.remove(person_id)
        self.validity.pop(person_id, None)
        self.factor.forget(person_id)
