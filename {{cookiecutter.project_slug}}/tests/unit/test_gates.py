"""The suites built from a dataset contract pass that contract's frames and reject each
corruption naming the expectation and column that caught it (the raw gate, which
judges each daily batch, is tested in test_raw_gate.py; the features gate, day by day,
here). The checked-in suites are the builders' output for the project's contract."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import Params, PathsConfig, Window
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_frame
from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.features import build_features
from {{ cookiecutter.package_name }}.gates import GateFailed, GateReport, validate
from {{ cookiecutter.package_name }}.partitions import DayFiles, write_part
from {{ cookiecutter.package_name }}.stages import validate_features
from {{ cookiecutter.package_name }}.suite_bootstrap import (
    contract_suites,
    features_suite,
    predictions_suite,
    profile_suite,
    raw_suite,
)

from conftest import PROJECT_ROOT

SUITES = PROJECT_ROOT / "expectations"
DAYS = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(6)]
Corruption = Callable[[pd.DataFrame, DatasetContract], pd.DataFrame]


def stored(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as a gate reads it back from a parquet batch file."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return pd.read_parquet(buffer)


@pytest.fixture(scope="module")
def table(any_contract: DatasetContract) -> pd.DataFrame:
    return stored(contract_frame(any_contract, DAYS, 300, seed=3))


def write(suite: dict, path: Path) -> Path:
    path.write_text(json.dumps(suite, default=str))
    return path


def caught(report: GateReport, expected: tuple[str, str | None]) -> bool:
    """Whether a critical failure of the expectation `expected` names its column (None: any)."""
    kind, column = expected
    return any(f.expectation == kind and column in (None, f.column) for f in report.failures)


def first_numeric(c: DatasetContract) -> str:
    return next(iter(c.numeric))


def first_categorical(c: DatasetContract) -> str:
    return next(iter(c.categorical))


def required(c: DatasetContract) -> str:
    """A feature column the contract declares not nullable (else the key)."""
    specs = {**c.numeric, **c.categorical}
    return next((col for col, spec in specs.items() if not spec.nullable), c.entity.key)


def type_check(c: DatasetContract, column: str) -> str:
    if column in c.nullable_columns:
        return "expect_column_values_to_be_in_type_list"
    return "expect_column_values_to_be_of_type"


def set_rows(frame: pd.DataFrame, column: str, value: object, rows: int = 5) -> pd.DataFrame:
    frame = frame.copy()
    if value is None or isinstance(value, str):
        frame[column] = frame[column].astype(object)
    frame.loc[frame.index[:rows], column] = value
    return frame


# --------------------------------------------------------------------------- raw suite

# Each corruption of a conformed table, and the expectation and column that must name it.
RAW_CORRUPTIONS: dict[str, tuple[Corruption, Callable[[DatasetContract], tuple[str, str]]]] = {
    "missing column": (
        lambda f, c: f.drop(columns=[first_numeric(c)]),
        lambda c: ("expect_table_columns_to_match_set", None),
    ),
    "extra column": (
        lambda f, c: f.assign(debug_flag=1),
        lambda c: ("expect_table_columns_to_match_set", None),
    ),
    "null key": (
        lambda f, c: set_rows(f, c.entity.key, None),
        lambda c: ("expect_column_values_to_not_be_null", c.entity.key),
    ),
    "null in a non-nullable feature column": (
        lambda f, c: set_rows(f, required(c), None),
        lambda c: ("expect_column_values_to_not_be_null", required(c)),
    ),
    "wrong dtype": (
        lambda f, c: f.assign(**{first_numeric(c): f[first_numeric(c)].astype(str)}),
        lambda c: (type_check(c, first_numeric(c)), first_numeric(c)),
    ),
    "unknown category": (
        lambda f, c: set_rows(f, first_categorical(c), "no-such-value"),
        lambda c: ("expect_column_values_to_be_in_set", first_categorical(c)),
    ),
    "duplicate key and timestamp": (
        lambda f, c: pd.concat([f, f.head(3)], ignore_index=True),
        lambda c: ("expect_compound_columns_to_be_unique", f"{c.entity.key},{c.timestamp}"),
    ),
    "label not 0/1": (
        lambda f, c: set_rows(f, c.label.column, 2),
        lambda c: ("expect_column_values_to_be_in_set", c.label.column),
    ),
    "negative value in a never-negative column": (
        lambda f, c: set_rows(f, first_numeric(c), -4.0),
        lambda c: ("expect_column_values_to_be_between", first_numeric(c)),
    ),
}


@pytest.fixture(scope="module")
def raw_suite_path(
    any_contract: DatasetContract, table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    suite = raw_suite(any_contract, table, len(DAYS))
    return write(suite, tmp_path_factory.mktemp("suites") / "raw.json")


def whole_table(path: Path) -> Path:
    """The raw suite without its per-batch $PARAMETER checks, to validate a whole table."""
    suite = json.loads(path.read_text())
    suite["expectations"] = [e for e in suite["expectations"] if "$PARAMETER" not in json.dumps(e)]
    return write(suite, path.with_name("raw-table.json"))


def test_the_raw_suite_is_the_contracts(
    any_contract: DatasetContract, raw_suite_path: Path
) -> None:
    suite = json.loads(raw_suite_path.read_text())
    expectations = suite["expectations"]
    kinds = {(e["type"], e["kwargs"].get("column")): e for e in expectations}
    columns = kinds[("expect_table_columns_to_match_set", None)]["kwargs"]["column_set"]
    assert columns == any_contract.raw_columns
    key = kinds[("expect_column_values_to_be_of_type", any_contract.entity.key)]["kwargs"]
    assert key["type_"] == ("int64" if any_contract.entity.dtype == "int" else "object")
    for column, spec in any_contract.categorical.items():
        in_set = kinds[("expect_column_values_to_be_in_set", column)]
        assert in_set["kwargs"]["value_set"] == list(spec.values)
        assert in_set.get("severity", "critical") == "critical"
        null = kinds.get(("expect_column_values_to_not_be_null", column))
        assert (null.get("severity", "critical") == "critical") != spec.nullable
        assert ("mostly" in null["kwargs"]) == spec.nullable
    label = kinds[("expect_column_values_to_be_in_set", any_contract.label.column)]
    assert label["kwargs"]["value_set"] == [0, 1]
    lower = [e["kwargs"].get("min_value") for e in expectations]
    assert {v["$PARAMETER"] for v in lower if isinstance(v, dict)} == {
        "min_rows",
        "day_start",
        "min_label_share",
    }
    for column in any_contract.numeric:  # a hard floor, and the data's range as a warning
        ranges = [
            e
            for e in expectations
            if e["type"] == "expect_column_values_to_be_between" and e["kwargs"]["column"] == column
        ]
        assert [e.get("severity", "critical") for e in ranges] == ["critical", "warning"]
        assert ranges[0]["kwargs"]["min_value"] == 0  # never negative in the table


def test_the_raw_suite_passes_its_table_and_each_day(
    any_contract: DatasetContract, table: pd.DataFrame, raw_suite_path: Path, tmp_path: Path
) -> None:
    report = validate(table, whole_table(raw_suite_path), "raw", tmp_path / "table")
    assert report.passed, report.render()
    day = DAYS[-1]
    batch = table.loc[table[any_contract.timestamp].dt.date == day]
    params = {
        "day_start": dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC),
        "day_end": dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC),
        "now": dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        "min_rows": 100,
        "max_rows": 10_000,
        "min_label_share": 0.0,
        "max_label_share": 1.0,
    }
    report = validate(batch, raw_suite_path, "raw", tmp_path / "batch", params)
    assert report.passed, report.render()


@pytest.mark.parametrize("case", list(RAW_CORRUPTIONS))
def test_the_raw_suite_rejects_each_corruption(
    case: str,
    any_contract: DatasetContract,
    table: pd.DataFrame,
    raw_suite_path: Path,
    tmp_path: Path,
) -> None:
    corrupt, expected = RAW_CORRUPTIONS[case]
    report = validate(corrupt(table, any_contract), whole_table(raw_suite_path), "raw", tmp_path)
    assert caught(report, expected(any_contract)), report.render()


def test_a_value_outside_the_profiled_range_is_a_warning(
    any_contract: DatasetContract, table: pd.DataFrame, raw_suite_path: Path, tmp_path: Path
) -> None:
    column = first_numeric(any_contract)
    high = table.assign(**{column: table[column] * 10})
    report = validate(high, whole_table(raw_suite_path), "raw", tmp_path)
    assert report.passed, report.render()
    assert ("expect_column_values_to_be_between", column) in {
        (w.expectation, w.column) for w in report.warnings
    }


def test_the_suites_refuse_a_table_that_is_not_the_contracts(
    any_contract: DatasetContract, table: pd.DataFrame
) -> None:
    column = first_numeric(any_contract)
    with pytest.raises(StageInputError, match=f"missing \\['{column}'\\]"):
        raw_suite(any_contract, table.drop(columns=[column]), len(DAYS))
    with pytest.raises(StageInputError, match="not declared \\['stray'\\]"):
        raw_suite(any_contract, table.assign(stray=1), len(DAYS))
    with pytest.raises(StageInputError, match="empty"):
        raw_suite(any_contract, table.head(0), len(DAYS))


# --------------------------------------------------------------------------- features suite


@pytest.fixture(scope="module")
def features(any_contract: DatasetContract, table: pd.DataFrame) -> pd.DataFrame:
    return build_features(table, any_contract)


@pytest.fixture(scope="module")
def features_suite_path(
    any_contract: DatasetContract, features: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    suite = features_suite(any_contract, features)
    return write(suite, tmp_path_factory.mktemp("suites") / "features.json")


def one_hot(c: DatasetContract) -> str:
    return c.one_hot_groups[first_categorical(c)][0]


FEATURE_CORRUPTIONS: dict[str, tuple[Corruption, Callable[[DatasetContract], tuple]]] = {
    "missing feature (schema skew)": (
        lambda f, c: f.drop(columns=[c.feature_columns[-1]]),
        lambda c: ("expect_table_columns_to_match_ordered_list", None),
    ),
    "extra feature": (
        lambda f, c: f.assign(new_feature=1.0),
        lambda c: ("expect_table_columns_to_match_ordered_list", None),
    ),
    "reordered features": (
        lambda f, c: f[[c.entity.key, c.timestamp, *reversed(c.feature_columns)]],
        lambda c: ("expect_table_columns_to_match_ordered_list", None),
    ),
    "null feature": (
        lambda f, c: set_rows(f, first_numeric(c), np.nan),
        lambda c: ("expect_column_values_to_not_be_null", first_numeric(c)),
    ),
    "infinite feature": (
        lambda f, c: set_rows(f, first_numeric(c), np.inf),
        lambda c: ("expect_column_values_to_be_between", first_numeric(c)),
    ),
    "one-hot not binary": (
        lambda f, c: set_rows(f, one_hot(c), 0.5),
        lambda c: ("expect_column_values_to_be_in_set", one_hot(c)),
    ),
    "feature of the wrong type": (
        lambda f, c: f.assign(**{one_hot(c): f[one_hot(c)].astype("int64")}),
        lambda c: ("expect_column_values_to_be_of_type", one_hot(c)),
    ),
    "duplicate key and timestamp": (
        lambda f, c: pd.concat([f, f.head(2)], ignore_index=True),
        lambda c: ("expect_compound_columns_to_be_unique", f"{c.entity.key},{c.timestamp}"),
    ),
}


def test_good_features_pass(
    features: pd.DataFrame, features_suite_path: Path, tmp_path: Path
) -> None:
    report = validate(features, features_suite_path, "features", tmp_path)
    assert report.passed, report.render()
    assert report.warnings == []


@pytest.mark.parametrize("case", list(FEATURE_CORRUPTIONS))
def test_the_features_suite_rejects_each_corruption(
    case: str,
    any_contract: DatasetContract,
    features: pd.DataFrame,
    features_suite_path: Path,
    tmp_path: Path,
) -> None:
    corrupt, expected = FEATURE_CORRUPTIONS[case]
    report = validate(corrupt(features, any_contract), features_suite_path, "features", tmp_path)
    assert caught(report, expected(any_contract)), report.render()


# --------------------------------------------------------------------------- features gate, day by day


@pytest.fixture
def feature_days(
    any_contract: DatasetContract,
    features: pd.DataFrame,
    features_suite_path: Path,
    project_params: Params,
    tmp_path: Path,
) -> PathsConfig:
    """The project's paths below tmp_path, the feature table written one part file a day
    (as featurize writes it) and the contract's features suite."""
    paths = project_params.paths
    paths = paths.model_copy(update={k: tmp_path / v for k, v in paths.model_dump().items()})
    table = DayFiles(paths.feature_table)
    for day, rows in features.groupby(features[any_contract.timestamp].dt.date):
        write_part(rows, table.path(day))
    paths.expectations.mkdir(parents=True)
    shutil.copy(features_suite_path, paths.expectations / "features.json")
    return paths


def gate_summary(paths: PathsConfig) -> dict:
    return json.loads((paths.gate_reports / "features" / "summary.json").read_text())


def test_the_features_gate_validates_each_day_once(
    feature_days: PathsConfig, any_contract: DatasetContract
) -> None:
    """Every day is judged on its own the first time; an unchanged day is not validated
    again; a day whose file changed is, and a bad row fails it by name."""
    window = Window(end_date=DAYS[-1], days=len(DAYS))
    first = validate_features.run(feature_days, window)
    assert first.passed and first.rows > 0, first.render()
    assert gate_summary(feature_days)["validated_batches"] == [d.isoformat() for d in DAYS]
    again = validate_features.run(feature_days, window)
    assert again.rows == 0 and gate_summary(feature_days)["validated_batches"] == []
    bad_day = DAYS[2]
    path = DayFiles(feature_days.feature_table).path(bad_day)
    write_part(set_rows(pd.read_parquet(path), first_numeric(any_contract), np.nan, rows=1), path)
    with pytest.raises(GateFailed) as failed:
        validate_features.run(feature_days, window)
    summary = gate_summary(feature_days)
    assert summary["validated_batches"] == [bad_day.isoformat()]
    assert len(summary["reused_batches"]) == len(DAYS) - 1
    [finding] = failed.value.report.failures
    assert (finding.batch, finding.column) == (bad_day.isoformat(), first_numeric(any_contract))
    assert finding.expectation == "expect_column_values_to_not_be_null"
    records = feature_days.gate_reports / "features" / "batches"
    assert (records / f"{bad_day.isoformat()}.result.json").is_file()


def test_the_features_gate_names_a_missing_day_and_forgets_expired_days(
    feature_days: PathsConfig,
) -> None:
    window = Window(end_date=DAYS[-1], days=len(DAYS))
    validate_features.run(feature_days, window)
    DayFiles(feature_days.feature_table).path(DAYS[-1]).unlink()
    with pytest.raises(GateFailed, match=f"batch {DAYS[-1].isoformat()}: expect_a_feature_file"):
        validate_features.run(feature_days, window)
    later = Window(end_date=DAYS[-2], days=len(DAYS) - 2)  # the first day left the window
    assert validate_features.run(feature_days, later).passed
    records = sorted(
        p.stem for p in (feature_days.gate_reports / "features" / "batches").glob("*.json")
    )
    assert records == [d.isoformat() for d in DAYS[1:-1]]


def test_the_features_gate_without_feature_files_says_what_to_run(
    feature_days: PathsConfig,
) -> None:
    DayFiles(feature_days.feature_table).clear()
    with pytest.raises(StageInputError, match="dvc repro featurize"):
        validate_features.run(feature_days, Window(end_date=DAYS[-1], days=len(DAYS)))


def test_the_features_suite_holds_the_contracts_features_in_order(
    any_contract: DatasetContract, features_suite_path: Path
) -> None:
    suite = json.loads(features_suite_path.read_text())
    first = suite["expectations"][0]
    assert first["type"] == "expect_table_columns_to_match_ordered_list"
    c = any_contract
    assert first["kwargs"]["column_list"] == [c.entity.key, c.timestamp, *c.feature_columns]
    binary = {
        e["kwargs"]["column"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set"
    }
    assert binary == {*c.missing_flags, *(f for g in c.one_hot_groups.values() for f in g)}


# --------------------------------------------------------------------------- predictions suite


@pytest.fixture(scope="module")
def predictions(any_contract: DatasetContract, table: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    score = rng.beta(1, 6, len(table))
    return table[[any_contract.entity.key, any_contract.timestamp]].assign(
        score=score, predicted=(score >= 0.4).astype("int64")
    )


PREDICTION_CORRUPTIONS: dict[str, tuple[Corruption, Callable[[DatasetContract], tuple]]] = {
    "probability above 1": (
        lambda f, c: set_rows(f, "score", 1.7),
        lambda c: ("expect_column_values_to_be_between", "score"),
    ),
    "null probability": (
        lambda f, c: set_rows(f, "score", np.nan),
        lambda c: ("expect_column_values_to_not_be_null", "score"),
    ),
    "everyone flagged": (
        lambda f, c: f.assign(predicted=1),
        lambda c: ("expect_column_mean_to_be_between", "predicted"),
    ),
    "label not 0/1": (
        lambda f, c: set_rows(f, "predicted", 2),
        lambda c: ("expect_column_values_to_be_in_set", "predicted"),
    ),
    "no predictions": (
        lambda f, c: f.head(0),
        lambda c: ("expect_table_row_count_to_be_between", None),
    ),
    "missing score column": (
        lambda f, c: f.drop(columns=["score"]),
        lambda c: ("expect_column_to_exist", "score"),
    ),
    "missing entity key": (
        lambda f, c: f.drop(columns=[c.entity.key]),
        lambda c: ("expect_column_to_exist", c.entity.key),
    ),
}


def test_good_predictions_pass(
    any_contract: DatasetContract, predictions: pd.DataFrame, tmp_path: Path
) -> None:
    path = write(predictions_suite(any_contract), tmp_path / "predictions.json")
    report = validate(predictions, path, "predictions", tmp_path / "report")
    assert report.passed, report.render()


@pytest.mark.parametrize("case", list(PREDICTION_CORRUPTIONS))
def test_the_predictions_suite_rejects_each_corruption(
    case: str, any_contract: DatasetContract, predictions: pd.DataFrame, tmp_path: Path
) -> None:
    corrupt, expected = PREDICTION_CORRUPTIONS[case]
    path = write(predictions_suite(any_contract), tmp_path / "predictions.json")
    report = validate(corrupt(predictions, any_contract), path, "predictions", tmp_path / "r")
    assert caught(report, expected(any_contract)), report.render()


def test_data_docs_are_rendered_again_only_when_they_would_change(
    any_contract: DatasetContract, predictions: pd.DataFrame, tmp_path: Path
) -> None:
    """The index is there after every run; clean runs of an unchanged suite leave it as
    it is; a frame with findings adds its page; the next clean run drops that page again;
    a changed suite is rendered again."""
    path = write(predictions_suite(any_contract), tmp_path / "predictions.json")
    report_dir = tmp_path / "report"
    docs = report_dir / "data_docs"
    pages = lambda: sorted(p.relative_to(docs) for p in docs.rglob("*.html"))  # noqa: E731

    assert validate(predictions, path, "predictions", report_dir).passed
    index = docs / "index.html"
    rendered = index.stat().st_mtime_ns
    first = pages()
    assert validate(predictions, path, "predictions", report_dir).passed
    assert index.stat().st_mtime_ns == rendered and pages() == first  # nothing to render

    index.unlink()
    validate(predictions, path, "predictions", report_dir)
    assert index.is_file() and pages() == first  # a missing index is rendered

    report = validate(predictions.head(0), path, "predictions", report_dir)
    assert not report.passed
    assert any(p.parts[0] == "validations" for p in pages())  # the failed frame's page
    validate(predictions, path, "predictions", report_dir)
    assert pages() == first  # rendered again: the earlier run's page is gone

    suite = json.loads(path.read_text())
    suite["meta"] = {**suite.get("meta", {}), "note": "edited"}
    write(suite, path)
    rendered = index.stat().st_mtime_ns
    validate(predictions, path, "predictions", report_dir)
    assert index.stat().st_mtime_ns != rendered  # the suite changed: rendered again


def test_the_predicted_share_bound_follows_the_positive_rate(contract: DatasetContract) -> None:
    def bounds(rate: float | None) -> tuple[float, float]:
        suite = predictions_suite(contract, rate)
        mean = next(
            e for e in suite["expectations"] if e["type"] == "expect_column_mean_to_be_between"
        )
        return mean["kwargs"]["min_value"], mean["kwargs"]["max_value"]

    assert bounds(None) == (0.001, 0.6)
    assert bounds(0.1) == (0.001, 0.6)
    assert bounds(0.3) == (0.001, 0.9)
    assert bounds(0.5) == (0.001, 0.99)


# --------------------------------------------------------------------------- the checked-in suites


def shape(suite: dict) -> set[tuple[str, str | None, str]]:
    """What a suite checks, without the numbers the data decides."""
    return {
        (e["type"], e["kwargs"].get("column"), e.get("severity", "critical"))
        for e in suite["expectations"]
    }


def test_the_checked_in_suites_are_the_builders_output_for_the_project_contract(
    contract: DatasetContract, tiny_raw: pd.DataFrame
) -> None:
    """`dataset init` writes these files from a demo window; on any rows of the project's
    contract the builders check the same things, on the same columns, at the same severity."""
    built = contract_suites(contract, tiny_raw, 24)
    for name, suite in built.items():
        checked_in = json.loads((SUITES / f"{name}.json").read_text())
        assert checked_in["name"] == name
        assert shape(checked_in) == shape(suite), name
        first, built_first = checked_in["expectations"][0], suite["expectations"][0]
        assert first["kwargs"] == built_first["kwargs"], f"{name}: the column set"
        warnings = [e for e in checked_in["expectations"] if e.get("severity") == "warning"]
        assert all(e["meta"].get("notes") for e in warnings), f"{name}: every warning says why"


# --------------------------------------------------------------------------- profiling a sample


def test_bootstrapped_suite_passes_its_sample_and_fails_a_corrupted_copy(
    contract: DatasetContract, tiny_raw: pd.DataFrame, tmp_path: Path
) -> None:
    sample = tiny_raw.head(2000)
    keys = [contract.entity.key, contract.timestamp]
    path = write(profile_suite(sample, "sample", keys=keys), tmp_path / "sample.json")
    assert validate(sample, path, "sample", tmp_path / "ok").passed
    category, number = first_categorical(contract), first_numeric(contract)
    broken = sample.assign(**{category: "no-such-value", number: sample[number] + 10_000})
    report = validate(broken, path, "sample", tmp_path / "bad")
    assert {f.column for f in report.failures} >= {category, number}


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
