"""The door's live threshold: the security level re-derived whenever the number of templates changes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kiosk.policy.config import PolicyConfig, level_for, load_model
from kiosk.policy.scoremodel import ScoreModel
from kiosk.policy.threshold import Level

logger = logging.getLogger(__name__)


class DoorLevel:
    """``threshold()`` for the 1:N decision and ``one_to_one()`` for a claimed identity (one template).

    ``templates`` counts the rows the gallery holds now (one per person once
    templates are fused); it is read on every call, so the level follows the
    gallery as enrollments arrive, and every change is logged.
    """

    def __init__(self, config: PolicyConfig, templates: Callable[[], int], model: ScoreModel | None = None,
                 on_change: Callable[[Level], None] | None = None) -> None:
        self.config = config
        self.templates = templates
        self.model = model or load_model(config)
        self.on_change = on_change
        self._lock = threading.Lock()
        self._n: int | None = None
        self._level: Level | None = None
        self.one_to_one_level = level_for(config, 1, self.model)

    @property
    def level(self) -> Level:
        n = max(int(self.templates()), 1)
        with self._lock:
            if n != self._n or self._level is None:
                self._n, self._level = n, level_for(self.config, n, self.model)
                changed: Level | None = self._level
            else:
                changed = None
            level = self._level
        if changed is not None:
            log = logger.warning if changed.warning else logger.info
            log("%s", changed.describe())
            if self.on_change is not None:
                self.on_change(changed)
        return level

    def threshold(self) -> float:
        return self.level.threshold

    def one_to_one(self) -> float:
        return self.one_to_one_level.threshold

    def as_dict(self) -> dict[str, Any]:
        return {**self.level.as_dict(), "threshold_1to1": round(self.one_to_one(), 4)}
