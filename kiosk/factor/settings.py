"""The ``[second_factor]`` configuration section (the integrator adds it to ``Settings``).

Example (docs/second_factor.md has the wiring)::

    [second_factor]
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

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiosk.door.keypad import LAYOUT_4X3
from kiosk.door.pinnames import GpioPin, refuse_shared
from kiosk.factor.lockout import LockoutConfig
from kiosk.factor.pin import KdfParams
from kiosk.factor.policy import FactorMode, ScheduleRule, SecondFactorPolicy, parse_days

_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


def _credential(name: str, fallback: str) -> Path:
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    return Path(creds) / name if creds else Path(fallback)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleRuleSettings(_Section):
    days: list[str] = Field(default_factory=lambda: ["mon-sun"], min_length=1,
                            description="days the span starts on: 'mon', 'mon-fri', 'fri-mon'")
    start: str = Field(pattern=_HHMM, description="local time HH:MM the second factor becomes required")
    end: str = Field(pattern=_HHMM, description="local time HH:MM it stops (<= start: the next day; = start: all day)")

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        parse_days(value)
        return value

    def rule(self) -> ScheduleRule:
        return ScheduleRule.parse(self.days, self.start, self.end)


class KdfSettings(_Section):
    """Cost of new PIN verifiers (the admin tool's; kiosks read the parameters from each verifier)."""

    algorithm: Literal["argon2id", "scrypt"] = Field(
        "argon2id", description="argon2id (cryptography >= 44) or scrypt where Argon2 is unavailable")
    memory_kib: int = Field(65536, ge=8192, le=1048576, description="Argon2id memory per evaluation, KiB")
    iterations: int = Field(3, ge=1, le=64, description="Argon2id passes over the memory")
    lanes: int = Field(1, ge=1, le=16, description="Argon2id lanes")
    log2_n: int = Field(16, ge=14, le=22, description="scrypt: log2 of N (memory = 128 * r * N bytes)")
    r: int = Field(8, ge=1, le=32, description="scrypt block size")
    p: int = Field(1, ge=1, le=16, description="scrypt parallelism")

    def params(self) -> KdfParams:
        return KdfParams(self.algorithm, self.memory_kib, self.iterations, self.lanes, self.log2_n, self.r, self.p)


class SecondFactorSettings(_Section):
    mode: Literal["off", "pin", "card", "pin_or_card"] = Field(
        "off", description="what may complete the face when a second factor is required; a card never grants alone")
    required: Literal["always", "schedule"] = Field(
        "schedule", description="always, or only when a schedule rule covers the local time")
    schedule: list[ScheduleRuleSettings] = Field(
        default_factory=list, description="spans of local time when the second factor is required")
    timezone: str | None = Field(None, description="IANA zone of the schedule (e.g. Europe/Paris); default: the system's")
    keypad_entry: Literal["code_pin", "pin"] = Field(
        "code_pin", description="code_pin: 'user code # PIN #' claims the person (face then 1:1); "
                                "pin: 'PIN #' confirms the face's best candidate")
    entry_timeout_s: float = Field(10.0, ge=2, le=120, description="a half-typed entry, or a card awaiting its PIN, "
                                                                   "is forgotten after this many seconds")
    pin_lockout_attempts: int = Field(3, ge=1, le=20, description="wrong PINs for one identity that lock it out")
    pin_lockout_window_s: float = Field(3600.0, gt=0, le=86400, description="window for counting wrong PINs")
    pin_lockout_s: float = Field(3600.0, ge=0, le=86400, description="how long an identity stays locked out")
    keypad_rows: list[GpioPin] = Field(default_factory=list, max_length=8,
                                       description="GPIO of each keypad row, top first (outputs)")
    keypad_cols: list[GpioPin] = Field(default_factory=list, max_length=8,
                                       description="GPIO of each keypad column, left first (inputs, pulled up)")
    keypad_layout: str = Field(LAYOUT_4X3, min_length=4, max_length=64,
                               description="the keys row by row (4x3: 123456789*0#, 4x4: 123A456B789C*0#D)")
    keypad_debounce_s: float = Field(0.03, ge=0, le=0.5, description="a key must read the same this long")
    keypad_scan_interval_s: float = Field(0.01, ge=0.002, le=0.1, description="time between keypad scans")
    wiegand_d0: GpioPin | None = Field(None, description="GPIO of the reader's D0 (DATA0) line, via a level shifter")
    wiegand_d1: GpioPin | None = Field(None, description="GPIO of the reader's D1 (DATA1) line, via a level shifter")
    wiegand_gap_s: float = Field(0.025, ge=0.005, le=0.5, description="silence that ends a Wiegand frame")
    wiegand_min_interval_s: float = Field(0.0002, ge=0, le=0.002,
                                          description="pulses closer than this reject the frame (bounce, noise)")
    pin_secret_file: Path = Field(
        default_factory=lambda: _credential("kiosk-pin-secret", "/etc/kiosk/pin.secret"),
        description="the site's PIN secret, >= 32 random bytes (default: the systemd credential kiosk-pin-secret)")
    kdf: KdfSettings = Field(default_factory=KdfSettings, description="cost of new PIN verifiers (admin tool)")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Europe" is a folder: IsADirectoryError
                raise ValueError(f"unknown time zone {value!r}: expected an IANA name such as Europe/Paris") from exc
        return value

    @model_validator(mode="after")
    def _devices(self) -> SecondFactorSettings:
        if bool(self.keypad_rows) != bool(self.keypad_cols):
            raise ValueError("keypad_rows and keypad_cols go together: set both or neither")
        if self.keypad_rows and len(self.keypad_layout) != len(self.keypad_rows) * len(self.keypad_cols):
            raise ValueError(f"keypad_layout has {len(self.keypad_layout)} keys, the {len(self.keypad_rows)}x"
                             f"{len(self.keypad_cols)} keypad has {len(self.keypad_rows) * len(self.keypad_cols)}")
        if self.mode != "off":  # off: nothing is built
            refuse_shared(self.pins(), "the keypad's and the reader's pins must all differ")
        if (self.wiegand_d0 is None) != (self.wiegand_d1 is None):
            raise ValueError("wiegand_d0 and wiegand_d1 go together: set both or neither")
        wiegand = self.wiegand_d0 is not None
        if self.mode in ("pin", "pin_or_card") and not (self.keypad_rows or wiegand):
            raise ValueError(f"mode {self.mode!r} needs a keypad (keypad_rows/keypad_cols) or a Wiegand reader with "
                             "a keypad (wiegand_d0/wiegand_d1)")
        if self.mode in ("card", "pin_or_card") and not wiegand:
            raise ValueError(f"mode {self.mode!r} needs a Wiegand card reader (wiegand_d0/wiegand_d1)")
        if self.required == "schedule" and self.mode != "off" and not self.schedule:
            raise ValueError("required = 'schedule' with no schedule rules never requires the second factor; "
                             "add rules or set required = 'always'")
        return self

    def pins(self) -> list[tuple[str, int | str | None]]:
        """Each pin of the keypad and the reader with its setting's name."""
        return [*((f"keypad_rows[{i}]", p) for i, p in enumerate(self.keypad_rows)),
                *((f"keypad_cols[{i}]", p) for i, p in enumerate(self.keypad_cols)),
                ("wiegand_d0", self.wiegand_d0), ("wiegand_d1", self.wiegand_d1)]

    def policy(self) -> SecondFactorPolicy:
        return SecondFactorPolicy(FactorMode(self.mode), self.required == "always",
                                  tuple(r.rule() for r in self.schedule))

    def lockout(self) -> LockoutConfig:
        return LockoutConfig(self.pin_lockout_attempts, self.pin_lockout_window_s, self.pin_lockout_s)

    def zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None
