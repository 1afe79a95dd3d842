"""`kiosk enroll` signs one fused template with an administrator key; `kiosk doctor` reports an edited store."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.kiosk_config import write_replay_config

Run = Callable[..., tuple[int, str, str]]


def _photos(person: str, n: int = 3) -> list[Path]:
    from kiosk.artifacts import dataset_path

    return sorted((dataset_path("5-celebrity") / "train" / person).glob("*.jpg"))[:n]


@pytest.mark.models
def test_local_enroll_stores_one_signed_template_and_doctor_is_happy(
        run_cli: Run, tmp_path: Path, models: Path) -> None:
    config = write_replay_config(tmp_path, device="door1")
    code, out, err = run_cli("enroll", "--id", "ben", "--name", "Ben Affleck", "--config", config,
                             "--signing-key", tmp_path / "admin.key", *_photos("ben_afflek"))
    assert code == 0, err
    used = sum(line.startswith("  ok") for line in out.splitlines())
    assert used >= 2 and f"one template fused from {used} photos" in out
    code, out, _ = run_cli("gallery", "list", "--json", "--config", config)
    people = json.loads(out)
    assert [p["id"] for p in people] == ["ben"]
    code, out, _ = run_cli("doctor", "--json", "--config", config)
    assert code == 0, out
    assert json.loads(out)["store"]["ok"] is True


@pytest.mark.models
def test_local_enroll_refuses_a_key_the_kiosk_does_not_trust(run_cli: Run, tmp_path: Path, models: Path) -> None:
    config = write_replay_config(tmp_path, device="door1")
    assert run_cli("admin", "keygen", "--signing-key", tmp_path / "other.key")[0] == 0
    code, _, err = run_cli("enroll", "--id", "ben", "--name", "Ben", "--config", config,
                           "--signing-key", tmp_path / "other.key", *_photos("ben_afflek"))
    assert code != 0 and "kiosk: error:" in err and "key" in err


@pytest.mark.models
def test_local_enroll_refuses_photos_of_two_different_people(run_cli: Run, tmp_path: Path, models: Path) -> None:
    config = write_replay_config(tmp_path, device="door1")
    code, _, err = run_cli("enroll", "--id", "ben", "--name", "Ben", "--config", config,
                           "--signing-key", tmp_path / "admin.key", *_photos("ben_afflek", 2), *_photos("madonna", 2))
    assert code == 14 and "kiosk: error:" in err
    _, out, _ = run_cli("gallery", "list", "--json", "--config", config)
    assert json.loads(out) == []


@pytest.mark.models
def test_doctor_reports_a_row_edited_on_the_sd_card(run_cli: Run, tmp_path: Path, models: Path) -> None:
    config = write_replay_config(tmp_path, device="door1")
    assert run_cli("enroll", "--id", "ben", "--name", "Ben", "--config", config, "--valid-until", "2000-01-01",
                   "--signing-key", tmp_path / "admin.key", *_photos("ben_afflek"))[0] == 0
    db = sqlite3.connect(tmp_path / "kiosk.db")
    with db:
        db.execute("UPDATE people SET valid_until = ? WHERE id = ?", (4_000_000_000.0, "ben"))
    db.close()
    code, out, _ = run_cli("doctor", "--json", "--config", config)
    report = json.loads(out)
    assert code == 1 and report["store"]["ok"] is False
    assert "ben" in json.dumps(report["store"])
