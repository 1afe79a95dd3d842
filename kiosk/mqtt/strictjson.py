"""Strict JSON decoding (pure): what every sync payload goes through before anything else looks at it.

Size first, then UTF-8, then nesting (counted without recursion, so 10,000
levels cost nothing), then a decode that refuses ``NaN``, infinity, numbers
beyond a 64-bit float and duplicate keys. Every failure is a
``ProtocolError`` (``oversized`` or ``malformed_json``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from kiosk.mqtt.protocol import ProtocolError

__all__ = ["MAX_DEPTH", "check_nesting", "decode_json"]

MAX_DEPTH = 32  # enrollments nest 2 deep; snapshots and key lists a few more
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} does not fit a 64-bit float")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k[:40]!r}")
        out[k] = v
    return out


def check_nesting(payload: bytes, max_depth: int = MAX_DEPTH) -> None:
    """Refuse arrays/objects nested deeper than ``max_depth`` before any recursive parser sees them."""
    depth = 0
    for m in _BRACKET.finditer(_STRING.sub(b"", payload)):
        depth += 1 if m.group() in (b"[", b"{") else -1
        if depth > max_depth:
            raise ProtocolError("malformed_json", f"nested deeper than {max_depth} levels")


def decode_json(payload: bytes, max_bytes: int) -> Any:
    """Size, UTF-8, nesting, then a strict decode: no NaN, no infinity, no duplicate keys."""
    if len(payload) > max_bytes:
        raise ProtocolError("oversized", f"{len(payload)} bytes; at most {max_bytes}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("malformed_json", f"not UTF-8: {exc}") from exc
    check_nesting(payload)
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("malformed_json", str(exc)[:200]) from exc


def read_stored(payload: bytes | None) -> Any:
    """A JSON document this kiosk wrote to its own store (None when there is none): read as the UTF-8 it was
    written in (``json.loads`` would guess UTF-16 from the bytes), its nesting counted first. A damaged one
    raises ``ValueError`` (or ``ProtocolError``, one), never ``RecursionError``."""
    if payload is None:
        return None
    check_nesting(payload)
    try:
        return json.loads(payload.decode("utf-8"))
    except RecursionError as exc:
        raise ValueError("nested too deep") from exc


def is_json_int(value: object) -> bool:
    """A JSON integer (not a boolean, nor a number such as 1e400 that reads as a float)."""
    return isinstance(value, int) and not isinstance(value, bool)
