"""The pin factory choice: mock only when asked for or off a Pi; a Pi without usable GPIO refuses to start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from gpiozero import OutputDevice
from gpiozero.exc import BadPinFactory
from gpiozero.pins.mock import MockFactory

from kiosk.door.pins import GpioUnavailableError, pi_model, pin_factory
from kiosk.errors import KioskError
from tests.pins import assert_pin_history

PI4 = b"Raspberry Pi 4 Model B Rev 1.4\x00"  # as /proc/device-tree/model reads, NUL-terminated


@pytest.fixture()
def pi(tmp_path: Path) -> Path:
    path = tmp_path / "model"
    path.write_bytes(PI4)
    return path


@pytest.fixture()
def not_a_pi(tmp_path: Path) -> Path:
    return tmp_path / "no-device-tree-model"


def _no_gpio() -> Any:
    raise BadPinFactory("Unable to load any default pin factory!")


class RealFactoryStandIn:
    """What gpiozero's default returns on a Pi with lgpio: any non-mock factory."""


def _relay_history(factory: MockFactory) -> None:
    """Drive a relay on the factory and check that the pin follows: the factory is live, not a stub."""
    relay = OutputDevice(17, initial_value=False, pin_factory=factory)
    relay.on()
    relay.off()
    assert_pin_history(factory.pin(17), [False, True, False])
    relay.close()


def test_the_device_tree_model_is_read_with_its_trailing_nul(pi: Path, tmp_path: Path, not_a_pi: Path) -> None:
    assert pi_model(pi) == "Raspberry Pi 4 Model B Rev 1.4"
    other = tmp_path / "other"
    other.write_bytes(b"Pine64 RockPro64 v2.1\x00")
    assert pi_model(other) is None
    assert pi_model(not_a_pi) is None


def test_a_pi_whose_proc_hides_the_device_tree_is_still_known_by_sys(
        pi: Path, not_a_pi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd's ProcSubset=pid hides /proc/device-tree; /sys/firmware/devicetree still names the board, and a
    Pi without GPIO must still refuse to start rather than run a simulated relay."""
    from kiosk.door import pins

    monkeypatch.setattr(pins, "DEVICE_TREE_MODEL", not_a_pi)
    monkeypatch.setattr(pins, "SYSFS_DEVICE_TREE_MODEL", pi)
    assert pi_model() == "Raspberry Pi 4 Model B Rev 1.4"
    with pytest.raises(GpioUnavailableError):
        pin_factory("auto", default=_no_gpio)
    monkeypatch.setattr(pins, "SYSFS_DEVICE_TREE_MODEL", not_a_pi)
    assert pi_model() is None


def test_mock_is_used_when_asked_for_even_on_a_pi_and_says_the_door_is_simulated(
        pi: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kiosk.door.pins"):
        factory = pin_factory("mock", model_path=pi, default=_no_gpio)
    assert isinstance(factory, MockFactory)
    assert [r.getMessage() for r in caplog.records] == [
        "door.pin_factory = mock: the relay is simulated, no door will open"]
    _relay_history(factory)
    factory.reset()


def test_auto_off_a_pi_without_gpio_falls_back_to_mock_with_one_warning(
        not_a_pi: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kiosk.door.pins"):
        factory = pin_factory("auto", model_path=not_a_pi, default=_no_gpio)
    assert isinstance(factory, MockFactory)
    assert len(caplog.records) == 1 and caplog.records[0].levelno == logging.WARNING
    assert "no GPIO" in caplog.text and "not a Raspberry Pi" in caplog.text and "no door will open" in caplog.text
    _relay_history(factory)
    factory.reset()


def test_auto_on_a_pi_without_usable_gpio_refuses_to_start_and_names_the_fix(pi: Path) -> None:
    with pytest.raises(GpioUnavailableError) as caught:
        pin_factory("auto", model_path=pi, default=_no_gpio)
    err = caught.value
    assert isinstance(err, KioskError) and isinstance(err, OSError) and err.exit_code == 20
    text = str(err)
    assert "Raspberry Pi 4 Model B Rev 1.4" in text
    assert "python3-lgpio" in text and "usermod -a -G gpio" in text and 'pin_factory = "mock"' in text
    assert isinstance(err.__cause__, BadPinFactory)


def test_auto_on_a_pi_with_working_gpio_returns_gpiozeros_factory_silently(
        pi: Path, caplog: pytest.LogCaptureFixture) -> None:
    real = RealFactoryStandIn()
    with caplog.at_level(logging.DEBUG, logger="kiosk.door.pins"):
        assert pin_factory("auto", model_path=pi, default=lambda: real) is real
    assert caplog.records == []


def test_auto_on_a_pi_refuses_a_mock_factory_forced_by_the_environment(
        pi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    mock = MockFactory()
    try:
        with pytest.raises(GpioUnavailableError, match="GPIOZERO_PIN_FACTORY='mock'"):
            pin_factory("auto", model_path=pi, default=lambda: mock)
    finally:
        mock.reset()


def test_auto_off_a_pi_accepts_a_mock_factory_from_the_environment_with_a_warning(
        not_a_pi: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    mock = MockFactory()
    with caplog.at_level(logging.WARNING, logger="kiosk.door.pins"):
        assert pin_factory("auto", model_path=not_a_pi, default=lambda: mock) is mock
    assert "simulated" in caplog.text
    mock.reset()


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="'auto' or 'mock'"):
        pin_factory("lgpio")


@pytest.mark.filterwarnings("ignore::Warning")  # gpiozero warns as it tries each real pin library
def test_real_gpiozero_default_on_a_machine_that_looks_like_a_pi_without_lgpio_refuses(
        pi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if Path("/dev/gpiomem").exists() or Path("/dev/gpiochip0").exists():
        pytest.skip("this machine has GPIO")
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    with pytest.raises(GpioUnavailableError, match="python3-lgpio"):
        pin_factory("auto", model_path=pi)


@pytest.mark.filterwarnings("ignore::Warning")
def test_real_gpiozero_default_off_a_pi_is_a_working_mock(
        not_a_pi: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    if Path("/dev/gpiomem").exists() or Path("/dev/gpiochip0").exists():
        pytest.skip("this machine has GPIO")
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    with caplog.at_level(logging.WARNING, logger="kiosk.door.pins"):
        factory = pin_factory("auto", model_path=not_a_pi)
    assert isinstance(factory, MockFactory) and "no GPIO" in caplog.text
    _relay_history(factory)
    factory.reset()
