"""What the sync core asks the transport to carry out: publish, emit an event, follow a store change, have the
retained messages of some topics delivered again, in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Action", "Changed", "Emit", "Publish", "Resubscribe"]


@dataclass(frozen=True)
class Publish:
    topic: str
    payload: bytes
    retain: bool
    qos: int = 1


@dataclass(frozen=True)
class Emit:
    kind: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Changed:
    """The store changed for this person (the gallery should follow)."""

    person_id: str
    deleted: bool


@dataclass(frozen=True)
class Resubscribe:
    """Subscribe to ``topics`` again, one after the other in this order: the broker sends their retained
    messages anew, in the order of the subscriptions (a subscription to the same filter replaces the one held,
    and retained messages are sent on every subscribe)."""

    topics: tuple[str, ...]


Action = Publish | Emit | Changed | Resubscribe
