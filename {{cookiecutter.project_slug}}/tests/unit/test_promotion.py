"""The promotion gate: the decision logic on metrics, then promote/rollback against a real
MLflow registry (SQLite in tmp_path) with small models trained here."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.champion import CHAMPION
from {{ cookiecutter.package_name }}.config import (
    InfraValidationConfig,
    Params,
    PromotionConfig,
    RolloutConfig,
    SplitConfig,
    TrainConfig,
)
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.errors import PipelineError, StageInputError
from {{ cookiecutter.package_name }}.features import FEATURE_SERVICE
from {{ cookiecutter.package_name }}.holdout import read_holdout
from {{ cookiecutter.package_name }}.promotion import (
    CANDIDATE,
    Scorecard,
    decide,
    promote,
    scorecard,
)
from {{ cookiecutter.package_name }}.rollout import rollback

from conftest import aliases, promotion_params, train_and_log, training_frame

CFG = PromotionConfig(
    primary_metric="pr_auc",
    min_improvement=0.01,
    absolute_minimums={"roc_auc": 0.6},
    slice_minimums={"roc_auc": 0.55},
    min_slice_rows=50,
    infra_validation=InfraValidationConfig(enabled=False),  # see test_infra_validation.py
)


def card(
    pr_auc: float,
    roc_auc: float = 0.8,
    slices: dict[str, tuple[int, float]] | None = None,
    positive_rate: float = 0.1,
) -> Scorecard:
    slices = slices or {"large": (500, 0.8), "small": (80, 0.7)}
    return Scorecard(
        overall={
            "pr_auc": pr_auc,
            "roc_auc": roc_auc,
            "rows": 1000.0,
            "positive_rate": positive_rate,
        },
        slices={
            name: {"rows": float(rows), "roc_auc": auc} for name, (rows, auc) in slices.items()
        },
    )


def checks(decision) -> dict[str, bool | None]:
    return {c.name: c.passed for c in decision.checks}


def details(decision) -> dict[str, str]:
    return {c.name: c.detail for c in decision.checks}


def test_first_model_passing_the_minimums_is_promoted() -> None:
    decision = decide(card(0.30), None, CFG)
    assert decision.promote
    assert checks(decision)["beats_champion.pr_auc"] is None  # nothing to beat
    assert "no champion yet" in decision.reasons[0]


def test_first_model_below_an_absolute_minimum_is_rejected() -> None:
    decision = decide(card(0.30, roc_auc=0.55), None, CFG)
    assert not decision.promote
    assert decision.reasons == ["minimum.roc_auc: 0.5500 < 0.6000"]


def test_a_lift_is_judged_against_the_holdouts_positive_rate() -> None:
    lifts = CFG.model_copy(update={"minimum_lifts": {"pr_auc": 2.0}})
    passed = decide(card(0.30, positive_rate=0.09), None, lifts)
    assert passed.promote
    lift = next(c for c in passed.checks if c.name == "lift.pr_auc")
    assert lift.detail == "pr_auc 0.3000 >= 2.0 x positive rate 0.0900 (0.1800)"
    assert lift.baseline == 0.09 and lift.required == pytest.approx(0.18)
    # the same PR AUC on a holdout where a third of the rows are positive is no skill
    rejected = decide(card(0.30, positive_rate=0.336), None, lifts)
    assert not rejected.promote
    assert rejected.reasons == ["lift.pr_auc: pr_auc 0.3000 < 2.0 x positive rate 0.3360 (0.6720)"]
    unreachable = decide(card(0.90, positive_rate=0.6), None, lifts)
    assert not unreachable.promote and "unreachable" in unreachable.reasons[0]


def test_absolute_minimums_still_apply_beside_the_lifts() -> None:
    both = CFG.model_copy(
        update={"minimum_lifts": {"pr_auc": 2.0}, "absolute_minimums": {"pr_auc": 0.25}}
    )
    decision = decide(card(0.22, positive_rate=0.05), None, both)  # lift 4.4, below 0.25
    assert not decision.promote
    assert checks(decision)["lift.pr_auc"] is True
    assert decision.reasons == ["minimum.pr_auc: 0.2200 < 0.2500"]


def test_slice_lifts_use_each_slices_positive_rate() -> None:
    gate = CFG.model_copy(update={"slice_minimum_lifts": {"pr_auc": 1.5}})
    slices = {
        "large": {"rows": 500.0, "roc_auc": 0.8, "pr_auc": 0.20, "positive_rate": 0.08},
        "small": {"rows": 80.0, "roc_auc": 0.7, "pr_auc": 0.30, "positive_rate": 0.25},
        "tiny": {"rows": 10.0, "roc_auc": 0.7, "pr_auc": 0.05, "positive_rate": 0.30},
    }
    candidate = Scorecard(card(0.30).overall, slices)
    decision = decide(candidate, None, gate)
    assert not decision.promote
    assert checks(decision)["slice.large.lift.pr_auc"] is True
    assert checks(decision)["slice.tiny.lift.pr_auc"] is None  # below min_slice_rows
    assert decision.reasons == [
        "slice.small.lift.pr_auc: pr_auc 0.3000 < 1.5 x positive rate 0.2500 (0.3750)"
    ]


def test_candidate_must_beat_the_champion_by_the_margin() -> None:
    assert decide(card(0.32), card(0.30), CFG).promote
    within_margin = decide(card(0.305), card(0.30), CFG)
    assert not within_margin.promote
    assert within_margin.reasons[0].startswith(
        "beats_champion.pr_auc: candidate 0.3050 vs champion 0.3000"
    )


def test_a_weak_slice_blocks_promotion_and_small_slices_are_skipped() -> None:
    weak = card(0.40, slices={"large": (500, 0.8), "small": (80, 0.50)})
    decision = decide(weak, card(0.30), CFG)
    assert not decision.promote
    assert checks(decision)["slice.small.roc_auc"] is False
    tiny = card(0.40, slices={"large": (500, 0.8), "small": (10, 0.40)})
    decision = decide(tiny, card(0.30), CFG)
    assert decision.promote
    assert checks(decision)["slice.small.roc_auc"] is None


def test_a_slice_with_few_rows_of_one_class_is_skipped_not_judged() -> None:
    slices = {
        "large": {"rows": 500.0, "roc_auc": 0.8, "positive_rate": 0.2},
        "rare": {"rows": 500.0, "roc_auc": 0.4, "positive_rate": 0.01},  # 5 positives
    }
    decision = decide(Scorecard(card(0.40).overall, slices), card(0.30), CFG)
    assert decision.promote
    assert checks(decision)["slice.rare.roc_auc"] is None
    assert "5 positive and 495 negative rows" in details(decision)["slice.rare.roc_auc"]
    slices["rare"]["positive_rate"] = 0.2  # 100 positives: the same AUC now fails
    decision = decide(Scorecard(card(0.40).overall, slices), card(0.30), CFG)
    assert not decision.promote
    assert checks(decision)["slice.rare.roc_auc"] is False


def test_a_metric_that_cannot_be_computed_fails_its_check() -> None:
    one_class = card(0.40, slices={"large": (500, 0.8), "small": (80, math.nan)})
    decision = decide(one_class, None, CFG)
    assert not decision.promote
    assert "not computable" in decision.reasons[0]


def test_the_gap_rule_is_off_by_default_and_names_the_slices_when_on() -> None:
    assert PromotionConfig().max_slice_gap is None
    slices = {
        "north": {"rows": 400.0, "roc_auc": 0.8, "recall": 0.80, "fpr": 0.10},
        "south": {"rows": 300.0, "roc_auc": 0.8, "recall": 0.45, "fpr": 0.12},
        "east": {"rows": 20.0, "roc_auc": 0.8, "recall": 0.05, "fpr": 0.90},  # too few rows
    }
    candidate = Scorecard(card(0.30).overall, slices, {"region": list(slices)})
    assert decide(candidate, None, CFG).promote  # no gap rule: promoted
    gate = CFG.model_copy(update={"max_slice_gap": {"recall": 0.25, "fpr": 0.05}})
    decision = decide(candidate, None, gate)
    assert not decision.promote
    assert checks(decision)["slice_gap.fpr"] is True  # 0.02: the tiny slice is left out
    assert decision.reasons == [
        "slice_gap.recall: recall gap 0.3500 > 0.2500: south 0.4500 vs north 0.8000 "
        "(region; slices of 50+ rows)"
    ]
    # gaps are taken within a dimension: two one-slice dimensions have no gap
    apart = Scorecard(candidate.overall, slices, {"a": ["north"], "b": ["south"]})
    skipped = decide(apart, None, gate)
    assert skipped.promote and checks(skipped)["slice_gap.recall"] is None
    with pytest.raises(ValidationError, match=r"max_slice_gap\.precision"):
        PromotionConfig(max_slice_gap={"precision": 0.1})


def weak_in_one_slice(
    contract: DatasetContract, tiny_window
) -> tuple[pd.DataFrame, np.ndarray, str]:
    """Holdout rows of `contract` with scores that rank well everywhere, and are squashed
    below the threshold (0.5) in one value of the first slice column: the slice's ROC AUC
    stays high, its recall collapses. Returns the rows, the scores and that slice's name."""
    from {{ cookiecutter.package_name }}.contract_rows import contract_frame

    raw = contract_frame(contract, tiny_window.dates()[:3], 600, seed=3)
    holdout = training_frame(raw, contract).reset_index(drop=True)
    y = holdout[contract.label.column].to_numpy()
    rng = np.random.default_rng(0)
    scores = np.clip(0.15 + 0.6 * y + rng.normal(0, 0.12, len(y)), 0.0, 1.0)
    column = contract.slices[0]
    weak_value = holdout[column].dropna().astype(str).value_counts().index[0]
    weak = (holdout[column].astype(str) == weak_value).to_numpy()
    scores[weak] *= 0.5  # same order inside the slice, all but a few below 0.5
    name = weak_value if len(contract.slices) == 1 else f"{column}={weak_value}"
    return holdout, scores, name


def test_a_candidate_good_overall_but_weak_in_one_slice_is_rejected_by_the_gap_rule(
    any_contract, tiny_window
) -> None:
    if not any_contract.slices:
        pytest.skip("the contract declares no slice column")
    contract = only_slices(any_contract, any_contract.slices[:1])
    holdout, scores, weak = weak_in_one_slice(contract, tiny_window)
    candidate = scorecard(holdout, scores, 0.5, contract)
    assert candidate.overall["roc_auc"] > 0.8
    assert candidate.slices[weak]["roc_auc"] > 0.8  # the slice ranks well ...
    assert candidate.slices[weak]["recall"] < 0.3  # ... but its positives are missed
    assert decide(candidate, None, CFG).promote  # the minimums alone let it through
    gate = CFG.model_copy(update={"max_slice_gap": {"recall": 0.3}})
    decision = decide(candidate, None, gate)
    assert not decision.promote
    assert checks(decision)["slice_gap.recall"] is False
    assert len(decision.reasons) == 1
    assert decision.reasons[0].startswith("slice_gap.recall: recall gap ")
    assert f": {weak} {candidate.slices[weak]['recall']:.4f} vs " in decision.reasons[0]
    # a recall floor per slice names it too
    floor = CFG.model_copy(update={"slice_minimums": {"recall": 0.5}})
    floored = decide(candidate, None, floor)
    assert not floored.promote
    assert floored.reasons[0].startswith(f"slice.{weak}.recall: ")


def only_slices(contract: DatasetContract, columns: list[str]) -> DatasetContract:
    """`contract` sliced by the values of `columns` only (no bins, no crosses)."""
    return contract.model_copy(update={"slices": columns, "slice_bins": {}, "slice_crosses": []})


def holdout_of(contract: DatasetContract, labels: list[int], slices: list[str]) -> pd.DataFrame:
    """Holdout rows: the label and the same values in every slice column."""
    columns = {contract.label.column: labels} | {c: slices for c in contract.slices}
    return pd.DataFrame(columns)


def test_bad_inputs_are_refused(contract) -> None:
    with pytest.raises(ValueError, match="no 'pr_auc'"):
        decide(Scorecard(overall={"roc_auc": 0.9}, slices={}), None, CFG)
    holdout = holdout_of(contract, [0, 1, 0], ["a", "a", "b"])
    with pytest.raises(ValueError, match="2 scores for 3 holdout rows"):
        scorecard(holdout, np.array([0.1, 0.9]), 0.5, contract)
    elsewhere = only_slices(contract, ["no_such_column"])
    with pytest.raises(
        StageInputError, match=r"slice column 'no_such_column' \(params.yaml: dataset\.slices"
    ):
        scorecard(holdout, np.array([0.1, 0.9, 0.2]), 0.5, elsewhere)
    with pytest.raises(
        ValidationError, match=r"absolute_minimums\.roc_auc\n.*less than or equal to 1"
    ):
        PromotionConfig(absolute_minimums={"roc_auc": 65})
    with pytest.raises(ValidationError):
        PromotionConfig(primary_metric="accuracy")
    with pytest.raises(ValidationError):
        PromotionConfig(absolute_minimums={"log_loss": 0.3})
    with pytest.raises(ValidationError, match=r"minimum_lifts\.pr_auc\n.*greater than 0"):
        PromotionConfig(minimum_lifts={"pr_auc": 0})
    with pytest.raises(ValidationError, match=r"slice_minimum_lifts\.precision\n.*greater than"):
        PromotionConfig(slice_minimum_lifts={"precision": -1.0})
    with pytest.raises(ValidationError, match=r"minimum_lifts\.pr_auc\n.*finite number"):
        PromotionConfig(minimum_lifts={"pr_auc": math.inf})
    for metric in ("roc_auc", "recall", "f1"):  # their chance level is not the positive rate
        with pytest.raises(ValidationError, match=rf"minimum_lifts\.{metric}\.\[key\]"):
            PromotionConfig(minimum_lifts={metric: 1.2})


def test_scorecard_scores_overall_and_per_slice(contract) -> None:
    one = only_slices(contract, ["group"])
    holdout = holdout_of(one, [0, 1, 0, 1], ["a", "a", "b", "b"])
    result = scorecard(holdout, np.array([0.1, 0.9, 0.2, 0.8]), 0.5, one)
    assert result.overall["roc_auc"] == 1.0
    assert set(result.slices) == {"a", "b"}
    assert result.slices["a"]["rows"] == 2.0
    two = only_slices(contract, ["group", "kind"])
    result = scorecard(holdout_of(two, [0, 1, 0, 1], ["a", "a", "b", "b"]), np.zeros(4), 0.5, two)
    assert set(result.slices) == {"group=a", "group=b", "kind=a", "kind=b"}


def test_no_slices_means_no_slice_checks(contract) -> None:
    none = only_slices(contract, [])
    result = scorecard(
        holdout_of(none, [0, 1, 0, 1], []), np.array([0.1, 0.9, 0.2, 0.8]), 0.5, none
    )
    assert result.slices == {}
    decision = decide(result, None, CFG)
    assert decision.promote
    assert checks(decision) == {
        "minimum.roc_auc": True,
        "slices": None,
        "beats_champion.pr_auc": None,
    }
    assert "dataset.slices is empty" in decision.checks[1].detail
    no_slice_gate = CFG.model_copy(update={"slice_minimums": {}, "slice_minimum_lifts": {}})
    assert "slices" not in checks(decide(result, None, no_slice_gate))


@pytest.fixture(scope="module")
def holdout_model(
    tiny_raw: pd.DataFrame,
    split_config: SplitConfig,
    train_config: TrainConfig,
    contract: DatasetContract,
) -> tuple[pd.DataFrame, np.ndarray, float]:
    """A model trained on the generator's tiny window: its holdout, scores and threshold."""
    from {{ cookiecutter.package_name }}.model import predict_proba
    from {{ cookiecutter.package_name }}.split import time_split
    from {{ cookiecutter.package_name }}.training import train_model

    splits = time_split(training_frame(tiny_raw, contract), split_config, contract)
    booster, meta = train_model(splits, train_config, contract)
    return splits.test, predict_proba(booster, splits.test), meta.threshold


def test_the_same_model_passes_the_lift_on_a_low_base_rate_holdout_only(
    holdout_model, contract
) -> None:
    holdout, scores, threshold = holdout_model
    # A high-base-rate holdout: the same rows with nine negatives in ten left out.
    positive = holdout[contract.label.column] == 1
    keep = (positive | (np.random.default_rng(0).random(len(holdout)) < 0.1)).to_numpy()
    low = scorecard(holdout, scores, threshold, contract)
    high = scorecard(holdout[keep], scores[keep], threshold, contract)
    assert 2 * low.overall["positive_rate"] < high.overall["positive_rate"]
    gate = PromotionConfig(minimum_lifts={"pr_auc": 2.0})
    assert decide(low, None, gate).promote
    rejected = decide(high, None, gate)
    assert not rejected.promote
    assert rejected.reasons[0].startswith(
        f"lift.pr_auc: pr_auc {high.overall['pr_auc']:.4f} < 2.0 x positive rate "
        f"{high.overall['positive_rate']:.4f}"
    )
    # ... though it beats the old absolute floor by far: only the lift sees it is weak here
    old = PromotionConfig(absolute_minimums={"pr_auc": 0.15})
    assert high.overall["pr_auc"] > 2 * 0.15 and decide(high, None, old).promote


def test_the_holdout_read_from_the_newest_day_files_is_the_time_splits(
    tiny_raw: pd.DataFrame,
    split_config: SplitConfig,
    project_params: Params,
    tmp_path: Path,
) -> None:
    """A training set of day files (one empty) gives the time split's test rows, in order,
    read from the newest files alone; a file holding another day's rows or a file that
    is not a day's makes it split the whole table, with the same result."""
    from pandas.testing import assert_frame_equal

    from {{ cookiecutter.package_name }}.partitions import DayFiles, write_part
    from {{ cookiecutter.package_name }}.split import time_split

    contract = project_params.dataset
    frame = training_frame(tiny_raw, contract).sort_values(contract.timestamp, kind="stable")
    frame = frame.reset_index(drop=True)
    days = frame[contract.timestamp].dt.date
    folder = tmp_path / "training_set.parquet"
    parts = DayFiles(folder)
    for day in sorted(days.unique()):
        write_part(frame[days == day], parts.path(day))
    newest = max(days.unique())
    write_part(frame.head(0), parts.path(newest + dt.timedelta(days=1)))  # a day without rows
    paths = project_params.paths.model_copy(update={"training_set": folder})
    p = project_params.model_copy(update={"paths": paths, "split": split_config})

    def expected() -> pd.DataFrame:
        return time_split(pd.read_parquet(folder), split_config, contract).test

    read: list = []
    original = pd.read_parquet
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pd, "read_parquet", lambda path, **kw: read.append(path) or original(path, **kw))
        holdout = read_holdout(p)
    assert read == [[parts.path(d) for d in sorted(days.unique())[-split_config.test_days :]]]
    assert_frame_equal(holdout, expected())
    assert len(holdout) and holdout[contract.timestamp].dt.date.min() > min(days)

    stray = frame[days == min(days)].head(3)
    write_part(pd.concat([frame[days == newest], stray]), parts.path(newest))  # an older row
    assert_frame_equal(read_holdout(p), expected())
    write_part(frame[days == newest], parts.path(newest))
    write_part(stray, folder / "extra.parquet")  # not a day's file, but part of the table
    assert_frame_equal(read_holdout(p), expected())


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
    gate = CFG.model_copy(update={"absolute_minimums": {"roc_auc": 0.5}})
    params = promotion_params(root, project_params, tiny_raw, split_config, gate)
    # the tests' weakest model is a stump: on a column it splits, it scores every row of a
    # quantile bin alike (ROC AUC 0.5 in the bin). Slice by the contract's columns only.
    dataset = only_slices(params.dataset, params.dataset.slices)
    params = params.model_copy(update={"dataset": dataset})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.chdir(root)
        yield params


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
    assert report["infra_validation"] == {"enabled": False}  # off here: its own test module
    assert {"name": "infra", "passed": None}.items() <= report["checks"][-1].items()

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


def test_a_required_shadow_holds_a_passing_candidate_but_not_the_first_model(
    registry: Params, train_config: TrainConfig
) -> None:
    """With promote.rollout.require_shadow, a candidate that passes waits as `candidate`
    (decision awaiting_shadow) for `rollout promote` (test_rollout.py); the first model
    of a registered model has no champion to be shadowed beside and is promoted."""
    import mlflow

    gate = registry.promote.model_copy(
        update={"min_improvement": 0.0, "rollout": RolloutConfig(require_shadow=True)}
    )
    mlflow_cfg = registry.mlflow.model_copy(update={"registered_model": "shadowed-first"})
    p = registry.model_copy(update={"promote": gate, "mlflow": mlflow_cfg})

    train_and_log(p, train_config)
    first = promote(p)
    assert first["decision"] == "promoted", first["reasons"]
    train_and_log(p, train_config)  # the same model again: it passes (min_improvement 0)
    second = promote(p)
    assert (second["decision"], second["promoted"], second["champion_after"]) == (
        "awaiting_shadow",
        0,
        1,
    )
    assert second["reasons"][-1].startswith("promote.rollout.require_shadow: held as candidate")
    assert aliases(p) == {CHAMPION: "1", CANDIDATE: "2"}
    tags = mlflow.MlflowClient().get_model_version(p.mlflow.registered_model, "2").tags
    assert tags["promotion.decision"] == "awaiting_shadow"
    assert "previous_champion" not in tags  # set by `rollout promote` when champion moves


def test_promote_without_a_trained_model_names_the_stage(registry: Params, tmp_path: Path) -> None:
    p = registry.model_copy(
        update={"paths": registry.paths.model_copy(update={"model_dir": tmp_path / "models"})}
    )
    with pytest.raises(StageInputError, match="'train' stage"):
        promote(p)


def with_dataset(p: Params, **update: object) -> Params:
    return p.model_copy(update={"dataset": p.dataset.model_copy(update=update)})


def test_the_gate_checks_every_slice_column_or_none(registry: Params) -> None:
    import mlflow

    p = registry
    none = promote(with_dataset(p, slices=[]))
    names = [c["name"] for c in none["checks"]]
    assert "slices" in names and not any(n.startswith("slice.") for n in names)
    assert none["candidate"]["slices"] == {}

    extra = next((c for c in p.dataset.categorical if c not in p.dataset.slices), None)
    if extra is None:
        pytest.skip("every categorical column of this contract is a slice already")
    several = [*p.dataset.slices, extra]
    report = promote(with_dataset(p, slices=several))
    named = {name.split("=", 1)[0] for name in report["candidate"]["slices"]}
    assert named == set(several)  # every slice is named column=value
    version = str(report["candidate"]["version"])
    tags = mlflow.MlflowClient().get_model_version(p.mlflow.registered_model, version).tags
    for check in report["checks"]:  # the tag keys keep to the characters MLflow accepts
        assert "gate." + re.sub(r"[^\w.\- ]", "_", check["name"]) in tags
    assert any("=" in c["name"] for c in report["checks"])


def test_promote_refuses_a_model_of_other_features(registry: Params) -> None:
    from {{ cookiecutter.package_name }}.contract import NumericSpec
    from {{ cookiecutter.package_name }}.model import FeatureMismatchError

    grown = with_dataset(registry, numeric={**registry.dataset.numeric, "zz_new": NumericSpec()})
    with pytest.raises(FeatureMismatchError, match=r"it lacks: \['zz_new'\]"):
        promote(grown)
