"""GPIO pins read as gpiozero reads them: bad names refused with the key, one device per pin across sections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from pydantic import ValidationError

from kiosk.config import Settings, load_settings
from kiosk.door.pinnames import board, gpio_name, shared_pins
from kiosk.errors import ConfigError
from kiosk.liveness.prompters import build_prompter
from kiosk.liveness.settings import LivenessSettings

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "kiosk.example.toml"


@pytest.mark.parametrize("spec", [17, "17", "GPIO17", "BCM17", "BOARD11", "J8:11", "WPI0"])
def test_every_spelling_gpiozero_accepts_names_the_same_pin(spec: int | str) -> None:
    assert gpio_name(spec) == "GPIO17"


@pytest.mark.parametrize("spec", ["gpio17", "GPIO 17", 28, "BOARD1", "", True, 17.0, None])
def test_what_is_not_a_gpio_of_the_header_is_refused(spec: object) -> None:
    with pytest.raises(ValueError, match="BCM number"):
        gpio_name(spec)


def test_shared_pins_names_every_setting_on_the_pin() -> None:
    assert shared_pins([("a", 17), ("b", "BOARD11"), ("c", 27), ("d", None), ("e", "GPIO17")]) == [
        "a and b and e are the same pin (GPIO17)"]
    assert shared_pins([("a", 17), ("b", 27), ("c", None), ("d", None)]) == []


@pytest.mark.parametrize(("values", "key"), [
    ({"door": {"relay_pin": "gpio17"}}, "door.relay_pin"),
    ({"door": {"relay_pin": True}}, "door.relay_pin"),
    ({"door": {"contact_pin": 40}}, "door.contact_pin"),
    ({"second_factor": {"keypad_rows": [5, 6, 13, "x"], "keypad_cols": [12, 16, 20]}}, "second_factor.keypad_rows.3"),
    ({"door": {"exit_pin": ""}}, "door.exit_pin"),
    ({"second_factor": {"wiegand_d0": 23, "wiegand_d1": "BOARD1"}}, "second_factor.wiegand_d1"),
    ({"liveness": {"prompter": {"type": "gpio", "left_pin": 25, "right_pin": 2.5}}}, "liveness.prompter.gpio.right_pin"),
])
def test_a_pin_that_is_no_gpio_is_refused_with_its_key(tmp_path: Path, values: dict[str, dict[str, object]],
                                                       key: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**values)  # type: ignore[arg-type]
    assert any(key == ".".join(str(p) for p in e["loc"][:len(key.split("."))]) for e in info.value.errors())


@pytest.mark.parametrize(("values", "says"), [
    ({"door": {"relay_pin": "GPIO17", "exit_pin": "BOARD11"}}, "relay_pin and exit_pin are the same pin (GPIO17)"),
    ({"door": {"contact_pin": 27}, "second_factor": {"mode": "card", "required": "always", "wiegand_d0": "BCM27",
                                                     "wiegand_d1": 24}},
     "door.contact_pin and second_factor.wiegand_d0"),
    ({"liveness": {"prompter": {"type": "gpio", "left_pin": "J8:11", "right_pin": 26}}},
     "door.relay_pin and liveness.prompter.left_pin"),
    ({"second_factor": {"mode": "pin_or_card", "required": "always", "keypad_rows": [5, 6, 13, 19],
                        "keypad_cols": [12, 16, 20], "wiegand_d0": "GPIO12", "wiegand_d1": 24}},
     "keypad_cols[0] and wiegand_d0"),
    ({"liveness": {"prompter": {"type": "gpio", "left_pin": 25, "right_pin": "GPIO26", "buzzer_pin": "BOARD37"}}},
     "right_pin and buzzer_pin"),
    ({"second_factor": {"mode": "card", "required": "always", "wiegand_d0": "GPIO25", "wiegand_d1": 24},
      "liveness": {"prompter": {"type": "gpio", "left_pin": 25, "right_pin": 21}}},
     "second_factor.wiegand_d0 and liveness.prompter.left_pin"),
])
def test_two_devices_on_one_pin_are_refused_however_each_is_spelt(values: dict[str, dict[str, object]],
                                                                 says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)):
        Settings(**values)  # type: ignore[arg-type]


def test_the_pins_of_a_section_that_builds_nothing_do_not_count() -> None:
    # nothing drives them: the prompter is not built with liveness off, the keypad and reader not with the
    # second factor off; a configuration that ran before must still load (and `kiosk door lock` with it)
    Settings(liveness={"mode": "off", "prompter": {"type": "gpio", "left_pin": 17, "right_pin": 26}})  # type: ignore[arg-type]
    Settings(second_factor={"keypad_rows": [5, 6, 13, 19], "keypad_cols": [12, 16, 20], "wiegand_d0": 5,  # type: ignore[arg-type]
                            "wiegand_d1": 17}, liveness={"prompter": {"type": "gpio", "left_pin": 6, "right_pin": 21}})


def test_the_check_reads_pins_with_the_header_of_the_pi_it_runs_on(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from gpiozero.pins import local

    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi Model B Rev 2\x00")
    monkeypatch.setattr(local, "get_pi_revision", lambda: 0x000E)  # a 26-pin Pi 1 B
    pi1 = board(model)
    assert pi1.model == "B"
    assert gpio_name("BOARD11", pi1) == "GPIO17"
    with pytest.raises(ValueError, match="Raspberry Pi B's header"):
        gpio_name(26, pi1)  # on the 40-pin header only
    assert board(tmp_path / "no-device-tree").model == "4B"  # a workstation: the 40-pin table
    monkeypatch.setattr(local, "get_pi_revision", lambda: 0xFFFFFF)  # a revision gpiozero does not know
    model.write_bytes(b"Raspberry Pi 9 Model Z\x00")
    assert board(model.rename(tmp_path / "model2")).model == "4B"


@pytest.mark.parametrize(("text", "says"), [
    ('[second_factor]\nkeypad_rows = [5, 6, 13, "x"]\nkeypad_cols = [12, 16, 20]\n', "second_factor.keypad_rows[3]: "),
    ('[liveness.prompter]\ntype = "gpio"\nleft_pin = 25\nright_pin = "nope"\n', "liveness.prompter.right_pin: "),
    ('[door]\nrelay_pin = 17\nexit_pin = "BOARD11"\n', "door: Value error, the relay, contact and exit button"),
    ('[camera]\ntype = "replay"\npath = "x"\nfps = -1\n', "camera.fps: "),
    ('[door]\nexit_pin = 22\n[liveness.prompter]\ntype = "gpio"\nleft_pin = "BOARD15"\nright_pin = 21\n',
     "configuration: Value error, one device per GPIO: door.exit_pin and liveness.prompter.left_pin"),
])
def test_errors_name_the_key_as_the_file_spells_it(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_settings(path)


def test_an_environment_list_that_is_not_json_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIOSK_SECOND_FACTOR__KEYPAD_ROWS", "5,6,13,19")
    with pytest.raises(ConfigError, match="second_factor"):
        load_settings()


def test_the_example_configuration_with_every_device_uncommented_loads(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    for line in ("left_pin", "right_pin", "buzzer_pin", "contact_pin", "exit_pin", "keypad_rows", "keypad_cols",
                 "wiegand_d0", "wiegand_d1"):
        text, n = re.subn(rf"^# ({line} = )", r"\1", text, flags=re.M)
        assert n == 1, line
    text = text.replace('type = "log"               # log', '# type = "log"').replace('# type = "gpio"', 'type = "gpio"')
    # the second factor on (its pins count only then), with the 4x4 keypad of docs/second_factor.md
    text = re.sub(r'^mode = "off" .*$', 'mode = "pin_or_card"', text, count=1, flags=re.M)
    text = re.sub(r'^required = "schedule" .*$', 'required = "always"', text, count=1, flags=re.M)
    text = text.replace("keypad_cols = [12, 16, 20]", 'keypad_cols = [12, 16, 20, 26]\nkeypad_layout = "123A456B789C*0#D"')
    full = tmp_path / "kiosk.toml"
    full.write_text(text)
    settings = load_settings(full)
    assert settings.liveness.prompter.type == "gpio" and settings.second_factor.mode == "pin_or_card"
    assert settings.second_factor.keypad_cols[-1] == 26 and settings.second_factor.wiegand_d0 == 23
    assert settings.door.exit_pin == 22


def test_a_shared_pin_in_a_file_is_a_config_error_naming_both_keys(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text('[door]\nrelay_pin = 17\nexit_pin = "BOARD11"\n')
    with pytest.raises(ConfigError, match=r"door: .*relay_pin and exit_pin are the same pin \(GPIO17\)"):
        load_settings(path)


@pytest.mark.parametrize(("levels", "led", "buzzer"), [
    # mock pins start low; then each device's resting level, then prompted, then cleared
    ({"buzzer_active_high": False}, [False, True, False], [False, True, False, True]),  # LEDs high, buzzer low
    ({"active_high": False}, [False, True, False, True], [False, True, False, True]),  # the buzzer follows the LEDs
    ({}, [False, True, False], [False, True, False]),
])
def test_the_buzzer_has_its_own_level(factory: MockFactory, levels: dict[str, bool], led: list[bool],
                                      buzzer: list[bool]) -> None:
    settings = LivenessSettings(prompter={"type": "gpio", "left_pin": 25, "right_pin": 26, "buzzer_pin": 18,  # type: ignore[arg-type]
                                          **levels})
    p = build_prompter(settings, pin_factory=factory)
    p.prompt("left")
    p.clear()
    p.close()
    assert [s.state for s in factory.pin(25).states] == led
    assert [s.state for s in factory.pin(18).states] == buzzer


def test_active_low_prompt_devices_are_warned_about(factory: MockFactory, caplog: pytest.LogCaptureFixture) -> None:
    # undriven (boot, start, after a stop) they light or sound unless pulled up
    settings = LivenessSettings(prompter={"type": "gpio", "left_pin": 25, "right_pin": 26, "buzzer_pin": 18,  # type: ignore[arg-type]
                                          "buzzer_active_high": False})
    build_prompter(settings, pin_factory=factory).close()
    assert "liveness prompter buzzer: active low" in caplog.text
    caplog.clear()
    high = LivenessSettings(prompter={"type": "gpio", "left_pin": 25, "right_pin": 26})  # type: ignore[arg-type]
    build_prompter(high, pin_factory=factory).close()
    assert "active low" not in caplog.text


def test_active_low_prompt_devices_are_warned_about_with_liveness_off(caplog: pytest.LogCaptureFixture) -> None:
    from contextlib import ExitStack

    from kiosk.service import build_liveness

    settings = Settings(liveness={"mode": "off", "prompter": {"type": "gpio", "left_pin": 25, "right_pin": 21,  # type: ignore[arg-type]
                                                              "active_high": False}})
    with ExitStack() as stack:
        assert build_liveness(settings, lambda: 0.0, None, None, stack) is None
    assert "liveness prompter LEDs: active low" in caplog.text
