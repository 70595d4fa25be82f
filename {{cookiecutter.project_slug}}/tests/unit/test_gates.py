"""Each gate rejects corrupted input naming the expectation that caught it (the raw gate,
which judges each daily batch, is tested in test_raw_gate.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.features import FEATURE_COLUMNS, build_features
from {{ cookiecutter.package_name }}.gates import GateReport, validate
from {{ cookiecutter.package_name }}.suite_bootstrap import profile_suite

from conftest import PROJECT_ROOT

SUITES = PROJECT_ROOT / "expectations"


def failed_types(report: GateReport) -> set[str]:
    return {f.expectation for f in report.failures}


def _set(
    column: str, value: object, rows: slice = slice(0, 5)
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def corrupt(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame[column] = frame[column].astype(object) if value is None else frame[column]
        frame.loc[frame.index[rows], column] = value
        return frame

    return corrupt


@pytest.fixture(scope="module")
def features(tiny_raw: pd.DataFrame) -> pd.DataFrame:
    return build_features(tiny_raw)


FEATURE_CORRUPTIONS = {
    "missing feature (schema skew)": (
        lambda f: f.drop(columns=["charges_per_gb"]),
        "expect_table_columns_to_match_ordered_list",
    ),
    "extra feature": (
        lambda f: f.assign(new_feature=1.0),
        "expect_table_columns_to_match_ordered_list",
    ),
    "reordered features": (
        lambda f: f[["customer_id", "event_timestamp", *reversed(FEATURE_COLUMNS)]],
        "expect_table_columns_to_match_ordered_list",
    ),
    "null feature": (_set("avg_monthly_spend", np.nan), "expect_column_values_to_not_be_null"),
    "infinite feature": (_set("charges_per_gb", np.inf), "expect_column_values_to_be_between"),
    "out-of-range engineered feature": (
        _set("log_total_charges", 99.0),
        "expect_column_values_to_be_between",
    ),
    "one-hot not binary": (_set("contract_one_year", 0.5), "expect_column_values_to_be_in_set"),
}


def test_good_features_pass(features: pd.DataFrame, tmp_path: Path) -> None:
    report = validate(features, SUITES / "features.json", "features", tmp_path)
    assert report.passed, report.render()


@pytest.mark.parametrize("case", list(FEATURE_CORRUPTIONS))
def test_features_gate_rejects_corruption(
    case: str, features: pd.DataFrame, tmp_path: Path
) -> None:
    corrupt, expected = FEATURE_CORRUPTIONS[case]
    report = validate(corrupt(features), SUITES / "features.json", "features", tmp_path)
    assert expected in failed_types(report), report.render()


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    score = rng.beta(1, 6, 2000)
    return pd.DataFrame({"score": score, "predicted": (score >= 0.4).astype("int64")})


PREDICTION_CORRUPTIONS = {
    "probability above 1": (_set("score", 1.7), "expect_column_values_to_be_between"),
    "null probability": (_set("score", np.nan), "expect_column_values_to_not_be_null"),
    "everyone flagged": (lambda f: f.assign(predicted=1), "expect_column_mean_to_be_between"),
    "label not 0/1": (_set("predicted", 2), "expect_column_values_to_be_in_set"),
    "no predictions": (lambda f: f.head(0), "expect_table_row_count_to_be_between"),
    "missing score column": (lambda f: f.drop(columns=["score"]), "expect_column_to_exist"),
}


def test_good_predictions_pass(predictions: pd.DataFrame, tmp_path: Path) -> None:
    report = validate(predictions, SUITES / "predictions.json", "predictions", tmp_path)
    assert report.passed, report.render()


@pytest.mark.parametrize("case", list(PREDICTION_CORRUPTIONS))
def test_predictions_gate_rejects_corruption(
    case: str, predictions: pd.DataFrame, tmp_path: Path
) -> None:
    corrupt, expected = PREDICTION_CORRUPTIONS[case]
    report = validate(corrupt(predictions), SUITES / "predictions.json", "predictions", tmp_path)
    assert expected in failed_types(report), report.render()


def test_bootstrapped_suite_passes_its_sample_and_fails_a_corrupted_copy(
    tiny_raw: pd.DataFrame, tmp_path: Path
) -> None:
    sample = tiny_raw.head(2000)
    suite = profile_suite(sample, "sample", keys=["customer_id", "event_timestamp"])
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(suite, default=str))
    assert validate(sample, path, "sample", tmp_path / "ok").passed
    broken = sample.assign(contract="weekly", tenure_months=sample["tenure_months"] + 10_000)
    report = validate(broken, path, "sample", tmp_path / "bad")
    assert {f.column for f in report.failures} >= {"contract", "tenure_months"}


def test_bootstrap_refuses_an_empty_sample() -> None:
    with pytest.raises(StageInputError, match="empty"):
        profile_suite(pd.DataFrame({"a": []}), "x")


def test_unreadable_suite_is_a_clear_error(tiny_raw: pd.DataFrame, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(StageInputError, match="not valid JSON"):
        validate(tiny_raw, bad, "raw", tmp_path)
    with pytest.raises(StageInputError, match="not found"):
        validate(tiny_raw, tmp_path / "missing.json", "raw", tmp_path)
