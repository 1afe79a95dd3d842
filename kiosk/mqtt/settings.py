"""The ``[sync]`` and ``[trust]`` configuration sections: how refusals are reported and how the MQTT network
thread is watched; the site root key, the installed key list and the clock checks."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from kiosk.clock import ClockSettings
from kiosk.ratelimit import Limits

__all__ = ["SyncSettings", "TrustSettings"]


class SyncSettings(BaseModel):
    """How refusals are reported and how the MQTT network thread is watched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    refusal_topic_burst: int = Field(3, ge=1, le=1000,
                                     description="refusals reported one by one per topic before the rate applies")
    refusal_topic_per_min: float = Field(1.0, ge=0, le=600,
                                         description="refusals reported per topic per minute after the burst")
    refusal_total_burst: int = Field(20, ge=1, le=10_000,
                                     description="refusals reported one by one, all topics together, before the rate")
    refusal_total_per_s: float = Field(1.0, ge=0, le=1000,
                                       description="refusals reported per second, all topics together, after the burst")
    refusal_topics_tracked: int = Field(1024, ge=16, le=100_000,
                                        description="topics with their own refusal budget (least recent forgotten)")
    summary_interval_s: float = Field(60.0, ge=1, le=3600,
                                      description="one sync_refusals event sums up each interval with refusals")
    max_snapshot_bytes: int = Field(8 * 2**20, ge=64 * 1024, le=256 * 2**20,
                                    description="largest snapshot or key list payload accepted")
    heartbeat_s: float = Field(15.0, ge=1, le=600,
                               description="the kiosk sends itself a probe this often to prove the network thread works")
    stall_s: float = Field(90.0, ge=10, le=3600,
                           description="no callback for this long (probe included) means the network thread is stalled")

    def limits(self) -> Limits:
        return Limits(topic_rate=self.refusal_topic_per_min / 60.0, topic_burst=self.refusal_topic_burst,
                      total_rate=self.refusal_total_per_s, total_burst=self.refusal_total_burst,
                      max_topics=self.refusal_topics_tracked)


class TrustSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    root_key: Path | None = Field(None, description="the site root's Ed25519 public key (*.pub or *.pem); when set, "
                                                    "administrator keys come only from the root-signed key list")
    clock: ClockSettings = Field(default_factory=ClockSettings, description="how the kiosk tells its clock is right")
    key_list: Path | None = Field(None, description="the site's current root-signed key list, installed with the "
                                                    "kiosk: a key list older than it is refused, so a new kiosk (or "
                                                    "a reset store) cannot be handed an old list that still names a "
                                                    "revoked key")
    require_snapshot: bool = Field(True, description="with a root key pinned, admit nobody until a current site "
                                                     "snapshot is held (records are kept meanwhile, set aside): a "
                                                     "kiosk with none cannot tell a deleted person's old record "
                                                     "from a current one")
