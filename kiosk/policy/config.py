"""Per-door security level configuration (the integrator mounts it in kiosk.config.Settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from kiosk.policy.threshold import DEFAULT_TARGET, MIN_USEFUL_TAR


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stranger_acceptance: float = Field(
        DEFAULT_TARGET, gt=0.0, le=0.01,
        description="tolerated share of strangers' approaches that are let in (per approach, whatever the number "
                    "of people enrolled); the cosine threshold is derived from it and the gallery size")
    threshold: float | None = Field(
        None, ge=0.0, le=1.0,
        description="experts only: a fixed cosine threshold instead of the derived one (the level it gives is "
                    "still computed and logged)")
    margin: float = Field(
        0.05, ge=0.0, le=0.5,
        description="the best person must beat the second best by this cosine, else the approach is ambiguous "
                    "(denied)")
    min_expected_tar: float = Field(
        MIN_USEFUL_TAR, ge=0.0, le=1.0,
        description="warn at start and in stats when the expected true-accept rate falls below this")
    score_table: str | None = Field(
        None, description="path of a score table to use instead of the one shipped with the kiosk")
