"""Per-door security level configuration (the integrator mounts it in kiosk.config.Settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from kiosk.policy.scoremodel import ScoreModel, default_model
from kiosk.policy.threshold import DEFAULT_TARGET, MIN_USEFUL_TAR, Level, derive, explicit


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


def load_model(cfg: PolicyConfig) -> ScoreModel:
    """The score table named in the config, else the one shipped beside this package."""
    return ScoreModel.load(Path(cfg.score_table)) if cfg.score_table else default_model()


def level_for(cfg: PolicyConfig, templates: int, model: ScoreModel | None = None) -> Level:
    """The door's threshold and what it means, for ``templates`` rows held (call again when the gallery changes).

    An explicit ``threshold`` is used as given (its level is computed); otherwise it is derived from
    ``stranger_acceptance``. ``Level.warning`` is set when the level is not met usefully.
    """
    model = model or load_model(cfg)
    if cfg.threshold is not None:
        return explicit(model, templates, cfg.threshold, min_tar=cfg.min_expected_tar)
    return derive(model, templates, cfg.stranger_acceptance, min_tar=cfg.min_expected_tar)
