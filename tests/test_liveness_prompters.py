"""Prompters on gpiozero's MockFactory, a recording MQTT publish and the log; the [liveness] section."""

from __future__ import annotations

import json
import logging

import pytest
from gpiozero.pins.mock import MockFactory
from pydantic import ValidationError

from kiosk.errors import ConfigError
from kiosk.liveness.prompters import GpioPrompter, LogPrompter, MqttPrompter, build_prompter
from kiosk.liveness.settings import LivenessSettings
from tests.clock import FakeClock
from tests.pins import assert_pin_history

LEFT, RIGHT, BUZZER = 20, 21, 16


class RecordingPublish:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object]]] = []

    def __call__(self, topic: str, payload: bytes) -> None:
        self.sent.append((topic, json.loads(payload)))


def test_gpio_prompter_lights_the_led_on_the_side_to_turn_to(factory: MockFactory) -> None:
    p = GpioPrompter(LEFT, RIGHT, BUZZER, pin_factory=factory)
    p.prompt("left")
    p.clear()
    p.prompt("right")
    p.clear()
    p.close()
    assert_pin_history(factory.pin(LEFT), [False, True, False])
    assert_pin_history(factory.pin(RIGHT), [False, True, False])
    assert_pin_history(factory.pin(BUZZER), [False, True, False, True, False])


def test_gpio_prompter_switches_sides_without_both_leds_on(factory: MockFactory) -> None:
    p = GpioPrompter(LEFT, RIGHT, pin_factory=factory)
    p.prompt("right")
    p.prompt("left")
    assert (factory.pin(LEFT).state, factory.pin(RIGHT).state) == (True, False)
    assert_pin_history(factory.pin(RIGHT), [False, True, False])
    p.close()


def test_gpio_prompter_active_low_wiring(factory: MockFactory) -> None:
    p = GpioPrompter(LEFT, RIGHT, active_high=False, pin_factory=factory)
    p.prompt("left")
    # a mock pin starts low; gpiozero drives it high (off) at once, then low to light it
    assert_pin_history(factory.pin(LEFT), [False, True, False])
    assert_pin_history(factory.pin(RIGHT), [False, True])
    p.close()


def test_gpio_prompter_rejects_an_unknown_direction(factory: MockFactory) -> None:
    p = GpioPrompter(LEFT, RIGHT, pin_factory=factory)
    with pytest.raises(ValueError, match="direction"):
        p.prompt("up")
    assert_pin_history(factory.pin(LEFT), [False])
    p.close()


def test_mqtt_prompter_publishes_json_on_the_prompt_topic() -> None:
    publish, clock = RecordingPublish(), FakeClock(1700000000.0)
    p = MqttPrompter(publish, "kiosk/site1/door1/prompt", clock=clock)
    p.prompt("left")
    clock.advance(1.5)
    p.clear()
    assert publish.sent == [("kiosk/site1/door1/prompt", {"prompt": "left", "ts": 1700000000.0}),
                            ("kiosk/site1/door1/prompt", {"prompt": None, "ts": 1700000001.5})]


def test_mqtt_prompter_survives_a_failing_publish(caplog: pytest.LogCaptureFixture) -> None:
    def broken(topic: str, payload: bytes) -> None:
        raise OSError("broker gone")

    with caplog.at_level(logging.WARNING, logger="kiosk.liveness.prompters"):
        MqttPrompter(broken, "kiosk/s/d/prompt").prompt("right")
    assert "broker gone" in caplog.text


def test_log_prompter_logs_the_direction(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kiosk.liveness.prompters"):
        p = LogPrompter()
        p.prompt("right")
        p.clear()
    assert "turn your head to your right" in caplog.text
    assert "cleared" in caplog.text


def test_build_prompter_follows_the_prompter_section(factory: MockFactory) -> None:
    assert isinstance(build_prompter(LivenessSettings()), LogPrompter)
    gpio = LivenessSettings(prompter={"type": "gpio", "left_pin": LEFT, "right_pin": RIGHT})
    p = build_prompter(gpio, pin_factory=factory)
    assert isinstance(p, GpioPrompter)
    p.prompt("left")
    assert_pin_history(factory.pin(LEFT), [False, True])
    p.close()
    publish = RecordingPublish()
    m = build_prompter(LivenessSettings(prompter={"type": "mqtt"}), publish=publish, topic="k/s/d/prompt")
    m.prompt("right")
    assert publish.sent[0][0] == "k/s/d/prompt"


def test_mqtt_prompter_without_mqtt_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="mqtt"):
        build_prompter(LivenessSettings(prompter={"type": "mqtt"}))


def test_liveness_defaults_are_challenge_with_the_log_prompter() -> None:
    s = LivenessSettings()
    assert s.mode == "challenge"
    assert s.prompter.type == "log"
    assert s.flat_ratio < s.live_ratio


@pytest.mark.parametrize(("values", "key"), [
    ({"mode": "maybe"}, "mode"),
    ({"min_live_residual": -0.1}, "min_live_residual"),
    ({"evidence_frames": 0}, "evidence_frames"),
    ({"challenge_timeout_s": 0}, "challenge_timeout_s"),
    ({"min_turn": 5}, "min_turn"),
    ({"threshold": 0.1}, "threshold"),
    ({"prompter": {"type": "lamp"}}, "prompter"),
    ({"prompter": {"type": "gpio", "left_pin": 20}}, "right_pin"),
    ({"prompter": {"type": "log", "left_pin": 20}}, "left_pin"),
])
def test_bad_liveness_settings_are_rejected_naming_the_key(values: dict[str, object], key: str) -> None:
    with pytest.raises(ValidationError) as info:
        LivenessSettings(**values)  # type: ignore[arg-type]
    assert key in str(info.value)


def test_ratio_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match=r"flat_ratio .* live_ratio"):
        LivenessSettings(flat_ratio=0.6, live_ratio=0.5)


def test_gpio_prompter_pins_must_differ() -> None:
    with pytest.raises(ValidationError, match="left_pin, right_pin and buzzer_pin"):
        LivenessSettings(prompter={"type": "gpio", "left_pin": 20, "right_pin": 20})
