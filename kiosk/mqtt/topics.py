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

    @property
    def enrollment_root(self) -> str:
        """What an enrollment topic starts with; the last level names the person."""
        return f"{self.prefix}/{self.site}/enrollments/"

    @property
    def keys(self) -> str:
        """Retained list of administrator keys, signed by the site's root key."""
        return f"{self.prefix}/{self.site}/keys"

    @property
    def snapshot(self) -> str:
        """Retained site snapshot (every person's current revision), signed by an administrator."""
        return f"{self.prefix}/{self.site}/snapshot"

    def _dev(self, leaf: str) -> str:
        return f"{self.prefix}/{self.site}/{self.device}/{leaf}"

    @property
    def events(self) -> str:
        return self._dev("events")

    def ack(self, person_id: str) -> str:
        """One per person: retained for what the kiosk holds, not retained for a refusal."""
        return self._dev(f"acks/{person_id}")

    @property
    def keys_ack(self) -> str:
        """Which key list the kiosk holds (retained), or why it refused one (not retained)."""
        return self._dev("keys")

    @property
    def snapshot_ack(self) -> str:
        """Which snapshot the kiosk holds (retained), or why it refused one (not retained)."""
        return self._dev("snapshot")

    @property
    def refused(self) -> str:
        """Refusals of messages on topics that name no valid person (never retained)."""
        return self._dev("refused")

    @property
    def heartbeat(self) -> str:
        """The kiosk's own liveness probe: published and received by itself, never retained."""
        return self._dev("heartbeat")

    @property
    def health(self) -> str:
        """Retained problem states (snapshot expired, clock not synchronised), for Home Assistant."""
        return self._dev("health")

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
