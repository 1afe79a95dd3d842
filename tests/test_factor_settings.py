"""The [second_factor] section: strict, bounded, and consistent with the devices it names."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from kiosk.factor.pin import KdfParams
from kiosk.factor.policy import FactorMode
from kiosk.factor.settings import KdfSettings, ScheduleRuleSettings, SecondFactorSettings

EXAMPLE = """
mode = "pin_or_card"
required = "schedule"
timezone = "Europe/Paris"
schedule = [{ days = ["mon-fri"], start = "20:00", end = "07:00" },
            { days = ["sat-sun"], start = "00:00", end = "00:00" }]
keypad_rows = [5, 6, 13, 19]
keypad_cols = [12, 16, 20]
wiegand_d0 = 23
wiegand_d1 = 24
"""


def test_the_documented_example_parses_into_a_policy() -> None:
    s = SecondFactorSettings(**tomllib.loads(EXAMPLE))
    policy = s.policy()
    assert policy.mode is FactorMode.PIN_OR_CARD and not policy.always
    assert [sorted(r.days) for r in policy.rules] == [[0, 1, 2, 3, 4], [5, 6]]
    assert s.zone() is not None and str(s.zone()) == "Europe/Paris"
    assert s.lockout().attempts == 3


def test_the_documentation_carries_the_same_example() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "second_factor.md").read_text()
    assert EXAMPLE.strip() in doc


def test_defaults_are_off_and_need_no_device() -> None:
    s = SecondFactorSettings()
    assert s.mode == "off"
    assert s.pin_secret_file.name in ("pin.secret", "kiosk-pin-secret")
    assert s.kdf.params() == KdfParams()


def test_the_secret_defaults_to_the_systemd_credential(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert SecondFactorSettings().pin_secret_file == tmp_path / "kiosk-pin-secret"


@pytest.mark.parametrize(("fields", "message"), [
    ({"mode": "pin", "required": "always"}, "needs a keypad"),
    ({"mode": "card", "required": "always", "keypad_rows": [5, 6, 13, 19], "keypad_cols": [12, 16, 20]},
     "needs a Wiegand card reader"),
    ({"keypad_rows": [5, 6, 13, 19]}, "keypad_rows and keypad_cols go together"),
    ({"wiegand_d0": 23}, "wiegand_d0 and wiegand_d1 go together"),
    ({"keypad_rows": [5, 6], "keypad_cols": [12, 16, 20]}, "keypad_layout has 12 keys"),
    ({"mode": "card", "wiegand_d0": 23, "wiegand_d1": 24}, "no schedule rules never requires"),
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"schedule": [{"days": ["mon"], "start": "25:00", "end": "07:00"}]}, "String should match pattern"),
    ({"schedule": [{"days": ["someday"], "start": "20:00", "end": "07:00"}]}, "expected days like"),
    ({"pin_lockout_attempts": 0}, "greater than or equal to 1"),
    ({"kdf": {"memory_kib": 1024}}, "greater than or equal to 8192"),
    ({"colour": "red"}, "Extra inputs are not permitted"),
])
def test_inconsistent_or_out_of_range_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SecondFactorSettings(**fields)  # type: ignore[arg-type]


def test_every_field_is_described() -> None:
    for model in (SecondFactorSettings, ScheduleRuleSettings, KdfSettings):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
