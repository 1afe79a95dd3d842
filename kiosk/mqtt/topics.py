"""The topic tree (see docs/mqtt.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str
    site: str
    device: str

    @property
    def enrollments(self) -> str:
        """Subscription for every enrollment of the site."""
        return f"{self.prefix}/{self.site}/enrollments/+"

    def enrollment(self, person_id: str) -> str:
        return f"{self.prefix}/{self.site}/enrollments/{person_id}"

    def _dev(self, leaf: str) -> str:
        return f"{self.prefix}/{self.site}/{self.device}/{leaf}"

    @property
    def events(self) -> str:
        return self._dev("events")

    def ack(self, person_id: str) -> str:
        """Retained, one per person, so an administrator sees every kiosk's state at once."""
        return self._dev(f"acks/{person_id}")

    @property
    def availability(self) -> str:
        return self._dev("availability")

    @property
    def stats(self) -> str:
        return self._dev("stats")

    @property
    def door_state(self) -> str:
        return self._dev("door")

    @property
    def all_acks(self) -> str:
        return f"{self.prefix}/{self.site}/+/acks/+"
