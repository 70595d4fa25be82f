"""The raw gate judges each daily batch on its own: a bad newest day fails by name, however
large the window, and batches that passed before are not validated again. It holds for
any dataset contract: the suite is built for the contract, the label column is its."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.batches import batch_path
from {{ cookiecutter.package_name }}.config import Params, PathsConfig, ValidateRawConfig, Window
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_day, contract_frame
from {{ cookiecutter.package_name }}.files import write_parquet
from {{ cookiecutter.package_name }}.gates import GateFailed, GateReport, enforce
from {{ cookiecutter.package_name }}.raw_gate import batch_parameters, plausible_label_share, validate_window
from {{ cookiecutter.package_name }}.suite_bootstrap import profile_suite, raw_suite

CFG = ValidateRawConfig(min_rows_per_day=100, max_rows_per_day=1_000_000)
WINDOW = Window(end_date=dt.date(2026, 3, 31), days=8)
ROWS = 300


def paths_under(root: Path, project_params: Params) -> PathsConfig:
    """The project's paths below `root` (the suites too)."""
    paths = project_params.paths
    return paths.model_copy(update={k: root / v for k, v in paths.model_dump().items()})


def day_batch(contract: DatasetContract, day: dt.date) -> pd.DataFrame:
    return contract_day(contract, day, ROWS, seed=5)


@pytest.fixture(scope="module")
def validated(
    tmp_path_factory: pytest.TempPathFactory, any_contract: DatasetContract, project_params: Params
) -> Path:
    """A folder with the window's good batches, the contract's raw suite built from them,
    and the gate's verdicts recorded once."""
    root = tmp_path_factory.mktemp("raw-gate")
    paths = paths_under(root, project_params)
    for day in WINDOW.dates():
        write_parquet(day_batch(any_contract, day), batch_path(paths.raw, day))
    table = contract_frame(any_contract, WINDOW.dates(), ROWS, seed=5)
    suite = raw_suite(any_contract, table, WINDOW.days)
    paths.expectations.mkdir(parents=True)
    (paths.expectations / "raw.json").write_text(json.dumps(suite, default=str))
    report = validate_window(paths, WINDOW, CFG, any_contract)
    assert report.passed, report.render()
    return root


@pytest.fixture
def project(validated: Path, tmp_path: Path, project_params: Params) -> PathsConfig:
    """A copy of the validated folder for one test to change."""
    shutil.copytree(validated, tmp_path / "project")
    return paths_under(tmp_path / "project", project_params)


def summary(paths: PathsConfig) -> dict:
    return json.loads((paths.gate_reports / "raw" / "summary.json").read_text())


def test_first_run_validates_and_records_every_batch(validated: Path) -> None:
    records = validated / "reports" / "gates" / "raw" / "batches"
    assert {p.stem for p in records.glob("*.json")} == {d.isoformat() for d in WINDOW.dates()}
    first = json.loads((validated / "reports/gates/raw/summary.json").read_text())
    assert len(first["validated_batches"]) == WINDOW.days
    assert (validated / "reports/gates/raw/data_docs/index.html").is_file()


def test_an_unchanged_window_validates_nothing_again(
    project: PathsConfig, any_contract: DatasetContract
) -> None:
    report = validate_window(project, WINDOW, CFG, any_contract)
    assert report.passed and report.rows == 0
    assert summary(project)["validated_batches"] == []
    assert len(summary(project)["reused_batches"]) == WINDOW.days


def test_the_next_day_validates_only_the_new_batch(
    project: PathsConfig, any_contract: DatasetContract
) -> None:
    tomorrow = Window(end_date=WINDOW.end_date + dt.timedelta(days=1), days=WINDOW.days)
    write_parquet(
        day_batch(any_contract, tomorrow.end_date), batch_path(project.raw, tomorrow.end_date)
    )
    report = validate_window(project, tomorrow, CFG, any_contract)
    assert report.passed, report.render()
    assert summary(project)["validated_batches"] == [tomorrow.end_date.isoformat()]
    gone = project.gate_reports / "raw" / "batches" / f"{WINDOW.start_date}.json"
    assert not gone.exists(), "the day that left the window is forgotten"


def test_the_label_rate_is_summed_from_the_records_of_unchanged_batches(
    project: PathsConfig, any_contract: DatasetContract, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each record keeps its batch's rows and positives (as read from the file); the next
    day reads the label column of the new batch alone, and judges it by the same rate."""
    from {{ cookiecutter.package_name }} import raw_gate

    label = any_contract.label.column
    records = project.gate_reports / "raw" / "batches"
    for day in WINDOW.dates():
        record = json.loads((records / f"{day.isoformat()}.json").read_text())
        counted = raw_gate._label_counts(batch_path(project.raw, day), label)
        assert (record["rows"], record["positives"]) == counted

    tomorrow = Window(end_date=WINDOW.end_date + dt.timedelta(days=1), days=WINDOW.days)
    write_parquet(
        day_batch(any_contract, tomorrow.end_date), batch_path(project.raw, tomorrow.end_date)
    )
    read: list[Path] = []
    counts = raw_gate._label_counts
    monkeypatch.setattr(raw_gate, "_label_counts", lambda p, c: read.append(p) or counts(p, c))
    shares: list[tuple[float, float]] = []
    batch_values = raw_gate.batch_parameters

    def recorded(
        day: dt.date, cfg: ValidateRawConfig, share: tuple[float, float], now: dt.datetime
    ) -> dict:
        shares.append(share)
        return batch_values(day, cfg, share, now)

    monkeypatch.setattr(raw_gate, "batch_parameters", recorded)
    assert validate_window(project, tomorrow, CFG, any_contract).passed
    assert read == [batch_path(project.raw, tomorrow.end_date)]
    files = [batch_path(project.raw, d) for d in tomorrow.dates()]
    rows, positives = (sum(c) for c in zip(*(counts(f, label) for f in files), strict=True))
    assert shares == [plausible_label_share(ROWS, positives / rows, CFG.label_share_alpha)]

    older = records / f"{tomorrow.start_date.isoformat()}.json"  # a record without them
    older.write_text(
        json.dumps({k: v for k, v in json.loads(older.read_text()).items() if k != "positives"})
    )
    read.clear()
    assert validate_window(project, tomorrow, CFG, any_contract).passed
    assert read == [batch_path(project.raw, tomorrow.start_date)]
    assert json.loads(older.read_text())["positives"] == counts(read[0], label)[1]


Corruption = Callable[[pd.DataFrame, DatasetContract], pd.DataFrame]


def _set(frame: pd.DataFrame, column: str, value: object, share: float = 0.05) -> pd.DataFrame:
    frame = frame.copy()
    if value is None or isinstance(value, str):
        frame[column] = frame[column].astype(object)
    frame.loc[frame.index[: max(1, int(len(frame) * share))], column] = value
    return frame


def numeric(c: DatasetContract) -> str:
    """A numeric column the contract declares not nullable."""
    return next(col for col, spec in c.numeric.items() if not spec.nullable)


def category(c: DatasetContract) -> str:
    return next(iter(c.categorical))


def unknown_value(c: DatasetContract) -> object:
    """A value outside the first categorical's vocabulary, of the vocabulary's type."""
    values = c.categorical[category(c)].values
    if all(isinstance(v, int) for v in values):
        return max(values) + 100  # an integer code nobody declared
    return "no-such-value"


# Each kind of corrupted newest batch, and the expectations that must name it.
NEWEST_BATCH_CORRUPTIONS: dict[str, tuple[Corruption, set[str]]] = {
    "empty": (lambda f, c: f.head(0), {"expect_table_row_count_to_be_between"}),
    "emptied to a few rows": (lambda f, c: f.head(20), {"expect_table_row_count_to_be_between"}),
    "missing column": (
        lambda f, c: f.drop(columns=[numeric(c)]),
        {"expect_table_columns_to_match_set"},
    ),
    "extra column": (lambda f, c: f.assign(debug_flag=1), {"expect_table_columns_to_match_set"}),
    "nulls in a key": (
        lambda f, c: _set(f, c.entity.key, None),
        {"expect_column_values_to_not_be_null"},
    ),
    "20% nulls in a non-nullable column": (
        lambda f, c: _set(f, numeric(c), np.nan, share=0.2),
        {"expect_column_values_to_not_be_null"},
    ),
    "wrong dtype": (
        lambda f, c: f.assign(**{numeric(c): f[numeric(c)].astype(str)}),
        {"expect_column_values_to_be_of_type"},
    ),
    "duplicates": (
        lambda f, c: pd.concat([f, f.head(3)], ignore_index=True),
        {"expect_compound_columns_to_be_unique"},
    ),
    "negative values": (
        lambda f, c: _set(f, numeric(c), -4.0),
        {"expect_column_values_to_be_between"},
    ),
    "unknown category": (
        lambda f, c: _set(f, category(c), unknown_value(c)),
        {"expect_column_values_to_be_in_set"},
    ),
    "future timestamps": (
        lambda f, c: f.assign(**{c.timestamp: f[c.timestamp] + pd.Timedelta(days=3650)}),
        {"expect_column_max_to_be_between", "expect_column_values_to_be_between"},
    ),
    "one label": (
        lambda f, c: f.assign(**{c.label.column: 0}),
        {"expect_column_mean_to_be_between"},
    ),
    "label not 0/1": (
        lambda f, c: _set(f, c.label.column, 2),
        {"expect_column_values_to_be_in_set"},
    ),
}


@pytest.mark.parametrize("case", list(NEWEST_BATCH_CORRUPTIONS))
def test_a_corrupted_newest_batch_fails_by_expectation_and_day(
    case: str, project: PathsConfig, any_contract: DatasetContract
) -> None:
    corrupt, expected = NEWEST_BATCH_CORRUPTIONS[case]
    newest = batch_path(project.raw, WINDOW.end_date)
    write_parquet(corrupt(pd.read_parquet(newest), any_contract), newest)
    report = validate_window(project, WINDOW, CFG, any_contract)
    day = WINDOW.end_date.isoformat()
    assert not report.passed
    assert expected <= {f.expectation for f in report.failures}, report.render()
    assert {f.batch for f in report.failures} == {day}
    assert summary(project)["validated_batches"] == [day]  # the rest passed before
    with pytest.raises(GateFailed) as raised:
        enforce(report)
    assert f"batch {day}: {next(iter(expected))}" in str(raised.value)
    assert "batches/<day>.result.json" in str(raised.value)
    assert (project.gate_reports / "raw" / "batches" / f"{day}.result.json").is_file()


def test_a_missing_day_fails_naming_it(project: PathsConfig, any_contract: DatasetContract) -> None:
    day = WINDOW.start_date + dt.timedelta(days=3)
    batch_path(project.raw, day).unlink()
    report = validate_window(project, WINDOW, CFG, any_contract)
    assert [(f.expectation, f.batch) for f in report.failures] == [
        ("expect_a_batch_for_every_day", day.isoformat())
    ]


def test_a_window_of_one_label_class_fails_naming_the_label_column(
    project: PathsConfig, any_contract: DatasetContract
) -> None:
    label = any_contract.label.column
    for day in WINDOW.dates():
        path = batch_path(project.raw, day)
        write_parquet(pd.read_parquet(path).assign(**{label: 0}), path)
    report = validate_window(project, WINDOW, CFG, any_contract)
    window_level = [f for f in report.failures if f.batch is None]
    assert [(f.expectation, f.column) for f in window_level] == [
        ("expect_window_to_hold_both_label_classes", label)
    ]


def test_a_batch_that_failed_is_validated_again_once_fixed(
    project: PathsConfig, any_contract: DatasetContract
) -> None:
    newest = batch_path(project.raw, WINDOW.end_date)
    good = pd.read_parquet(newest)
    write_parquet(good.head(0), newest)
    assert not validate_window(project, WINDOW, CFG, any_contract).passed
    write_parquet(good, newest)
    report: GateReport = validate_window(project, WINDOW, CFG, any_contract)
    assert report.passed, report.render()
    assert summary(project)["validated_batches"] == [WINDOW.end_date.isoformat()]


def test_warnings_are_reported_and_do_not_stop(
    project: PathsConfig, any_contract: DatasetContract
) -> None:
    newest = batch_path(project.raw, WINDOW.end_date)
    frame = pd.read_parquet(newest)
    column = numeric(any_contract)
    frame[column] = frame[column] * 10  # far above the profiled range and daily means
    for nullable in any_contract.nullable_columns:  # 40% missing: far below the usual share
        frame = _set(frame, nullable, None if nullable in any_contract.categorical else np.nan, 0.4)
    write_parquet(frame, newest)
    report = validate_window(project, WINDOW, CFG, any_contract)
    assert report.passed, report.render()
    warned = {(w.expectation, w.column) for w in report.warnings}
    assert {
        ("expect_column_values_to_be_between", column),
        ("expect_column_mean_to_be_between", column),
    } <= warned
    for nullable in any_contract.nullable_columns:
        assert ("expect_column_values_to_not_be_null", nullable) in warned
    assert {w.batch for w in report.warnings} == {WINDOW.end_date.isoformat()}
    enforce(report)  # does not raise


def test_the_plausible_label_share_follows_the_window_rate() -> None:
    low, high = plausible_label_share(300, 0.09, 1e-6)
    assert 0.0 < low < 0.09 < high < 0.3
    assert plausible_label_share(0, 0.09, 1e-6) == (0.0, 1.0)
    narrow = plausible_label_share(30_000, 0.09, 1e-6)
    assert low < narrow[0] < 0.09 < narrow[1] < high  # larger days, tighter band


def test_batch_parameters_are_the_days_own() -> None:
    day = dt.date(2026, 3, 31)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    values = batch_parameters(day, CFG, (0.01, 0.2), now)
    assert values["day_start"] == dt.datetime(2026, 3, 31, tzinfo=dt.UTC)
    assert values["day_end"].date() == day and values["day_end"].hour == 23
    assert (values["min_rows"], values["max_rows"]) == (100, 1_000_000)
    assert (values["min_label_share"], values["max_label_share"], values["now"]) == (0.01, 0.2, now)


def test_a_suite_profiled_from_a_sample_gates_each_batch(
    project: PathsConfig, any_contract: DatasetContract, tmp_path: Path
) -> None:
    """`expectations init --timestamp --label` writes a suite the raw gate can use as is."""
    c = any_contract
    table = pd.concat([pd.read_parquet(batch_path(project.raw, d)) for d in WINDOW.dates()])
    keys = [c.entity.key, c.timestamp]
    suite = profile_suite(table, "raw", keys, timestamp=c.timestamp, label=c.label.column)
    suites = tmp_path / "expectations"
    suites.mkdir()
    (suites / "raw.json").write_text(json.dumps(suite, default=str))
    paths = project.model_copy(update={"expectations": suites})
    report = validate_window(paths, WINDOW, CFG, c)
    assert report.passed, report.render()
    assert len(summary(paths)["validated_batches"]) == WINDOW.days  # a new suite
    newest = batch_path(paths.raw, WINDOW.end_date)
    write_parquet(pd.read_parquet(newest).head(20), newest)
    failed = validate_window(paths, WINDOW, CFG, c)
    assert {(f.expectation, f.batch) for f in failed.failures} == {
        ("expect_table_row_count_to_be_between", WINDOW.end_date.isoformat())
    }
