"""The standing: the record that this kiosk has held a current snapshot of its site, under its root key.

With ``trust.require_snapshot`` a kiosk admits nobody until it has held a site snapshot that had not
expired when it arrived, by a synchronised clock; the standing keeps that across restarts. It names the
site and root key it was earned under: a store kept across a change of site name or root key is, for the
new one, a kiosk without history.

A row written before it named them holds the bare issue time. It counts only on the first start that
reads it, when the stored key list verifies for this site under this root, and is rewritten at once
naming them; otherwise it is deleted. It is never judged again later, when a key list stored since (the
new root's, or the new site's) would pass that test for a snapshot the kiosk never held under it. Only
a bare integer is that format: a row that is neither (``true``, ``[]``, text) is damaged, and deleted.
"""

from __future__ import annotations

import json
import logging
from typing import Protocol

from kiosk.mqtt.strictjson import read_stored

logger = logging.getLogger(__name__)

FRESH = "snapshot_fresh"


class _Store(Protocol):
    def load_state(self, name: str) -> bytes | None: ...
    def save_state(self, name: str, payload: bytes) -> None: ...
    def delete_state(self, name: str) -> None: ...


def standing(site: str, root: str | None, issued_at_ms: int) -> bytes:
    """The record of having held a current snapshot of ``site`` under root key id ``root``."""
    return json.dumps({"site": site, "root": root, "issued_at_ms": issued_at_ms}).encode()


def restore(store: _Store, site: str, root: str | None, key_list_verifies: bool) -> bool:
    """Whether the stored standing was earned under this site and root; one that was not is deleted, one
    in the format before it named them is rewritten naming them (``key_list_verifies``: the stored key
    list verifies for this site under this root, the only evidence such a row was earned here)."""
    payload = store.load_state(FRESH)
    if payload is None:
        return False
    try:
        data = read_stored(payload)
    except ValueError:
        data = None
    if isinstance(data, dict):
        earned = data.get("site") == site and data.get("root") == root
    elif isinstance(data, int) and not isinstance(data, bool):  # the format before it named them
        earned = root is None or key_list_verifies
        if earned:
            store.save_state(FRESH, standing(site, root, data))
            logger.info("the record of a current snapshot held, from before it named its site and root key, "
                        "now names them (site %r)", site)
    else:  # neither format (``true``, ``[]``, text): a damaged row, earned nowhere
        store.delete_state(FRESH)
        logger.error("the record of a current snapshot held is not readable (%r): dropped; nobody is admitted "
                     "until this kiosk holds a current snapshot of site %r", payload[:64], site)
        return False
    if not earned:
        store.delete_state(FRESH)
        logger.warning("the store held a current snapshot of another site or under another root key: dropped; "
                       "nobody is admitted until it holds a current snapshot of site %r", site)
    return earned
