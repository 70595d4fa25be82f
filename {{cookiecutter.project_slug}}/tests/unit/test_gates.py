"""Each gate rejects corrupted input naming the expectation that caught it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import ValidateRawConfig, Window
from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.features import FEATURE_COLUMNS, build_features
from {{ cookiecutter.package_name }}.gates import GateFailed, GateReport, enforce, raw_gate_parameters, validate
from {{ cookiecutter.package_name }}.suite_bootstrap import profile_suite

from conftest import PROJECT_ROOT

SUITES = PROJECT_ROOT / "expectations"
RAW_GATE = ValidateRawConfig(min_rows_per_day=100, max_rows_per_day=1_000_000)


@pytest.fixture(scope="module")
def raw_parameters(tiny_window: Window) -> dict:
    return raw_gate_parameters(tiny_window, RAW_GATE)


def run_raw(frame: pd.DataFrame, params: dict, tmp_path: Path) -> GateReport:
    return validate(frame, SUITES / "raw.json", "raw", tmp_path / "raw", params)


def failed_types(report: GateReport) -> set[str]:
    return {f.expectation for f in report.failures}


def test_good_raw_batches_pass(
    tiny_raw: pd.DataFrame, raw_parameters: dict, tmp_path: Path
) -> None:
    report = run_raw(tiny_raw, raw_parameters, tmp_path)
    assert report.passed, report.render()
    assert report.evaluated >= 30
    enforce(report)  # does not raise


def _set(
    column: str, value: object, rows: slice = slice(0, 5)
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def corrupt(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame[column] = frame[column].astype(object) if value is None else frame[column]
        frame.loc[frame.index[rows], column] = value
        return frame

    return corrupt


RAW_CORRUPTIONS = {
    "missing column": (
        lambda f: f.drop(columns=["tenure_months"]),
        {"expect_table_columns_to_match_set"},
        "tenure_months",
    ),
    "wrong dtype": (
        lambda f: f.assign(monthly_charges=f["monthly_charges"].astype(str)),
        {"expect_column_values_to_be_of_type"},
        "monthly_charges",
    ),
    "nulls in a key": (
        _set("customer_id", None),
        {"expect_column_values_to_not_be_null"},
        "customer_id",
    ),
    "duplicate keys": (
        lambda f: pd.concat([f, f.head(3)], ignore_index=True),
        {"expect_compound_columns_to_be_unique"},
        "customer_id,event_timestamp",
    ),
    "out-of-range value": (
        _set("tenure_months", -4),
        {"expect_column_values_to_be_between"},
        "tenure_months",
    ),
    "unknown category": (
        _set("contract", "weekly"),
        {"expect_column_values_to_be_in_set"},
        "contract",
    ),
    "future timestamps": (
        lambda f: f.assign(event_timestamp=f["event_timestamp"] + pd.Timedelta(days=3650)),
        {"expect_column_max_to_be_between", "expect_column_values_to_be_between"},
        "event_timestamp",
    ),
    "empty batch": (
        lambda f: f.head(0),
        {"expect_table_row_count_to_be_between"},
        None,
    ),
    "all-one-class labels": (
        lambda f: f.assign(churned=0),
        {"expect_column_mean_to_be_between"},
        "churned",
    ),
    "extra unexpected column": (
        lambda f: f.assign(debug_flag=1),
        {"expect_table_columns_to_match_set"},
        None,
    ),
}


@pytest.mark.parametrize("case", list(RAW_CORRUPTIONS))
def test_raw_gate_rejects_corruption(
    case: str, tiny_raw: pd.DataFrame, raw_parameters: dict, tmp_path: Path
) -> None:
    corrupt, expected, column = RAW_CORRUPTIONS[case]
    report = run_raw(corrupt(tiny_raw), raw_parameters, tmp_path)
    assert not report.passed
    assert expected <= failed_types(report), report.render()
    if column:
        assert column in {f.column for f in report.failures}, report.render()
    with pytest.raises(GateFailed) as raised:
        enforce(report)
    message = str(raised.value)
    assert "gate 'raw' FAILED" in message and "raw.json" in message
    assert next(iter(expected)) in message


def test_failure_names_examples_and_writes_reports(
    tiny_raw: pd.DataFrame, raw_parameters: dict, tmp_path: Path
) -> None:
    report = run_raw(_set("contract", "weekly")(tiny_raw), raw_parameters, tmp_path)
    text = report.render()
    assert "on column 'contract'" in text and "'weekly'" in text
    out = tmp_path / "raw"
    result = json.loads((out / "result.json").read_text())
    assert result["success"] is False
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is False and summary["failures"]
    index = (out / "data_docs" / "index.html").read_text()
    assert "<html" in index.lower()
    assert list((out / "data_docs" / "validations").rglob("*.html"))


def test_warning_is_reported_but_does_not_stop(
    tiny_raw: pd.DataFrame, raw_parameters: dict, tmp_path: Path
) -> None:
    frame = tiny_raw.copy()
    frame.loc[frame.index[: len(frame) // 5], "usage_gb_30d"] = np.nan  # 20% > the 5% tolerated
    report = run_raw(frame, raw_parameters, tmp_path)
    assert report.passed, report.render()
    assert {w.column for w in report.warnings} == {"usage_gb_30d"}
    assert (
        "WARNING  expect_column_values_to_not_be_null on column 'usage_gb_30d'" in report.render()
    )
    enforce(report)


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


def test_raw_parameters_follow_the_window(tiny_window: Window) -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    values = raw_gate_parameters(tiny_window, RAW_GATE, now=now)
    assert values["window_start"].date() == tiny_window.start_date
    assert values["window_end"].date() == tiny_window.end_date
    assert values["min_rows"] == 100 * tiny_window.days
    assert values["now"] == now
