"""A local enrollment: a template signed with an administrator key the kiosk trusts, applied to its store.

The kiosk stores only records an administrator signed, so a door without a
broker is enrolled the same way as one that syncs: the record is signed here
(with a key that stays with the administrator), parsed and verified like a
message from the broker, then applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kiosk.config import Settings


def enroll_signed(settings: Settings, signing_key: Path, person: str, name: str, rows: npt.NDArray[np.float32],
                  fingerprint: str, *, valid_until: float | None = None) -> Any:
    """Sign ``rows`` (one fused template, or photos' rows) for ``person`` and apply them; returns the store's result."""
    from kiosk.admin.keys import load_signer
    from kiosk.admin.publish import sign_enrollment
    from kiosk.mqtt.protocol import parse
    from kiosk.service import open_store

    store, trust = open_store(settings, fingerprint)
    try:
        payload = sign_enrollment(load_signer(signing_key), settings.site, person, name, fingerprint, rows,
                                  held_revision=store.revision(person), valid_until=valid_until)
        return store.apply(parse(payload, trust.keys(), settings.site, topic_person=person))
    finally:
        store.close()
