"""The promotion gate: the decision logic on metrics, then promote/rollback against a real
MLflow registry (SQLite in tmp_path) with small models trained here."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.champion import CHAMPION
from {{ cookiecutter.package_name }}.config import Params, PromotionConfig, SplitConfig, TrainConfig
from {{ cookiecutter.package_name }}.errors import PipelineError, StageInputError
from {{ cookiecutter.package_name }}.features import FEATURE_SERVICE, LABEL, build_features
from {{ cookiecutter.package_name }}.promotion import (
    CANDIDATE,
    Scorecard,
    decide,
    promote,
    rollback,
    scorecard,
)

CFG = PromotionConfig(
    primary_metric="pr_auc",
    min_improvement=0.01,
    absolute_minimums={"roc_auc": 0.6},
    slice_minimums={"roc_auc": 0.55},
    min_slice_rows=50,
)


def card(
    pr_auc: float, roc_auc: float = 0.8, slices: dict[str, tuple[int, float]] | None = None
) -> Scorecard:
    slices = slices or {"consumer": (500, 0.8), "enterprise": (80, 0.7)}
    return Scorecard(
        overall={"pr_auc": pr_auc, "roc_auc": roc_auc, "rows": 1000.0},
        slices={
            name: {"rows": float(rows), "roc_auc": auc} for name, (rows, auc) in slices.items()
        },
    )


def checks(decision) -> dict[str, bool | None]:
    return {c.name: c.passed for c in decision.checks}


def test_first_model_passing_the_minimums_is_promoted() -> None:
    decision = decide(card(0.30), None, CFG)
    assert decision.promote
    assert checks(decision)["beats_champion.pr_auc"] is None  # nothing to beat
    assert "no champion yet" in decision.reasons[0]


def test_first_model_below_an_absolute_minimum_is_rejected() -> None:
    decision = decide(card(0.30, roc_auc=0.55), None, CFG)
    assert not decision.promote
    assert decision.reasons == ["minimum.roc_auc: 0.5500 < 0.6000"]


def test_candidate_must_beat_the_champion_by_the_margin() -> None:
    assert decide(card(0.32), card(0.30), CFG).promote
    within_margin = decide(card(0.305), card(0.30), CFG)
    assert not within_margin.promote
    assert within_margin.reasons[0].startswith(
        "beats_champion.pr_auc: candidate 0.3050 vs champion 0.3000"
    )


def test_a_weak_slice_blocks_promotion_and_small_slices_are_skipped() -> None:
    weak = card(0.40, slices={"consumer": (500, 0.8), "enterprise": (80, 0.50)})
    decision = decide(weak, card(0.30), CFG)
    assert not decision.promote
    assert checks(decision)["slice.enterprise.roc_auc"] is False
    tiny = card(0.40, slices={"consumer": (500, 0.8), "enterprise": (10, 0.40)})
    decision = decide(tiny, card(0.30), CFG)
    assert decision.promote
    assert checks(decision)["slice.enterprise.roc_auc"] is None


def test_a_metric_that_cannot_be_computed_fails_its_check() -> None:
    one_class = card(0.40, slices={"consumer": (500, 0.8), "enterprise": (80, math.nan)})
    decision = decide(one_class, None, CFG)
    assert not decision.promote
    assert "not computable" in decision.reasons[0]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="no 'pr_auc'"):
        decide(Scorecard(overall={"roc_auc": 0.9}, slices={}), None, CFG)
    holdout = pd.DataFrame({LABEL: [0, 1, 0], "segment": ["a", "a", "b"]})
    with pytest.raises(ValueError, match="2 scores for 3 holdout rows"):
        scorecard(holdout, np.array([0.1, 0.9]), 0.5, "segment")
    with pytest.raises(StageInputError, match=r"data\.slice_column"):
        scorecard(holdout, np.array([0.1, 0.9, 0.2]), 0.5, "region")
    with pytest.raises(ValidationError, match="between 0 and 1"):
        PromotionConfig(absolute_minimums={"roc_auc": 65})
    with pytest.raises(ValidationError):
        PromotionConfig(primary_metric="accuracy")
    with pytest.raises(ValidationError):
        PromotionConfig(absolute_minimums={"log_loss": 0.3})


def test_scorecard_scores_overall_and_per_slice() -> None:
    holdout = pd.DataFrame({LABEL: [0, 1, 0, 1], "segment": ["a", "a", "b", "b"]})
    result = scorecard(holdout, np.array([0.1, 0.9, 0.2, 0.8]), 0.5, "segment")
    assert result.overall["roc_auc"] == 1.0
    assert set(result.slices) == {"a", "b"}
    assert result.slices["a"]["rows"] == 2.0


# --------------------------------------------------------------------------- registry


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_raw: pd.DataFrame,
    split_config: SplitConfig,
    project_params: Params,
) -> Iterator[Params]:
    """Params pointing every path and MLflow at a temporary folder, with a training set."""
    root = tmp_path_factory.mktemp("registry")
    paths = project_params.paths.model_copy(
        update={k: root / v for k, v in project_params.paths.model_dump().items()}
    )
    params = project_params.model_copy(
        update={
            "paths": paths,
            "split": split_config,
            "promote": CFG.model_copy(update={"absolute_minimums": {"roc_auc": 0.5}}),
        }
    )
    frame = build_features(tiny_raw).assign(
        **{LABEL: tiny_raw[LABEL].to_numpy(), "segment": tiny_raw["segment"].to_numpy()}
    )
    paths.training_set.parent.mkdir(parents=True)
    frame.to_parquet(paths.training_set, index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.chdir(root)
        yield params


def train_and_log(p: Params, cfg: TrainConfig) -> str:
    """What the train stage does: fit, save (UBJSON), log the run, write mlflow_run.json."""
    from {{ cookiecutter.package_name }} import tracking
    from {{ cookiecutter.package_name }}.features import FEATURE_COLUMNS
    from {{ cookiecutter.package_name }}.files import write_json
    from {{ cookiecutter.package_name }}.model import save_model
    from {{ cookiecutter.package_name }}.split import time_split
    from {{ cookiecutter.package_name }}.training import train_model

    splits = time_split(pd.read_parquet(p.paths.training_set), p.split)
    booster, meta = train_model(splits, cfg)
    save_model(booster, meta, p.paths.model_dir)
    tracking.setup_mlflow(p.mlflow)
    sample = splits.train[FEATURE_COLUMNS].head(5).astype("float32")
    run_id = tracking.log_training(booster, meta, {}, sample, tags={})
    write_json({"run_id": run_id}, p.paths.model_dir / tracking.RUN_FILE)
    return run_id


def aliases(p: Params) -> dict[str, str]:
    import mlflow

    model = mlflow.MlflowClient().get_registered_model(p.mlflow.registered_model)
    return {alias: str(version) for alias, version in model.aliases.items()}


def test_promote_and_rollback_against_the_registry(
    registry: Params, train_config: TrainConfig
) -> None:
    import mlflow

    p = registry
    weak = train_config.model_copy(
        update={"num_boost_round": 2, "max_depth": 1, "early_stopping_rounds": 1}
    )

    train_and_log(p, weak)
    first = promote(p)
    assert first["decision"] == "promoted" and first["champion_before"] is None
    assert aliases(p) == {CHAMPION: "1", CANDIDATE: "1"}
    report = json.loads((p.paths.reports / "promotion.json").read_text())
    assert report["candidate"]["version"] == 1 and report["champion_after"] == 1

    train_and_log(p, train_config)
    second = promote(p)
    assert second["champion_before"]["version"] == 1
    assert second["decision"] == "promoted", second["reasons"]
    assert aliases(p) == {CHAMPION: "2", CANDIDATE: "2"}
    tags = mlflow.MlflowClient().get_model_version(p.mlflow.registered_model, "2").tags
    assert tags["previous_champion"] == "1"
    assert tags["feature_service"] == FEATURE_SERVICE
    assert tags["promotion.decision"] == "promoted"
    assert tags["gate.beats_champion.pr_auc"].startswith("pass: candidate")
    assert {"git_commit", "threshold", "holdout", "data.end_date"} <= set(tags)
    assert float(tags["threshold"]) == second["candidate"]["threshold"]  # recorded at registration

    train_and_log(p, weak)
    third = promote(p)
    assert third["decision"] == "rejected"
    assert any(r.startswith("beats_champion.pr_auc") for r in third["reasons"])
    assert aliases(p) == {CHAMPION: "2", CANDIDATE: "3"}, "a rejected candidate leaves the champion"

    assert promote(p)["candidate"]["version"] == 3, "promoting the same run again registers nothing"

    assert rollback(p) == (2, 1)  # back to the champion version 2 replaced
    assert aliases(p)[CHAMPION] == "1"
    assert rollback(p, to_version=2) == (1, 2)
    with pytest.raises(PipelineError, match="no version 99"):
        rollback(p, to_version=99)
    with pytest.raises(PipelineError, match="already the champion"):
        rollback(p, to_version=2)


def test_promote_without_a_trained_model_names_the_stage(registry: Params, tmp_path: Path) -> None:
    p = registry.model_copy(
        update={"paths": registry.paths.model_copy(update={"model_dir": tmp_path / "models"})}
    )
    with pytest.raises(StageInputError, match="'train' stage"):
        promote(p)
