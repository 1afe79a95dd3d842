"""A damaged trust row in the store: the kiosk still starts, and the row admits nobody it would not have.

The floor, the kept revocations and the standing are written by the kiosk itself; a damaged one (a disk
fault, a hand edit) is logged and dropped, never taken for more than it says.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from tests.site import DAY_MS, Kiosk, Site
from tests.test_trust_before_ntp import _started
from tests.trust_kiosk import TOPICS


def _current(tmp_path: Path) -> tuple[Site, bytes, Path]:
    """A kiosk store that holds a current snapshot of the site."""
    key, path, site, k, core, now = _started(tmp_path, 1, require_snapshot=True)
    core.handle(TOPICS.keys, site.key_list(now - 40 * DAY_MS), 0.0)
    core.handle(TOPICS.snapshot, site.snapshot({"ann": (now - DAY_MS, False)}, now - 1000), 0.0)
    k.store.close()
    return site, key, path


def _with_row(site: Site, key: bytes, path: Path, name: str, row: bytes) -> Kiosk:
    k = Kiosk(site, path, key, require_snapshot=True)
    k.store.save_state(name, row)
    k.store.close()
    return Kiosk(site, path, key, require_snapshot=True)


@pytest.mark.parametrize("name,row", [
    ("snapshot_floor", b'{"site":"hq","people":{"ann":[1e400,true],"bo":[5,true]}}'),
    ("key_revocations_kept", b'{"site":"hq","kept":{"0123456789abcdef":1e400,"fedcba9876543210":5}}'),
])
def test_a_kept_row_with_an_unreadable_number_drops_that_entry_and_the_kiosk_starts(
        tmp_path: Path, name: str, row: bytes, caplog: pytest.LogCaptureFixture) -> None:
    site, key, path = _current(tmp_path)
    with caplog.at_level(logging.ERROR):
        k = _with_row(site, key, path, name, row)
    assert k.trust.status()["snapshot_current_seen"]
    assert "not readable" in caplog.text
    if name == "snapshot_floor":  # the readable entry still refuses
        assert k.trust.status()["snapshot_refusals_kept"] == 1 and k.trust.admits("bo", 5) == "deleted_in_snapshot"
    else:
        assert k.trust.revoked() >= {"fedcba9876543210"} and "0123456789abcdef" not in k.trust.revoked()


@pytest.mark.parametrize("row", [b"true", b"[]", b'"1733400000000"', b"null", b"1.5e12", b"held"])
def test_a_standing_row_that_is_neither_format_is_deleted_not_counted_as_earned(tmp_path: Path,
                                                                              row: bytes) -> None:
    site, key, path = _current(tmp_path)
    k = _with_row(site, key, path, "snapshot_fresh", row)
    assert not k.trust.status()["snapshot_current_seen"] and k.admitted() == set()
    assert k.store.load_state("snapshot_fresh") is None


def test_a_standing_row_of_the_old_format_still_counts_once_and_is_rewritten(tmp_path: Path) -> None:
    site, key, path = _current(tmp_path)
    k = _with_row(site, key, path, "snapshot_fresh", b"1733400000000")
    assert k.trust.status()["snapshot_current_seen"]
    assert k.store.load_state("snapshot_fresh") == (b'{"site": "hq", "root": "%s", "issued_at_ms": 1733400000000}'
                                                    % k.trust.status()["root_key"].encode())


@pytest.mark.parametrize("name", ["snapshot_floor", "key_revocations_kept", "snapshot_fresh"])
@pytest.mark.parametrize("row", [b"[" * 100_000, ('["\u2241",' + "[" * 100_000 + '"\u2241"' + "]" * 100_001)
                                 .encode("utf-16-le")], ids=["utf8", "utf16"])  # U+2241 is the bytes 41 22: a quote
def test_a_row_nested_too_deep_to_decode_is_dropped_and_the_kiosk_starts(
        tmp_path: Path, name: str, row: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """100,000 '[' would raise RecursionError in a recursive decoder: the nesting is counted first. In
    UTF-16 (which json.loads would guess from the bytes) a quote byte inside a character hid the brackets
    from that count: rows are read as the UTF-8 they are written in."""
    site, key, path = _current(tmp_path)
    with caplog.at_level(logging.ERROR):
        k = _with_row(site, key, path, name, row)
    assert "not readable" in caplog.text
    assert k.trust.status()["snapshot_current_seen"] == (name != "snapshot_fresh")


@pytest.mark.parametrize("name", ["snapshot_floor", "key_revocations_kept", "snapshot_fresh"])
@pytest.mark.parametrize("value", ['{"site": "hq"}', 1.5])
def test_a_row_stored_as_text_or_a_number_is_ignored_and_the_kiosk_starts(
        tmp_path: Path, name: str, value: object, caplog: pytest.LogCaptureFixture) -> None:
    """A hand edit (UPDATE trust_state SET payload = '...') stores text, not the bytes the kiosk writes."""
    site, key, path = _current(tmp_path)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM trust_state WHERE name = ?", (name,))
    db.execute("INSERT INTO trust_state VALUES (?, ?, 0)", (name, value))
    db.commit()
    db.close()
    with caplog.at_level(logging.ERROR):
        k = Kiosk(site, path, key, require_snapshot=True)
    assert "not the bytes this kiosk writes" in caplog.text
    assert k.trust.status()["snapshot_current_seen"] == (name != "snapshot_fresh")
