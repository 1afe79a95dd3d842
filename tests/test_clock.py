"""Is the wall clock synchronised? Every doubt counts as "no"."""

from __future__ import annotations

import subprocess
from typing import Any

from kiosk.clock import TrustedClock, adjtimex_synchronised, probe_for, timedatectl_synchronised
from tests.clock import FakeClock


def _run(stdout: str, code: int = 0) -> Any:
    def run(argv: list[str], **_kw: Any) -> subprocess.CompletedProcess[str]:
        assert argv[:2] == ["timedatectl", "show"]
        return subprocess.CompletedProcess(argv, code, stdout, "")

    return run


def _missing(argv: list[str], **_kw: Any) -> subprocess.CompletedProcess[str]:
    raise FileNotFoundError(argv[0])


def test_timedatectl_yes_means_synchronised_and_anything_else_does_not() -> None:
    assert timedatectl_synchronised(_run("yes\n"))
    assert not timedatectl_synchronised(_run("no\n"))
    assert not timedatectl_synchronised(_run("", code=1))
    assert not timedatectl_synchronised(_missing)


class _Libc:
    def __init__(self, state: int | None) -> None:
        self.state = state

    def adjtimex(self, _buf: object) -> int:
        if self.state is None:
            raise OSError("no adjtimex")
        return self.state


def test_adjtimex_time_error_or_failure_means_not_synchronised() -> None:
    assert adjtimex_synchronised(_Libc(0))  # type: ignore[arg-type]  # TIME_OK
    assert not adjtimex_synchronised(_Libc(5))  # type: ignore[arg-type]  # TIME_ERROR: STA_UNSYNC set
    assert not adjtimex_synchronised(_Libc(-1))  # type: ignore[arg-type]
    assert not adjtimex_synchronised(_Libc(None))  # type: ignore[arg-type]


def test_the_trusted_clock_hands_out_time_only_while_synchronised() -> None:
    wall, mono = FakeClock(1_800_000_000.0), FakeClock(0.0)
    synced = [False]
    clock = TrustedClock(lambda: synced[0], wall=wall, monotonic=mono, recheck_s=30)
    assert clock.now() is None and clock.now_ms() is None
    synced[0] = True
    assert clock.now() is None  # the answer is reused for recheck_s
    mono.advance(30)
    assert clock.now() == 1_800_000_000.0 and clock.now_ms() == 1_800_000_000_000


def test_a_probe_that_raises_fails_closed() -> None:
    def broken() -> bool:
        raise RuntimeError("dbus down")

    assert TrustedClock(broken).now() is None


def test_assume_synchronised_is_an_explicit_choice() -> None:
    assert probe_for("assume_synchronised")() is True
    assert probe_for("timedatectl") is timedatectl_synchronised
