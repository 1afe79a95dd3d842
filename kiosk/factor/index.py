"""Who a card or user code names, and each person's PIN verifiers (pure; filled from verified records only).

The store puts a person here when it admits their verified enrollment and
forgets them whenever that record is removed, set aside or quarantined, so
nothing here ever comes from the store's clear columns. A card or code held
by two admitted people names nobody (fail closed: the administrator is told
in the log) rather than whichever was loaded last.
"""

from __future__ import annotations

import logging
from typing import Protocol

logger = logging.getLogger(__name__)


class FactorRecord(Protocol):
    """What the index reads of an enrollment (``kiosk.records.Enrollment``)."""

    @property
    def person_id(self) -> str: ...
    @property
    def pin_verifier(self) -> str | None: ...
    @property
    def duress_verifier(self) -> str | None: ...
    @property
    def user_code(self) -> str | None: ...
    @property
    def cards(self) -> tuple[str, ...]: ...


class FactorIndex:
    def __init__(self) -> None:
        self._verifiers: dict[str, tuple[str, str | None]] = {}
        self._held: dict[str, tuple[str | None, tuple[str, ...]]] = {}  # person -> (code, cards)
        self._codes: dict[str, set[str]] = {}
        self._cards: dict[str, set[str]] = {}

    def put(self, e: FactorRecord) -> None:
        self.forget(e.person_id)
        pid = e.person_id
        if e.pin_verifier is not None:
            self._verifiers[pid] = (e.pin_verifier, e.duress_verifier)
        if e.user_code is None and not e.cards:
            return
        self._held[pid] = (e.user_code, tuple(e.cards))
        if e.user_code is not None:
            self._add(self._codes, e.user_code, pid, "user code")
        for card in e.cards:
            self._add(self._cards, card, pid, "card")

    def forget(self, pid: str) -> None:
        self._verifiers.pop(pid, None)
        code, cards = self._held.pop(pid, (None, ()))
        if code is not None:
            self._discard(self._codes, code, pid)
        for card in cards:
            self._discard(self._cards, card, pid)

    def verifiers(self, pid: str) -> tuple[str, str | None] | None:
        return self._verifiers.get(pid)

    def code(self, code: str) -> str | None:
        return self._only(self._codes.get(code))

    def card(self, card: str) -> str | None:
        return self._only(self._cards.get(card))

    @staticmethod
    def _only(people: set[str] | None) -> str | None:
        return next(iter(people)) if people is not None and len(people) == 1 else None

    @staticmethod
    def _add(index: dict[str, set[str]], key: str, pid: str, what: str) -> None:
        holders = index.setdefault(key, set())
        holders.add(pid)
        if len(holders) > 1:
            logger.error("the same %s is enrolled to %s: it names nobody until one record is re-published without it",
                         what, ", ".join(sorted(holders)))

    @staticmethod
    def _discard(index: dict[str, set[str]], key: str, pid: str) -> None:
        holders = index.get(key)
        if holders is not None:
            holders.discard(pid)
            if not holders:
                del index[key]
