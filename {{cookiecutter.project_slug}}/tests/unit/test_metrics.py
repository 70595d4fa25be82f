"""Evaluation metrics and per-slice metrics over the contract's slice columns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_frame
from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.metrics import (
    brier_score,
    calibration_metrics,
    classification_metrics,
    evaluate,
    expected_calibration_error,
    reliability_curve,
    write_reports,
)
from {{ cookiecutter.package_name }}.slices import MISSING_SLICE, slice_rows

from conftest import training_frame

OTHER = DatasetContract.model_validate(
    {
        "entity": {"name": "account", "key": "account_ref", "dtype": "string"},
        "timestamp": "seen_at",
        "label": {"column": "defaulted", "positive": "yes"},
        "numeric": {"balance": {}},
        "categorical": {
            "region": {"values": ["north", "south"], "nullable": True},
            "tier": {"values": [1, 2]},
        },
        "slices": ["region", "tier"],
    }
)


def scored(
    contract: DatasetContract, tiny_window, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of `contract` as the training set holds them (features, label, slice columns)
    and scores that carry some signal."""
    test = training_frame(
        contract_frame(contract, tiny_window.dates()[:2], 200, seed=seed), contract
    )
    rng = np.random.default_rng(seed)
    y = test[contract.label.column].to_numpy()
    return test, np.clip(y * 0.3 + rng.random(len(y)) * 0.7, 0, 1)


def test_metrics_on_a_known_example() -> None:
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.4, 0.9])
    m = classification_metrics(y, scores, threshold=0.5)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)


def test_evaluation_writes_metrics_slices_and_plots(contract, tiny_window, tmp_path: Path) -> None:
    test, scores = scored(contract, tiny_window)
    result = evaluate(test, scores, 0.5, 0.5, {"f1": 2.0, "f2": 5.0}, contract, plot_points=50)
    assert result.metrics["roc_auc"] > result.metrics["baseline"]["roc_auc"] == 0.5
    bare = len(contract.slices) == 1 and not (contract.slice_bins or contract.slice_crosses)
    if bare:  # one slice column: slices are named by value
        values = {str(v) for v in test[contract.slices[0]].dropna().unique()}
        assert set(result.slices) == values
    dimensions = len(contract.slices) + len(contract.slice_bins) + len(contract.slice_crosses)
    assert len(result.slice_dimensions) == dimensions
    for names in result.slice_dimensions.values():  # each dimension splits every row
        assert sum(result.slices[n]["rows"] for n in names) == len(test)
    assert len(result.roc) <= 50
    assert result.importance["feature"].tolist() == ["f2", "f1"]
    paths = write_reports(result, tmp_path)
    assert json.loads(paths["metrics"].read_text())["roc_auc"] == pytest.approx(
        result.metrics["roc_auc"]
    )
    written = json.loads(paths["slices"].read_text())
    assert {k: v["rows"] for k, v in written["slices"].items()} == {
        k: v["rows"] for k, v in result.slices.items()
    }
    assert written["dimensions"] == result.slice_dimensions
    assert pd.read_csv(paths["confusion"]).shape == (len(test), 2)


def test_several_slice_columns_are_named_column_equals_value(tiny_window) -> None:
    test, scores = scored(OTHER, tiny_window)
    test.loc[:4, "region"] = None  # a nullable slice column: missing values are a slice too
    result = evaluate(test, scores, 0.5, 0.5, {}, OTHER)
    assert set(result.slices) == {
        "region=north",
        "region=south",
        f"region={MISSING_SLICE}",
        "tier=1",
        "tier=2",
    }
    assert result.slices[f"region={MISSING_SLICE}"]["rows"] == test["region"].isna().sum() >= 5
    north = (test["region"] == "north").to_numpy()
    assert result.slices["region=north"]["rows"] == north.sum()
    assert result.slices["region=north"]["positive_rate"] == pytest.approx(
        test.loc[north, OTHER.label.column].mean()
    )
    # integer codes read back as floats (a column with nulls) keep their names
    floats = test.assign(tier=test["tier"].astype("float64"))
    only_tier = OTHER.model_copy(update={"slices": ["tier"]})
    assert set(slice_rows(floats, only_tier).indices) == {"1", "2"}


def test_no_slices_means_no_slice_metrics(contract, tiny_window) -> None:
    no_slices = contract.model_copy(update={"slices": [], "slice_bins": {}, "slice_crosses": []})
    test, scores = scored(no_slices, tiny_window)
    result = evaluate(test, scores, 0.5, 0.5, {}, no_slices)
    assert result.slices == {}
    assert result.metrics["rows"] == len(test)


def test_a_missing_slice_column_is_named(tiny_window) -> None:
    test, scores = scored(OTHER, tiny_window)
    with pytest.raises(StageInputError, match=r"slice column 'tier' \(params.yaml: dataset.slices"):
        evaluate(test.drop(columns="tier"), scores, 0.5, 0.5, {}, OTHER)


def test_calibration_metrics_on_a_known_example() -> None:
    y = np.array([0, 0, 1, 1, 1])
    # bins of 0.1: [0.0, 0.1) [0.1, 0.2) [0.9, 1.0]
    scores = np.array([0.05, 0.15, 0.15, 0.95, 1.0])
    assert brier_score(y, scores) == pytest.approx((0.05**2 + 0.15**2 + 0.85**2 + 0.05**2) / 5)
    curve = reliability_curve(y, scores, bins=10)
    assert curve["bin_start"].tolist() == [0.0, 0.1, 0.9]
    assert curve["rows"].tolist() == [1, 2, 2]
    assert curve["positive_rate"].tolist() == [0.0, 0.5, 1.0]
    assert curve["mean_score"].tolist() == pytest.approx([0.05, 0.15, 0.975])
    # ECE: 1/5 x |0 - 0.05| + 2/5 x |0.5 - 0.15| + 2/5 x |1 - 0.975|
    expected = 0.2 * 0.05 + 0.4 * 0.35 + 0.4 * 0.025
    assert expected_calibration_error(y, scores, bins=10) == pytest.approx(expected)
    assert calibration_metrics(y, scores, 10) == {
        "brier": brier_score(y, scores),
        "ece": expected_calibration_error(y, scores, 10),
    }
    assert classification_metrics(y, scores, 0.5)["brier"] == brier_score(y, scores)
    perfect = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    assert brier_score(y, perfect) == 0.0 and expected_calibration_error(y, perfect) == 0.0
    assert np.isnan(brier_score(y[:0], scores[:0]))
    assert np.isnan(expected_calibration_error(y[:0], scores[:0]))


def test_evaluation_reports_calibration_before_and_after_and_shap(
    contract, tiny_window, tmp_path: Path
) -> None:
    test, raw = scored(contract, tiny_window)
    calibrated = raw * 0.5  # any other scores: evaluate reports both
    shap = {"f1": 0.1, "f2": 0.4}
    result = evaluate(
        test, calibrated, 0.25, 0.5, {}, contract, raw_scores=raw, shap=shap, calibration_bins=5
    )
    y = test[contract.label.column].to_numpy()
    metrics = result.metrics
    assert metrics["brier"] == pytest.approx(brier_score(y, calibrated))
    assert metrics["ece"] == pytest.approx(expected_calibration_error(y, calibrated, 5))
    assert metrics["uncalibrated"]["brier"] == pytest.approx(brier_score(y, raw))
    assert metrics["uncalibrated"]["ece"] == pytest.approx(expected_calibration_error(y, raw, 5))
    assert "brier" in metrics["baseline"]
    assert len(result.reliability) <= 5
    assert result.shap["feature"].tolist() == ["f2", "f1"]
    paths = write_reports(result, tmp_path)
    assert pd.read_csv(paths["shap"]).columns.tolist() == ["feature", "mean_abs_shap"]
    reliability = pd.read_csv(paths["reliability"])
    assert {"mean_score", "positive_rate", "rows"} <= set(reliability.columns)
    assert reliability["rows"].sum() == len(test)
    uncalibrated = evaluate(test, raw, 0.5, 0.5, {}, contract)  # no raw scores: the same
    assert uncalibrated.metrics["uncalibrated"]["brier"] == uncalibrated.metrics["brier"]
