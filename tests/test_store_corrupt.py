"""A store file SQLite cannot read (SD-card corruption, a wrong file) is refused with one clear line and exit
code 13, from the library, `kiosk doctor`, `kiosk gallery list` and `kiosk run`, and is never changed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.store import Store, StoreError, generate_key
from tests.site import SITE, Kiosk, Site

ROOT = Path(__file__).resolve().parents[1]
Run = Callable[..., tuple[int, str, str]]


def not_sqlite(path: Path) -> bytes:
    data = os.urandom(4096)
    path.write_bytes(data)
    return data


def damaged_people_table(path: Path) -> bytes:
    """A real store with people in it, whose ``people`` table's root page is then overwritten with noise."""
    site = Site()
    k = Kiosk(site, path, os.urandom(32))
    k.trust.on_key_list(site.key_list(k.now_ms() - 100_000))
    for i, pid in enumerate(("ann", "bob")):
        k.receive(site.enrollment(pid, k.now_ms() - 10, seed=i), pid)
    assert k.admitted() == {"ann", "bob"}
    k.store.close()  # the last connection checkpoints the WAL into the file
    db = sqlite3.connect(path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'people'").fetchone()[0]
    db.close()
    with path.open("r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(os.urandom(page_size))
    return path.read_bytes()


def assert_untouched(path: Path, before: bytes) -> None:
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


def test_a_file_that_is_not_sqlite_is_refused_with_a_store_error_and_left_as_it_is(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    before = not_sqlite(db)
    with pytest.raises(StoreError) as err:
        Store(db, os.urandom(32), "a" * 64)
    assert err.value.exit_code == 13 and isinstance(err.value.__cause__, sqlite3.DatabaseError)
    message = str(err.value)
    assert str(db) in message and "not a readable SQLite database" in message and "move it aside" in message
    assert db.read_bytes() == before
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()


def test_a_damaged_table_is_refused_at_the_first_read_and_nothing_half_loaded_is_used(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    before = damaged_people_table(db)
    store = Store(db, os.urandom(32), "a" * 64)  # the file's header and schema still read
    for read in (store.gallery, store.people, store.store_health):
        with pytest.raises(StoreError, match="not a readable SQLite database"):
            read()
    store.close()
    assert_untouched(db, before)


def test_an_sqlite_database_that_is_not_a_kiosk_store_is_refused_and_not_changed(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    other = sqlite3.connect(db)
    other.execute("CREATE TABLE invoices (n INTEGER)")
    other.commit()
    other.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match=r"not a kiosk store .*invoices"):
        Store(db, os.urandom(32), "a" * 64)
    assert db.read_bytes() == before
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_an_empty_file_is_a_new_store(tmp_path: Path) -> None:
    db = tmp_path / "kiosk.db"
    db.write_bytes(b"")
    store = Store(db, os.urandom(32), "a" * 64)
    assert store.store_health()["ok"] and store.people() == []
    store.close()


def write_config(tmp_path: Path) -> Path:
    generate_key(tmp_path / "store.key")
    config = tmp_path / "kiosk.toml"
    config.write_text(f"""
device = "door1"
site = "{SITE}"
[door]
pin_factory = "mock"
[store]
path = "{tmp_path / 'kiosk.db'}"
key_file = "{tmp_path / 'store.key'}"
[mqtt]
enabled = false
admin_keys = []
[events]
audit_log = "{tmp_path / 'audit.jsonl'}"
""")
    return config


@pytest.mark.models
@pytest.mark.parametrize("command", [["doctor"], ["doctor", "--json"], ["gallery", "list"]])
@pytest.mark.parametrize("damage", [not_sqlite, damaged_people_table])
def test_doctor_and_gallery_list_say_one_line_and_exit_13(
        tmp_path: Path, run_cli: Run, models: Path, command: list[str], damage: Callable[[Path], bytes]) -> None:
    config = write_config(tmp_path)
    before = damage(tmp_path / "kiosk.db")
    code, out, err = run_cli(*command, "--config", config)
    assert code == 13 and out == ""
    assert err.startswith(f"kiosk: error: the store {tmp_path / 'kiosk.db'} is not a readable SQLite database")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert_untouched(tmp_path / "kiosk.db", before)


@pytest.mark.models
def test_the_service_exits_13_with_one_line_and_no_traceback(tmp_path: Path, models: Path) -> None:
    config = write_config(tmp_path)
    before = not_sqlite(tmp_path / "kiosk.db")
    env = {**os.environ, "KIOSK_MODELS_DIR": str(models)}
    proc = subprocess.run([sys.executable, "-m", "kiosk", "run", "--config", str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 13, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith(f"kiosk: error: the store {tmp_path / 'kiosk.db'} is not a "
                                                   "readable SQLite database")
    assert_untouched(tmp_path / "kiosk.db", before)
