"""The policy config, the score model in the model card, and enrollment on real photos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from converter.report import score_model_block
from kiosk.policy import PolicyConfig, default_model, level_for
from kiosk.policy.scoremodel import TABLE_PATH


def test_default_policy_is_one_stranger_in_ten_thousand_per_approach() -> None:
    cfg = PolicyConfig()
    level = level_for(cfg, 10)
    assert cfg.stranger_acceptance == 1e-4 and not level.explicit
    assert level.threshold == pytest.approx(default_model().threshold_for(1 - (1 - 1e-4) ** 0.1))


def test_an_expert_cosine_is_kept_and_its_level_reported() -> None:
    level = level_for(PolicyConfig(threshold=0.6), 100)
    assert level.explicit and level.threshold == 0.6
    assert level.target > 1e-3  # 0.6 with 100 templates lets far more than 1e-4 strangers in


@pytest.mark.parametrize("bad", [{"stranger_acceptance": 0.5}, {"stranger_acceptance": 0.0}, {"margin": -0.1},
                                 {"threshold": 1.5}, {"unknown_key": 1}])
def test_policy_config_refuses_out_of_bounds_and_unknown_keys(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PolicyConfig(**bad)


def test_a_config_can_name_another_score_table(tmp_path: Path) -> None:
    table = json.loads(TABLE_PATH.read_text())
    table["provenance"]["sets"] = [{"name": "site-photos"}]
    path = tmp_path / "site.json"
    path.write_text(json.dumps(table))
    from kiosk.policy import load_model

    assert load_model(PolicyConfig(score_table=str(path))).provenance["sets"] == [{"name": "site-photos"}]


def test_model_card_block_carries_summary_provenance_and_whether_it_is_current() -> None:
    table = json.loads(TABLE_PATH.read_text())
    sha = table["provenance"]["model_sha256"]
    block = score_model_block(table, "ab" * 32, sha, "score_table.json")
    assert block["current"] and block["note"] == "measured with this model"
    assert block["provenance"]["sets"][0]["name"] == "lfw-view1"
    assert block["summary"]["threshold_for_far"]["0.0001"]["measured"] is True
    assert "extrapolated" in block["measured_vs_extrapolated"]
    stale = score_model_block(table, "ab" * 32, "0" * 64, "score_table.json")
    assert not stale["current"] and "benchmarks.score_model" in stale["note"]


def test_attaching_the_table_rewrites_only_the_card(tmp_path: Path) -> None:
    from converter.cli import attach_score_table
    from kiosk.artifacts import sha256_file

    model = tmp_path / "m.tflite"
    model.write_bytes(b"not really a model")
    model.with_suffix(".json").write_text(json.dumps({"model": "m.tflite", "sha256": sha256_file(model)}))
    card = attach_score_table(model)
    assert model.read_bytes() == b"not really a model"
    on_disk = json.loads(model.with_suffix(".json").read_text())
    assert on_disk["score_model"]["sha256"] == sha256_file(TABLE_PATH) == card["score_model"]["sha256"]
    assert on_disk["score_model"]["current"] is False  # measured with another model
    assert on_disk["sha256"] == sha256_file(model)


@pytest.mark.models
def test_real_photos_of_one_person_fuse_into_one_template(pipeline: Any, data: Path) -> None:
    from kiosk.enrollment import enroll_template

    photos = sorted((data / "people" / "obama").glob("*.jpg"))
    t = enroll_template(pipeline[0], photos)
    assert t.photos == len(photos) and t.consistency.ok and t.row().shape == (1, 128)


@pytest.mark.models
def test_real_photos_of_two_people_are_refused_naming_the_odd_one(pipeline: Any, data: Path) -> None:
    from kiosk.enrollment import EnrollmentError, enroll_template

    photos = [*sorted((data / "people" / "obama").glob("*.jpg"))[1:3], data / "people" / "biden" / "1.jpg"]  # 2, 3, 1
    with pytest.raises(EnrollmentError, match=r"two different people \(odd one out: 1\.jpg\)"):
        enroll_template(pipeline[0], photos)


@pytest.mark.models
def test_duplicate_check_finds_a_person_enrolled_under_another_id(pipeline: Any, data: Path) -> None:
    from kiosk.enrollment import duplicate_people, enroll_template
    from kiosk.match import Gallery

    obama = sorted((data / "people" / "obama").glob("*.jpg"))
    biden = sorted((data / "people" / "biden").glob("*.jpg"))
    rows = np.concatenate([enroll_template(pipeline[0], obama[:-1]).row(), enroll_template(pipeline[0], biden).row()])
    gallery = Gallery(rows, ["barack", "joe"])
    again = enroll_template(pipeline[0], obama[-1:])
    assert [p for p, _ in duplicate_people(gallery, again.template)] == ["barack"]
