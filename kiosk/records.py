"""The enrollment model: what an administrator signs and what a kiosk stores.

An ``Enrollment`` or a ``Tombstone`` that came from the administrators
carries the exact signed payload it was decoded from (``signed``) and the id of
the key that signed it, so the store can keep the signed bytes and verify
them again whenever it loads, instead of trusting its own clear columns.
The revision of a record is its issue time in milliseconds since the epoch.

An enrollment may also carry a second factor (``kiosk.factor``): PIN
verifiers (never a PIN), a user code and card numbers that claim the person.
They are part of what the administrator signs, and the kiosk reads them only
from the verified record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

EMBEDDING_SIZE = 128
MAX_EMBEDDINGS = 10
PERSON_ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"


def window_open(enabled: bool, valid_from: float | None, valid_until: float | None, now: float | None) -> bool:
    """Enabled and inside [valid_from, valid_until); with no trustworthy clock (``now`` None) a window fails closed."""
    if not enabled:
        return False
    if valid_from is None and valid_until is None:
        return True
    if now is None:
        return False
    return (valid_from is None or now >= valid_from) and (valid_until is None or now < valid_until)


@dataclass(frozen=True)
class Enrollment:
    person_id: str
    name: str
    revision: int  # the signed issue time, ms since the epoch
    model_fingerprint: str
    embeddings: npt.NDArray[np.float32]  # (n, 128), unit rows
    enabled: bool = True
    valid_from: float | None = None  # unix seconds
    valid_until: float | None = None
    signed: bytes | None = field(default=None, compare=False, repr=False)  # the signed payload, verbatim
    key_id: str | None = field(default=None, compare=False)  # who signed it
    pin_verifier: str | None = None  # "$kpin-argon2id$..." (kiosk.factor.pin), never the PIN
    duress_verifier: str | None = None  # a second PIN that grants and raises a silent alarm
    user_code: str | None = None  # digits typed before the PIN to claim this person (an identifier, not a secret)
    cards: tuple[str, ...] = ()  # "h10301:<facility>:<number>" or "w34:<facility>:<number>"
    template: str | None = None  # "fused-mean-v1": one template fused from the photos; None: photos' rows (older)

    def valid_at(self, now: float | None) -> bool:
        """Enabled and inside the validity window; an unknown time (``None``) passes only an open window."""
        return window_open(self.enabled, self.valid_from, self.valid_until, now)


@dataclass(frozen=True)
class Tombstone:
    person_id: str
    revision: int
    signed: bytes | None = field(default=None, compare=False, repr=False)
    key_id: str | None = field(default=None, compare=False)


Record = Enrollment | Tombstone
