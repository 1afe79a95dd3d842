"""An erasure a reader blocked is retried by the running service until the WAL no longer holds the record,
reported when it is done, and visible to `kiosk doctor` from another process and across a restart."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from kiosk.door import Ticker
from kiosk.records import Tombstone
from kiosk.sdnotify import Notifier
from kiosk.store import ERASURE_RETRY_S, Store
from tests.site import FP, Kiosk, Site


@pytest.fixture()
def site() -> Site:
    return Site()


@pytest.fixture()
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture()
def kiosk(tmp_path: Path, site: Site, key: bytes) -> Kiosk:
    k = Kiosk(site, tmp_path / "kiosk.db", key)
    k.trust.on_key_list(site.key_list(k.now_ms() - 100_000))
    return k


class Reader:
    """Another process's open read transaction (`kiosk gallery list` at that moment): it blocks the checkpoint."""

    def __init__(self, db: Path) -> None:
        self.db = sqlite3.connect(db, isolation_level=None)
        self.db.execute("BEGIN")
        self.db.execute("SELECT count(*) FROM people").fetchone()

    def close(self) -> None:
        self.db.execute("COMMIT")
        self.db.close()


def sealed(kiosk: Kiosk, pid: str) -> bytes:
    return bytes(kiosk.store._db.execute("SELECT signed_ct FROM people WHERE id = ?", (pid,)).fetchone()[0])


def wal(kiosk: Kiosk) -> bytes:
    path = Path(f"{kiosk.store.path}-wal")
    return path.read_bytes() if path.exists() else b""


def blocked_deletion(kiosk: Kiosk, site: Site, pid: str = "ann") -> tuple[Reader, bytes]:
    """``pid`` enrolled, then deleted while a reader holds the WAL: the deletion reports erase_incomplete."""
    kiosk.receive(site.enrollment(pid, kiosk.now_ms() - 10), pid)
    ct = sealed(kiosk, pid)
    reader = Reader(kiosk.store.path)
    result = kiosk.receive(site.tombstone(pid, kiosk.now_ms()), pid)
    assert result.applied and not result.erased  # type: ignore[attr-defined]
    assert kiosk.events[-1][0] == "erase_incomplete" and ct in wal(kiosk)
    return reader, ct


def kinds(kiosk: Kiosk) -> list[str]:
    return [k for k, _ in kiosk.events]


def test_the_service_tick_finishes_a_blocked_erasure_and_reports_it_once(kiosk: Kiosk, site: Site) -> None:
    reader, ct = blocked_deletion(kiosk, site)
    sleeps = len(kiosk.sleeps)
    kiosk.wall.advance(ERASURE_RETRY_S)
    assert kiosk.store.tick() is None  # still blocked: no event, no waiting, still pending
    assert kinds(kiosk)[-1] == "erase_incomplete" and len(kiosk.sleeps) == sleeps
    assert kiosk.store.store_health()["pending_erasure"] == ["ann"]
    reader.close()
    kiosk.wall.advance(ERASURE_RETRY_S)
    kiosk.store.tick()
    assert kiosk.events[-1] == ("erase_completed", {"people": ["ann"], "after_s": 2 * ERASURE_RETRY_S})
    assert ct not in wal(kiosk)
    health = kiosk.store.store_health()
    assert health["pending_erasure"] == [] and health["ok"]
    kiosk.store.tick()
    assert kinds(kiosk).count("erase_completed") == 1


def test_the_next_write_finishes_a_blocked_erasure_before_it_writes(kiosk: Kiosk, site: Site) -> None:
    reader, ct = blocked_deletion(kiosk, site)
    reader.close()
    assert kiosk.receive(site.enrollment("bob", kiosk.now_ms(), seed=2), "bob").applied  # type: ignore[attr-defined]
    assert kinds(kiosk)[-1] == "erase_completed" and ct not in wal(kiosk)
    assert list(kiosk.store._pending_erasure) == []


def test_doctor_in_another_process_sees_the_pending_erasure_and_its_checkpoint_finishes_it(
        kiosk: Kiosk, site: Site, key: bytes) -> None:
    reader, ct = blocked_deletion(kiosk, site)
    doctor = Store(kiosk.store.path, key, FP)  # `kiosk doctor`: its own connection, its own process
    doctor.use_verifier(kiosk.trust)
    health = doctor.store_health()
    assert health["pending_erasure"] == ["ann"] and not health["ok"]
    reader.close()
    health = doctor.store_health()  # the checkpoint is the database's: doctor's finishes the service's erasure
    assert health["pending_erasure"] == [] and health["ok"]
    doctor.close()
    assert ct not in wal(kiosk)
    kiosk.store.tick()  # the service reports what it said was incomplete, whoever finished it
    assert kiosk.events[-1][0] == "erase_completed" and kiosk.events[-1][1]["people"] == ["ann"]


def test_a_restart_keeps_a_blocked_erasure_pending_and_the_new_run_finishes_it(
        kiosk: Kiosk, site: Site, key: bytes) -> None:
    reader, _ct = blocked_deletion(kiosk, site)
    kiosk.store.close()  # the service stops (or crashes) with the erasure still blocked
    restarted = Kiosk(site, kiosk.store.path, key)
    assert restarted.store.store_health()["pending_erasure"] == ["ann"]
    reader.close()
    restarted.store.tick()
    assert restarted.events[-1][0] == "erase_completed" and restarted.events[-1][1]["people"] == ["ann"]
    assert restarted.store.store_health()["pending_erasure"] == []


def test_the_store_ticker_retries_on_its_own_thread_until_the_erasure_is_done(kiosk: Kiosk, site: Site) -> None:
    reader, ct = blocked_deletion(kiosk, site)
    asked: list[float] = []
    ticked, go, done = threading.Semaphore(0), threading.Semaphore(0), threading.Event()

    def wait(timeout: float) -> None:  # the test lets the thread take each step; once done, it runs to its stop
        asked.append(timeout)
        ticked.release()
        if not done.is_set():
            go.acquire()

    ticker = Ticker(kiosk.store.tick, ERASURE_RETRY_S, name="store-erasure", wait=wait)
    ticker.start()
    try:
        assert ticked.acquire(timeout=10)  # first tick: still blocked
        assert kinds(kiosk)[-1] == "erase_incomplete"
        reader.close()
        go.release()
        assert ticked.acquire(timeout=10)  # second tick: done
        assert kinds(kiosk)[-1] == "erase_completed" and ct not in wal(kiosk)
        assert asked == [ERASURE_RETRY_S, ERASURE_RETRY_S]
    finally:
        done.set()
        go.release()
        assert ticker.stop(10)


class ReadyNotifier(Notifier):
    """systemd's side of the service, in the test: which threads run once the service says it is ready."""

    def __init__(self) -> None:
        super().__init__(address="")
        self.threads: list[str] = []

    def ready(self, status: str = "") -> None:
        self.threads = [t.name for t in threading.enumerate() if t.is_alive()]


@pytest.mark.models
def test_the_service_finishes_an_erasure_its_last_run_left_blocked_and_retries_on_a_timer(
        tmp_path: Path, models: Path) -> None:
    from kiosk.config import load_settings
    from kiosk.service import run_service
    from kiosk.store import load_key
    from tests.kiosk_config import write_replay_config

    config = write_replay_config(tmp_path, device="door1")
    config.write_text(config.read_text().replace("loop = true", "loop = false"))  # one frame, then the end
    settings = load_settings(config)
    last_run = Store(settings.store.path, load_key(settings.store.key_file), FP, sleep=lambda _s: None)
    reader = Reader(settings.store.path)
    assert not last_run.apply(Tombstone("ann", 1)).erased  # blocked, and then the service stopped
    last_run.close()
    reader.close()

    notifier = ReadyNotifier()
    errors: list[BaseException] = []

    def serve() -> None:  # not on the main thread: the service installs no signal handlers in the test process
        try:
            run_service(settings, until_end=True, notifier=notifier)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join(300)
    assert not thread.is_alive() and not errors
    assert "store-erasure" in notifier.threads
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    completed = [e for e in audit if e["type"] == "erase_completed"]
    assert [e["people"] for e in completed] == [["ann"]]
    assert [e["type"] for e in audit].index("erase_completed") < [e["type"] for e in audit].index("started")
    check = Store(settings.store.path, load_key(settings.store.key_file), FP)
    assert list(check._pending_erasure) == []
    check.close()
