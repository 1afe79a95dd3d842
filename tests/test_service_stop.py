"""The service's stop: a fault while the door closes still tells systemd and the broker that it stops."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from kiosk.door.relay import Door
from kiosk.sdnotify import Notifier


class StopNotifier(Notifier):
    """systemd's side of the service, in the test: whether the service said it stops."""

    def __init__(self) -> None:
        super().__init__(address="")
        self.stopping_said = False

    def stopping(self) -> None:
        self.stopping_said = True


@pytest.mark.models
def test_a_fault_closing_the_door_still_locks_and_reports_the_stop(
        tmp_path: Path, models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kiosk.config import load_settings
    from kiosk.service import run_service
    from tests.kiosk_config import write_replay_config

    config = write_replay_config(tmp_path, device="door1")
    config.write_text(config.read_text().replace("loop = true", "loop = false"))  # one frame, then the end
    real_close = Door.close
    closed: list[bool] = []

    def failing_close(door: Door) -> None:  # the exit button's pin cannot be released (a second close: no-op)
        real_close(door)
        closed.append(not door.unlocked)
        if len(closed) == 1:
            raise RuntimeError("exit button pin stuck")

    monkeypatch.setattr(Door, "close", failing_close)
    notifier = StopNotifier()
    errors: list[BaseException] = []

    def serve() -> None:  # not on the main thread: the service installs no signal handlers in the test process
        try:
            run_service(load_settings(config), until_end=True, notifier=notifier)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join(300)
    assert not thread.is_alive()
    assert [str(e) for e in errors] == ["exit button pin stuck"]  # the fault surfaces, after the rest
    assert closed and all(closed) and notifier.stopping_said
    audit = [json.loads(line)["type"] for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert audit[-1] == "stopped"
