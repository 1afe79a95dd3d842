"""Administrators and running kiosks of one site, on a real mosquitto: what the ``kiosk admin`` tests share
(the fixtures ``broker``, ``site`` and ``admins``, made available to every test by tests/conftest.py)."""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from kiosk.admin import AdminState, publish_change
from kiosk.events import EventSink
from kiosk.mqtt.adapter import KioskMqtt
from kiosk.mqtt.client import make_client
from kiosk.mqtt.keys import write_private_key
from kiosk.mqtt.protocol import Signer
from kiosk.mqtt.topics import Topics
from kiosk.outbox import Outbox
from kiosk.records import Enrollment
from tests.broker import Mosquitto
from tests.mqtt_kiosk import TIMEOUT, Collector
from tests.site import FP, SITE, Kiosk, Site, emb

Run = Callable[..., tuple[int, str, str]]


class Admin:
    """One administrator: a key file, a state file, and the common command-line options."""

    def __init__(self, tmp: Path, name: str, broker: Mosquitto, signer: Signer, root_pub: Path) -> None:
        self.key = tmp / f"{name}.key"
        if not self.key.exists():
            write_private_key(self.key, signer.private)
        self.signer = signer
        self.state = tmp / f"{name}-state" / "admin.db"
        self.port, self.root_pub = broker.port, root_pub
        self.opts = ["--host", "127.0.0.1", "--port", broker.port, "--site", SITE, "--signing-key", self.key,
                     "--state", self.state, "--root-pub", root_pub, "--wait", "3"]

    def args(self, **extra: Any) -> argparse.Namespace:
        base = {"host": "127.0.0.1", "port": self.port, "site": SITE, "prefix": "kiosk", "tls": False,
                "ca_file": None, "cert_file": None, "key_file": None, "username": None, "password_file": None,
                "root_pub": self.root_pub, "signing_key": self.key, "state": self.state, "snapshot_valid_h": 72.0,
                "wait": 3.0, "every": None}
        return argparse.Namespace(**{**base, **extra})

    def enroll(self, pid: str, seed: int, now: float | None = None) -> int:
        """`kiosk admin enroll` without the photos: synthetic embeddings, the same publishing path."""
        state = AdminState(self.state)
        rev, _, _ = publish_change(
            self.args(), self.signer, state, pid,
            lambda r: (self.signer.enrollment(SITE, Enrollment(pid, pid.title(), r, FP, emb(seed))), pid.title()),
            **({"now": lambda: now} if now is not None else {}))
        return rev


class RunningKiosk:
    """A kiosk's sync side as the service builds it: store + site trust + sync core + paho adapter."""

    def __init__(self, tmp: Path, broker: Mosquitto, site: Site, device: str) -> None:
        # as the service: records wait for a snapshot; the kiosk's clock is the administrators' (they sign with
        # the real time, and a snapshot already expired by the kiosk's clock is refused)
        self.k = Kiosk(site, tmp / f"{device}.db", os.urandom(32), require_snapshot=True)
        self.k.wall.now = time.time()
        self.events = EventSink(None, device)
        self.outbox = Outbox(tmp / f"{device}-outbox.db")
        self.mqtt = KioskMqtt(make_client(f"kiosk-{device}"), "127.0.0.1", broker.port, Topics("kiosk", SITE, device),
                              self.k.store, self.events, self.outbox, self.k.trust)
        self.mqtt.start()
        assert self.mqtt.subscribed.wait(TIMEOUT)

    def stop(self) -> None:
        self.mqtt.stop(0.5)
        self.outbox.close()


def retained(port: int, topic: str) -> bytes:
    """The message retained on ``topic``, as a new subscriber receives it."""
    c = Collector(port, topic)
    c.wait_for(lambda m: bool(m))
    c.client.disconnect()
    return c.messages[0][1]


def publish_raw(port: int, topic: str, payload: bytes, *, retain: bool = True) -> None:
    """Put ``payload`` on ``topic``, retained unless told, as anyone with write access to the broker could."""
    done = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_publish = lambda *a: done.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=retain)
    assert done.wait(TIMEOUT)
    c.disconnect()
    c.loop_stop()


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real mosquitto on a free loopback port."""
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture()
def site(tmp_path: Path) -> Site:
    """A site of two administrators whose root key is written to ``tmp_path/root.key``."""
    s = Site(admins=2)
    write_private_key(tmp_path / "root.key", s.root.private)
    return s


@pytest.fixture()
def admins(tmp_path: Path, broker: Mosquitto, site: Site, run_cli: Run) -> list[Admin]:
    """The site's two administrators, their key list signed by the root and published on ``broker``."""
    out = [Admin(tmp_path, f"admin{i}", broker, a, tmp_path / "root.key.pub") for i, a in enumerate(site.admins)]
    code, _, err = run_cli("admin", "keys", "sign", "--root-key", tmp_path / "root.key", "--site", SITE,
                           "--admin", out[0].key.with_name("admin0.key.pub"),
                           "--admin", out[1].key.with_name("admin1.key.pub"), "--out", tmp_path / "keys.json")
    assert code == 0, err
    code, _text, err = run_cli("admin", "keys", "publish", tmp_path / "keys.json", *out[0].opts[:6],
                               "--root-pub", tmp_path / "root.key.pub")
    assert code == 0, err
    return out
