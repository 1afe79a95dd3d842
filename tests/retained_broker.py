"""The broker's retained store in memory, behind the admin tool's ``Broker`` seam.

The administrator's commands only read what is retained on a set of topic filters and publish retained
messages; this holds those messages per topic, matches MQTT filters (``+``, ``#``) as the broker does, and
is installed in place of ``kiosk.admin.site.Broker``. Tests that need the network path use the real
mosquitto (tests/test_admin.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiosk.mqtt.keys import write_private_key
from kiosk.mqtt.protocol import Signer
from tests.site import SITE


def matches(pattern: str, topic: str) -> bool:
    """Whether an MQTT topic filter matches a topic."""
    p, t = pattern.split("/"), topic.split("/")
    for i, part in enumerate(p):
        if part == "#":
            return True
        if i >= len(t) or part not in ("+", t[i]):
            return False
    return len(p) == len(t)


class RetainedBroker:
    """One site's retained messages (``topics``), shared by every connection the commands open."""

    def __init__(self) -> None:
        self.topics: dict[str, bytes] = {}

    def connect(self, _args: argparse.Namespace) -> _Connection:
        return _Connection(self)


class _Connection:
    def __init__(self, broker: RetainedBroker) -> None:
        self.broker = broker
        self.messages: list[tuple[str, bytes]] = []

    def retained(self, *patterns: str, **_timing: float) -> list[tuple[str, bytes]]:
        got = [(t, p) for t, p in self.broker.topics.items() if any(matches(x, t) for x in patterns)]
        self.messages += got
        return got

    def subscribe(self, *patterns: str, timeout: float = 10.0) -> None:
        pass

    def wait_for(self, done: Callable[[list[tuple[str, bytes]]], bool], timeout: float) -> bool:
        return done(self.messages)

    def publish(self, topic: str, payload: bytes, retain: bool = True, timeout: float = 10.0) -> None:
        if retain:
            self.broker.topics[topic] = payload
        self.messages.append((topic, payload))

    def close(self) -> None:
        pass


def install(monkeypatch: pytest.MonkeyPatch) -> RetainedBroker:
    """A fresh retained store that every admin command of this test connects to."""
    import kiosk.admin.site as site

    broker = RetainedBroker()
    monkeypatch.setattr(site, "Broker", broker.connect)
    return broker


def admin_args(tmp: Path, name: str, signer: Signer, root_pub: Path | None, **extra: Any) -> argparse.Namespace:
    """The options of one administrator (a key file and a state file of their own), as the CLI parses them."""
    key = tmp / f"{name}.key"
    if not key.exists():
        write_private_key(key, signer.private)
    base = {"host": "127.0.0.1", "port": 1883, "site": SITE, "prefix": "kiosk", "tls": False, "ca_file": None,
            "cert_file": None, "key_file": None, "username": None, "password_file": None, "root_pub": root_pub,
            "signing_key": key, "state": tmp / f"{name}-state" / "admin.db", "snapshot_valid_h": 72.0,
            "wait": 0.0, "every": None, "force": False}
    return argparse.Namespace(**{**base, **extra})
