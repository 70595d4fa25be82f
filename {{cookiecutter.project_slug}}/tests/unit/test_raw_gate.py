"""The raw gate judges each daily batch on its own: a bad newest day fails by name, however
large the window, and batches that passed before are not validated again."""

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
from {{ cookiecutter.package_name }}.config import IngestConfig, Params, PathsConfig, ValidateRawConfig, Window
from {{ cookiecutter.package_name }}.features import LABEL
from {{ cookiecutter.package_name }}.files import write_parquet
from {{ cookiecutter.package_name }}.gates import GateFailed, GateReport, enforce
from {{ cookiecutter.package_name }}.raw_gate import batch_parameters, plausible_label_share, validate_window
from {{ cookiecutter.package_name }}.stages.ingest import fetch_batch

from conftest import PROJECT_ROOT

CFG = ValidateRawConfig(min_rows_per_day=100, max_rows_per_day=1_000_000)


def paths_under(root: Path, project_params: Params) -> PathsConfig:
    """The project's paths below `root`, with the project's own suites."""
    paths = project_params.paths
    moved = {k: root / v for k, v in paths.model_dump().items()}
    return paths.model_copy(update={**moved, "expectations": PROJECT_ROOT / paths.expectations})


@pytest.fixture(scope="module")
def validated(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_window: Window,
    tiny_ingest: IngestConfig,
    project_params: Params,
) -> Path:
    """A folder whose window of good batches passed the gate once (verdicts recorded)."""
    root = tmp_path_factory.mktemp("raw-gate")
    paths = paths_under(root, project_params)
    for day in tiny_window.dates():
        write_parquet(fetch_batch(day, tiny_ingest), batch_path(paths.raw, day))
    report = validate_window(paths, tiny_window, CFG)
    assert report.passed, report.render()
    return root


@pytest.fixture
def project(validated: Path, tmp_path: Path, project_params: Params) -> PathsConfig:
    """A copy of the validated folder for one test to change."""
    shutil.copytree(validated, tmp_path / "project")
    return paths_under(tmp_path / "project", project_params)


def summary(paths: PathsConfig) -> dict:
    return json.loads((paths.gate_reports / "raw" / "summary.json").read_text())


def test_first_run_validates_and_records_every_batch(validated: Path, tiny_window: Window) -> None:
    records = validated / "reports" / "gates" / "raw" / "batches"
    assert {p.stem for p in records.glob("*.json")} == {d.isoformat() for d in tiny_window.dates()}
    first = json.loads((validated / "reports/gates/raw/summary.json").read_text())
    assert len(first["validated_batches"]) == tiny_window.days
    assert (validated / "reports/gates/raw/data_docs/index.html").is_file()


def test_an_unchanged_window_validates_nothing_again(
    project: PathsConfig, tiny_window: Window
) -> None:
    report = validate_window(project, tiny_window, CFG)
    assert report.passed and report.rows == 0
    assert summary(project)["validated_batches"] == []
    assert len(summary(project)["reused_batches"]) == tiny_window.days


def test_the_next_day_validates_only_the_new_batch(
    project: PathsConfig, tiny_window: Window, tiny_ingest: IngestConfig
) -> None:
    tomorrow = Window(end_date=tiny_window.end_date + dt.timedelta(days=1), days=tiny_window.days)
    write_parquet(
        fetch_batch(tomorrow.end_date, tiny_ingest), batch_path(project.raw, tomorrow.end_date)
    )
    report = validate_window(project, tomorrow, CFG)
    assert report.passed, report.render()
    assert summary(project)["validated_batches"] == [tomorrow.end_date.isoformat()]
    gone = project.gate_reports / "raw" / "batches" / f"{tiny_window.start_date}.json"
    assert not gone.exists(), "the day that left the window is forgotten"


def _set(column: str, value: object, share: float = 0.05) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def corrupt(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        if value is None:
            frame[column] = frame[column].astype(object)
        frame.loc[frame.index[: max(1, int(len(frame) * share))], column] = value
        return frame

    return corrupt


# Each kind of corrupted newest batch, and the expectations that must name it.
NEWEST_BATCH_CORRUPTIONS = {
    "empty": (lambda f: f.head(0), {"expect_table_row_count_to_be_between"}),
    "emptied to a few rows": (lambda f: f.head(20), {"expect_table_row_count_to_be_between"}),
    "missing column": (
        lambda f: f.drop(columns=["monthly_charges"]),
        {"expect_table_columns_to_match_set"},
    ),
    "extra column": (lambda f: f.assign(debug_flag=1), {"expect_table_columns_to_match_set"}),
    "nulls in a key": (_set("customer_id", None), {"expect_column_values_to_not_be_null"}),
    "20% nulls in a numeric column": (
        _set("monthly_charges", np.nan, share=0.2),
        {"expect_column_values_to_not_be_null"},
    ),
    "wrong dtype": (
        lambda f: f.assign(monthly_charges=f["monthly_charges"].astype(str)),
        {"expect_column_values_to_be_of_type"},
    ),
    "duplicates": (
        lambda f: pd.concat([f, f.head(3)], ignore_index=True),
        {"expect_compound_columns_to_be_unique"},
    ),
    "out of range": (_set("tenure_months", -4), {"expect_column_values_to_be_between"}),
    "unknown category": (_set("contract", "weekly"), {"expect_column_values_to_be_in_set"}),
    "future timestamps": (
        lambda f: f.assign(event_timestamp=f["event_timestamp"] + pd.Timedelta(days=3650)),
        {"expect_column_max_to_be_between", "expect_column_values_to_be_between"},
    ),
    "one label": (lambda f: f.assign(**{LABEL: 0}), {"expect_column_mean_to_be_between"}),
}


@pytest.mark.parametrize("case", list(NEWEST_BATCH_CORRUPTIONS))
def test_a_corrupted_newest_batch_fails_by_expectation_and_day(
    case: str, project: PathsConfig, tiny_window: Window
) -> None:
    corrupt, expected = NEWEST_BATCH_CORRUPTIONS[case]
    newest = batch_path(project.raw, tiny_window.end_date)
    write_parquet(corrupt(pd.read_parquet(newest)), newest)
    report = validate_window(project, tiny_window, CFG)
    day = tiny_window.end_date.isoformat()
    assert not report.passed
    assert expected <= {f.expectation for f in report.failures}, report.render()
    assert {f.batch for f in report.failures} == {day}
    assert summary(project)["validated_batches"] == [day]  # the rest passed before
    with pytest.raises(GateFailed) as raised:
        enforce(report)
    assert f"batch {day}: {next(iter(expected))}" in str(raised.value)
    assert "batches/<day>.result.json" in str(raised.value)
    assert (project.gate_reports / "raw" / "batches" / f"{day}.result.json").is_file()


def test_a_missing_day_fails_naming_it(project: PathsConfig, tiny_window: Window) -> None:
    day = tiny_window.start_date + dt.timedelta(days=3)
    batch_path(project.raw, day).unlink()
    report = validate_window(project, tiny_window, CFG)
    assert [(f.expectation, f.batch) for f in report.failures] == [
        ("expect_a_batch_for_every_day", day.isoformat())
    ]


def test_a_batch_that_failed_is_validated_again_once_fixed(
    project: PathsConfig, tiny_window: Window
) -> None:
    newest = batch_path(project.raw, tiny_window.end_date)
    good = pd.read_parquet(newest)
    write_parquet(good.head(0), newest)
    assert not validate_window(project, tiny_window, CFG).passed
    write_parquet(good, newest)
    report: GateReport = validate_window(project, tiny_window, CFG)
    assert report.passed, report.render()
    assert summary(project)["validated_batches"] == [tiny_window.end_date.isoformat()]


def test_a_warning_is_reported_and_does_not_stop(project: PathsConfig, tiny_window: Window) -> None:
    newest = batch_path(project.raw, tiny_window.end_date)
    frame = pd.read_parquet(newest)
    frame.loc[frame.index[: len(frame) // 5], "usage_gb_30d"] = np.nan  # 20% > the 5% tolerated
    write_parquet(frame, newest)
    report = validate_window(project, tiny_window, CFG)
    assert report.passed, report.render()
    assert [(w.column, w.batch) for w in report.warnings] == [
        ("usage_gb_30d", tiny_window.end_date.isoformat())
    ]
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


def test_a_suite_bootstrapped_from_the_window_gates_each_batch(
    project: PathsConfig, tiny_window: Window, tiny_raw: pd.DataFrame, tmp_path: Path
) -> None:
    """`expectations init --timestamp --label` writes a suite the raw gate can use as is."""
    from {{ cookiecutter.package_name }}.features import ENTITY, TIMESTAMP
    from {{ cookiecutter.package_name }}.suite_bootstrap import profile_suite

    suite = profile_suite(tiny_raw, "raw", [ENTITY, TIMESTAMP], timestamp=TIMESTAMP, label=LABEL)
    suites = tmp_path / "expectations"
    suites.mkdir()
    (suites / "raw.json").write_text(json.dumps(suite, default=str))
    paths = project.model_copy(update={"expectations": suites})
    report = validate_window(paths, tiny_window, CFG)
    assert report.passed, report.render()
    assert len(summary(paths)["validated_batches"]) == tiny_window.days  # a new suite
    newest = batch_path(paths.raw, tiny_window.end_date)
    write_parquet(pd.read_parquet(newest).head(20), newest)
    failed = validate_window(paths, tiny_window, CFG)
    assert {(f.expectation, f.batch) for f in failed.failures} == {
        ("expect_table_row_count_to_be_between", tiny_window.end_date.isoformat())
    }
