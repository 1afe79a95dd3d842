"""The administrator's commands and the running service, together against a real mosquitto."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.config import load_settings
from kiosk.mqtt.homeassistant import discovery, state_updates
from kiosk.mqtt.topics import Topics
from kiosk.service import run_service
from tests.broker import Mosquitto
from tests.kiosk_config import write_replay_config
from tests.mqtt_kiosk import TIMEOUT, Collector

pytestmark = pytest.mark.models
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def _photos(celeb: Path, person: str, n: int = 6) -> list[Path]:
    return sorted((celeb / "train" / person).glob("*.jpg"))[:n]


def test_admin_enrolls_a_running_kiosk_opens_for_that_person_and_status_shows_it(
        run_cli: Run, broker: Mosquitto, tmp_path: Path, models: Path, pipeline: Any) -> None:
    from kiosk.artifacts import dataset_path

    celeb = dataset_path("5-celebrity")
    key = tmp_path / "admin.key"
    assert run_cli("admin", "keygen", "--signing-key", key)[0] == 0
    common = ["--port", broker.port, "--host", "127.0.0.1", "--site", "hq", "--signing-key", key,
              "--state", tmp_path / "admin.db"]

    config = write_replay_config(tmp_path, device="door1", extra=f"""
[mqtt]
enabled = true
host = "127.0.0.1"
port = {broker.port}
admin_keys = ["{key}.pub"]
outbox_path = "{tmp_path / 'outbox.db'}"
stats_interval_s = 1
homeassistant = true
""")
    settings = load_settings(config)
    events = Collector(broker.port, "kiosk/hq/door1/#")
    ha = Collector(broker.port, "homeassistant/#")
    stop = threading.Event()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            run_service(settings, stop=stop)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        events.wait_for(lambda m: ("kiosk/hq/door1/availability", b"online") in m)
        code, out, err = run_cli("admin", "enroll", "--id", "ben", "--name", "Ben Affleck",
                                 *_photos(celeb, "ben_afflek"), *common)
        assert code == 0, err
        events.wait_for(lambda m: any(b'"access_granted"' in p for _, p in m))
        events.wait_for(lambda m: any(t.endswith("/stats") for t, _ in m))
        events.wait_for(lambda m: any(t.endswith("/door/lock") and p == b"UNLOCKED" for t, p in m))
        ha.wait_for(lambda m: any("/lock/" in t for t, _ in m))

        code, out, _ = run_cli("admin", "status", "--json", *common)
        assert code == 0
        assert json.loads(out)["door1"]["current"] == ["ben"]

        assert run_cli("admin", "delete", "--id", "ben", *common)[0] == 0
        events.wait_for(lambda m: any(t.endswith("/acks/ben") and b'"deleted"' in p for t, p in m))
        code, out, _ = run_cli("admin", "list", *common)
        assert "0 people enrolled, 1 deleted" in out
    finally:
        stop.set()
        thread.join(TIMEOUT)
    assert not errors and not thread.is_alive()
    events.wait_for(lambda m: m[-1] == ("kiosk/hq/door1/availability", b"offline"))
    events.close()
    ha.close()


def test_admin_reports_an_unreachable_broker_in_one_line(run_cli: Run, tmp_path: Path) -> None:
    from tests.broker import free_port

    key = tmp_path / "admin.key"
    run_cli("admin", "keygen", "--signing-key", key)
    code, _, err = run_cli("admin", "delete", "--id", "x", "--port", free_port(), "--signing-key", key,
                           "--state", tmp_path / "a.db")
    assert code == 16 and "cannot reach the MQTT broker" in err


def test_home_assistant_discovery_is_state_only() -> None:
    t = Topics("kiosk", "hq", "door1")
    d = discovery(t, contact=True)
    lock = next(v for k, v in d.items() if "/lock/" in k)
    assert "command_topic" not in lock and lock["availability_topic"] == t.availability
    assert any("/binary_sensor/" in k for k in d)
    assert state_updates(t, {"type": "door_unlocked"}) == [("kiosk/hq/door1/door/lock", "UNLOCKED")]
    assert state_updates(t, {"type": "door_opened"}) == [("kiosk/hq/door1/door/contact", "ON")]
    assert state_updates(t, {"type": "access_granted", "person": "ben"})[0][1]["granted"] is True  # type: ignore[index]
    assert state_updates(t, {"type": "camera_lost"}) == []
