"""The unit file, the installer, and the service's life cycle under the notify protocol."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.config import load_settings
from kiosk.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "kiosk.service"
needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze not installed")


@needs_systemd_analyze
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = tmp_path / "kiosk.service"
    kiosk = Path(sys.executable).with_name("kiosk")
    unit.write_text(UNIT.read_text().replace("/opt/kiosk/venv/bin/kiosk", str(kiosk)))
    assert "ExecStopPost=" in unit.read_text()
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "kiosk.service" not in proc.stderr, proc.stderr


@needs_systemd_analyze
def test_unit_exposure_is_three_or_lower() -> None:
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(UNIT)],
                          capture_output=True, text=True, check=False)
    m = re.search(r"Overall exposure level for kiosk\.service: ([0-9.]+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    assert float(m.group(1)) <= 3.0


def test_unit_gives_lgpio_a_writable_directory_for_its_notification_fifo() -> None:
    # `import lgpio` creates .lgd-nfy<N> in $LG_WD or the working directory and opens it from there: with "/"
    # read-only (ProtectSystem=strict) the import fails, and gpiozero has no pin library on a Pi 5
    lines = [line.strip() for line in UNIT.read_text().splitlines()]
    assert "WorkingDirectory=/var/lib/kiosk" in lines and "Environment=LG_WD=/var/lib/kiosk" in lines
    assert "StateDirectory=kiosk" in lines  # systemd creates it, writable by the service, before ExecStart


def test_unit_leaves_proc_readable_for_gpio_and_the_pi_check() -> None:
    # ProcSubset=pid hides /proc/cpuinfo and /proc/device-tree: gpiozero's lgpio factory reads the board's
    # revision there (no GPIO library would start), and kiosk.door.pins would no longer know it runs on a Pi
    assert "ProcSubset=pid" not in [line.strip() for line in UNIT.read_text().splitlines()]


def test_unit_is_a_notify_service_with_watchdog_and_credentials() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=always", "ProtectSystem=strict", "StateDirectory=kiosk",
                 "ConfigurationDirectory=kiosk", "NoNewPrivileges=true", "PrivateTmp=true", "CapabilityBoundingSet=\n",
                 "LoadCredential=kiosk-store-key:", "DevicePolicy=closed", "SupplementaryGroups=gpio video"):
        assert line in text, line


def test_example_config_is_valid_and_strict(tmp_path: Path) -> None:
    settings = load_settings(ROOT / "docs" / "kiosk.example.toml")
    assert settings.device == "front-door" and settings.camera.type == "picamera2"
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "docs" / "kiosk.example.toml").read_text() + "\n[door2]\nx = 1\n")
    from kiosk.errors import ConfigError

    with pytest.raises(ConfigError, match=r"bad\.toml: door2"):
        load_settings(bad)


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_installer_stages_every_file_and_is_idempotent(tmp_path: Path) -> None:
    cmd = ["bash", str(ROOT / "systemd" / "install.sh"), "--root", str(tmp_path), "--skip-venv", "--no-systemctl"]
    subprocess.run(cmd, check=True, capture_output=True)
    first = _tree(tmp_path)
    for f in ("etc/kiosk/kiosk.toml", "etc/kiosk/credentials/store.key", "etc/systemd/system/kiosk.service",
              "var/lib/kiosk/models/manifest.toml"):
        assert f in first, f
    key = tmp_path / "etc/kiosk/credentials/store.key"
    assert key.stat().st_size == 32 and key.stat().st_mode & 0o077 == 0
    subprocess.run(cmd, check=True, capture_output=True)
    assert _tree(tmp_path) == first  # the key and config were kept, nothing else changed


class NotifySocket:
    """The systemd side of sd_notify: a datagram socket the service reports to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                msg = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.messages.append(msg)
            if needle in msg:
                return msg
        raise AssertionError(f"no {needle!r} within {timeout} s; got {self.messages}")


@pytest.fixture()
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.sock.close()


def _unlocked_service(tmp_path: Path, notify: NotifySocket, pipeline: Any, models: Path) -> subprocess.Popen[str]:
    """`kiosk run` on a replayed enrolled face, started and waited on until the door is unlocked."""
    from kiosk.artifacts import dataset_path
    from kiosk.demo.run import enroll
    from tests.kiosk_config import enroll_signed, write_replay_config

    config = write_replay_config(tmp_path, device="sigterm-test", unlock_s=60)
    celeb = dataset_path("5-celebrity")
    enroll_signed(config, "ben", "Ben", enroll(pipeline[0], celeb, "ben_afflek"), pipeline[1].fingerprint)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "KIOSK_MODELS_DIR": str(models),
           "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(config)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        notify.wait_for("READY=1", timeout=60)
        notify.wait_for("STATUS=door unlocked", timeout=120)
    except BaseException:
        proc.kill()
        raise
    return proc


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


@pytest.mark.models
def test_service_reports_ready_pets_the_watchdog_and_on_sigterm_locks_and_exits_cleanly(
        tmp_path: Path, notify: NotifySocket, pipeline: Any, models: Path) -> None:
    # Ceilings only: how fast the service stops is measured by the benchmarks, not asserted
    # here, so a loaded or emulated machine cannot fail this test.
    proc = _unlocked_service(tmp_path, notify, pipeline, models)
    try:
        notify.wait_for("WATCHDOG=1", timeout=60)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    _, err = proc.communicate()
    assert code == 0, err
    notify.wait_for("STOPPING=1", timeout=60)
    events = _audit(tmp_path)
    kinds = [e["type"] for e in events]
    assert kinds.index("door_unlocked") < kinds.index("door_locked")
    locked = [e for e in events if e["type"] == "door_locked"]
    assert locked[-1]["reason"] == "shutdown"
    assert kinds[-1] == "stopped"


@pytest.mark.models
def test_the_watchdog_signal_locks_the_door_before_the_process_dies(
        tmp_path: Path, notify: NotifySocket, pipeline: Any, models: Path) -> None:
    proc = _unlocked_service(tmp_path, notify, pipeline, models)
    try:
        proc.send_signal(signal.SIGABRT)  # what systemd sends when WatchdogSec runs out
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    proc.communicate()
    assert code == -signal.SIGABRT
    locked = [e for e in _audit(tmp_path) if e["type"] == "door_locked"]
    assert locked and locked[-1]["reason"] == "watchdog"


def test_door_lock_still_locks_when_only_the_rest_of_the_configuration_is_broken(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, factory: Any, run_cli: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    """An edit with a mistake, then a restart: ExecStopPost's `kiosk door lock` must still drive the relay."""
    from kiosk import service

    monkeypatch.setattr(service, "pin_factory", lambda kind: factory)
    config = tmp_path / "kiosk.toml"
    config.write_text('[door]\nrelay_pin = "GPIO22"\nactive_high = false\n[liveness]\nmode = "maybe"\n')
    factory.pin(22).drive_low()  # active low: left unlocked by a process that died
    code, _, _ = run_cli("door", "lock", "--config", config)
    assert code == 0 and factory.pin(22).state is True
    assert "liveness.mode" in caplog.text and "[door] section alone" in caplog.text


@pytest.mark.parametrize(("text", "says"), [
    ('[door]\nrelay_pin = "gpio17"\n', "door.relay_pin"),
    ('[dor]\nrelay_pin = 22\nactive_high = false\n', "door: Field required"),  # a mistyped header: no guess
    ('relay_pin = 22\n', "door: Field required"),
    ('[door]\nrelay_pin = 22\n[mqtt]\nhost = "broker\n', "not valid TOML"),
    ('[door]\nrelay_pin = 22\nexit_pin = "BOARD15"\n', "need a pin each"),
])
def test_door_lock_drives_nothing_when_the_file_does_not_say_where_the_relay_is(
        tmp_path: Path, factory: Any, run_cli: Any, monkeypatch: pytest.MonkeyPatch, text: str, says: str) -> None:
    from kiosk import service

    monkeypatch.setattr(service, "pin_factory", lambda kind: factory)
    config = tmp_path / "kiosk.toml"
    config.write_text(text)
    code, _, err = run_cli("door", "lock", "--config", config)
    assert code == 2 and says in err
    for pin in (17, 22):
        assert len(factory.pin(pin).states) == 1  # never driven


def test_a_time_zone_that_names_a_folder_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text('[second_factor]\ntimezone = "Europe"\n')
    with pytest.raises(ConfigError, match=r"second_factor\.timezone"):
        load_settings(config)


def test_door_lock_command_drives_the_relay_to_its_locked_level(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpiozero.pins.mock import MockFactory

    from kiosk import service

    factory = MockFactory()
    monkeypatch.setattr(service, "pin_factory", lambda kind: factory)
    factory.pin(17).drive_high()  # left energised (unlocked) by a process that died
    service.lock_relay(load_settings(ROOT / "docs" / "kiosk.example.toml").door)
    assert factory.pin(17).state is False
    factory.reset()
