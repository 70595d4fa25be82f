"""A day-by-day gate judges the suite's row-level expectations once on several days' rows
together only where that gives every day its own verdict: a bad day among good ones
fails by name exactly as when each day is validated alone, a share (`mostly`) or a column
type is never judged on the days together, and memory stays bounded by `union_bytes`."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }} import raw_gate
from {{ cookiecutter.package_name }}.batches import batch_path
from {{ cookiecutter.package_name }}.config import Params, PathsConfig, ValidateRawConfig, Window
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_day, contract_frame
from {{ cookiecutter.package_name }}.day_gate import DailyGate
from {{ cookiecutter.package_name }}.files import write_parquet
from {{ cookiecutter.package_name }}.gates import GateReport
from {{ cookiecutter.package_name }}.row_checks import data_bytes, groups, judged_row_by_row, same_columns
from {{ cookiecutter.package_name }}.suite_bootstrap import raw_suite

CFG = ValidateRawConfig(min_rows_per_day=100, max_rows_per_day=1_000_000)
WINDOW = Window(end_date=dt.date(2026, 3, 31), days=6)
ROWS = 300
BAD_DAY = WINDOW.start_date + dt.timedelta(days=2)


def numeric(c: DatasetContract) -> str:
    """A numeric column the contract declares not nullable."""
    return next(col for col, spec in c.numeric.items() if not spec.nullable)


def other_numeric_type(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The column stored as the other numeric type (int64 <-> float64), same values: the
    days' rows together would all take float64."""
    kind = "float64" if frame[column].dtype == "int64" else "int64"
    return frame.assign(**{column: frame[column].round().astype(kind)})


def with_nulls(frame: pd.DataFrame, column: str, share: float) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype("float64")
    frame.loc[frame.index[: int(len(frame) * share)], column] = np.nan
    return frame


def unknown_category(frame: pd.DataFrame, c: DatasetContract) -> pd.DataFrame:
    """The first categorical column's first rows hold a value outside its vocabulary."""
    column = next(iter(c.categorical))
    values = c.categorical[column].values
    unknown = max(values) + 100 if all(isinstance(v, int) for v in values) else "no-such-value"
    frame = frame.copy()
    frame.loc[frame.index[:5], column] = unknown
    return frame


# A bad day among good ones, as each kind of finding (row-level, per day, column types),
# and on how many days the row-level checks then pass on the days' rows together.
BAD_DAYS: dict[str, tuple[Callable[[pd.DataFrame, DatasetContract], pd.DataFrame], int]] = {
    "nulls in a non-nullable column": (lambda f, c: with_nulls(f, numeric(c), 0.2), 0),
    "unknown category": (unknown_category, 0),
    "label not 0/1": (
        lambda f, c: f.assign(**{c.label.column: f[c.label.column].replace(1, 2)}),
        0,
    ),
    "another numeric type": (lambda f, c: other_numeric_type(f, numeric(c)), 0),
    "text in a numeric column": (
        lambda f, c: f.assign(**{numeric(c): f[numeric(c)].astype(str)}),
        0,
    ),
    "too few rows": (lambda f, c: f.head(20), WINDOW.days),  # a per-day expectation
}


def paths_under(root: Path, project_params: Params) -> PathsConfig:
    paths = project_params.paths
    return paths.model_copy(update={k: root / v for k, v in paths.model_dump().items()})


@pytest.fixture(scope="module")
def good_days(any_contract: DatasetContract) -> dict[dt.date, pd.DataFrame]:
    return {day: contract_day(any_contract, day, ROWS, seed=7) for day in WINDOW.dates()}


def write_window(
    root: Path, params: Params, contract: DatasetContract, days: dict[dt.date, pd.DataFrame]
) -> PathsConfig:
    """The days as raw batches and the contract's raw suite, under `root`."""
    paths = paths_under(root, params)
    for day, frame in days.items():
        write_parquet(frame, batch_path(paths.raw, day))
    suite = raw_suite(contract, contract_frame(contract, WINDOW.dates(), ROWS, seed=7), WINDOW.days)
    paths.expectations.mkdir(parents=True, exist_ok=True)
    (paths.expectations / "raw.json").write_text(json.dumps(suite, default=str))
    return paths


def first_run(
    paths: PathsConfig, contract: DatasetContract, monkeypatch: pytest.MonkeyPatch, union_bytes: int
) -> tuple[GateReport, dict]:
    """validate_raw's first run (every day pending) with `union_bytes`; its summary."""
    with monkeypatch.context() as patch:
        patch.setattr(raw_gate, "DailyGate", functools.partial(DailyGate, union_bytes=union_bytes))
        report = raw_gate.validate_window(paths, WINDOW, CFG, contract)
    summary = json.loads((paths.gate_reports / "raw" / "summary.json").read_text())
    return report, summary


def findings(report: GateReport) -> list[tuple]:
    return sorted(
        (f.batch or "", f.expectation, f.column or "", f.severity, f.unexpected_count or 0)
        for f in [*report.failures, *report.warnings]
    )


@pytest.mark.parametrize("room", ["every day", "less than a day"])
def test_a_clean_first_run_passes_every_day_with_the_row_checks_together_as_room_allows(
    room: str,
    tmp_path: Path,
    project_params: Params,
    any_contract: DatasetContract,
    good_days: dict[dt.date, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = write_window(tmp_path, project_params, any_contract, good_days)
    sizes = [data_bytes(batch_path(paths.raw, day)) for day in WINDOW.dates()]
    limit = sum(sizes) if room == "every day" else min(sizes) - 1
    report, summary = first_run(paths, any_contract, monkeypatch, union_bytes=limit)
    suite = json.loads((paths.expectations / "raw.json").read_text())["expectations"]
    assert report.passed, report.render()
    assert summary["row_checks_together"] == (WINDOW.days if room == "every day" else 0)
    assert report.evaluated == WINDOW.days * len(suite)  # every expectation, every day
    assert sum(map(judged_row_by_row, suite)) > len(suite) // 2
    records = sorted((paths.gate_reports / "raw" / "batches").glob("*.json"))
    assert [json.loads(r.read_text())["passed"] for r in records] == [True] * WINDOW.days


@pytest.mark.parametrize("case", list(BAD_DAYS))
def test_a_bad_day_among_good_ones_gets_the_verdict_it_gets_alone(
    case: str,
    tmp_path: Path,
    project_params: Params,
    any_contract: DatasetContract,
    good_days: dict[dt.date, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corrupt, row_checks_together = BAD_DAYS[case]
    days = {**good_days, BAD_DAY: corrupt(good_days[BAD_DAY], any_contract)}
    together = write_window(tmp_path / "together", project_params, any_contract, days)
    alone = write_window(tmp_path / "alone", project_params, any_contract, days)
    report, summary = first_run(together, any_contract, monkeypatch, union_bytes=2**30)
    each_alone, _ = first_run(alone, any_contract, monkeypatch, union_bytes=0)
    assert not report.passed
    assert {f.batch for f in report.failures} == {BAD_DAY.isoformat()}, report.render()
    assert findings(report) == findings(each_alone)
    assert summary["row_checks_together"] == row_checks_together
    bad = paths_under(tmp_path / "together", project_params).gate_reports / "raw" / "batches"
    assert (bad / f"{BAD_DAY.isoformat()}.result.json").is_file()


def test_a_share_of_nulls_is_judged_on_each_day_not_on_the_days_together(
    tmp_path: Path, any_contract: DatasetContract, good_days: dict[dt.date, pd.DataFrame]
) -> None:
    """40% nulls on one day of six is 6.7% on the days together, within `mostly` 0.9: a
    gate judging the days together would pass it."""
    column = numeric(any_contract)
    days = {
        day: frame.assign(**{column: frame[column].astype("float64")})
        for day, frame in good_days.items()
    }
    days[BAD_DAY] = with_nulls(days[BAD_DAY], column, 0.4)
    files = {}
    for day, frame in days.items():
        files[day] = tmp_path / f"{day.isoformat()}.parquet"
        write_parquet(frame, files[day])
    suite = {
        "name": "shares",
        "expectations": [
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": any_contract.entity.key},
            },
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": column, "mostly": 0.9},
            },
        ],
    }
    (tmp_path / "shares.json").write_text(json.dumps(suite))
    gate = DailyGate("shares", tmp_path / "shares.json", tmp_path / "reports", {})
    report = gate.judge(files, list(files))
    assert [(f.batch, f.expectation, f.column) for f in report.failures] == [
        (BAD_DAY.isoformat(), "expect_column_values_to_not_be_null", column)
    ]
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["row_checks_together"] == WINDOW.days  # the key's check: on the days together


@pytest.mark.parametrize(
    "expectation, together",
    [
        ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}, True),
        (
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "a", "min_value": 0, "mostly": 1.0},
            },
            True,
        ),
        (
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "a", "value_set": [0, 1]},
            },
            True,
        ),
        (
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "a", "mostly": 0.99},
            },
            False,
        ),
        (
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "a", "max_value": {"$PARAMETER": "day_end"}},
            },
            False,
        ),
        (
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "a", "value_set": [{"$PARAMETER": "v"}]},
            },
            False,
        ),
        ({"type": "expect_column_values_to_be_unique", "kwargs": {"column": "a"}}, False),
        (
            {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["a", "b"]}},
            False,
        ),
        ({"type": "expect_column_values_to_be_increasing", "kwargs": {"column": "a"}}, False),
        (
            {
                "type": "expect_column_value_z_scores_to_be_less_than",
                "kwargs": {"column": "a", "threshold": 3},
            },
            False,
        ),
        (
            {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "a", "min_value": 0}},
            False,
        ),
        ({"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}, False),
    ],
)
def test_only_row_by_row_checks_without_shares_or_run_time_values_are_judged_together(
    expectation: dict, together: bool
) -> None:
    assert judged_row_by_row(expectation) is together


def test_groups_hold_at_most_the_limit_and_keep_the_order() -> None:
    rows = {"a": 4, "b": 4, "c": 9, "d": 0, "e": 3, "f": 12}
    assert groups(rows, 10) == [["a", "b"], ["c", "d"], ["e"], ["f"]]
    assert groups(rows, 0) == [[key] for key in rows]
    assert groups({}, 10) == []


def test_days_are_put_together_only_with_the_same_columns_and_types() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    assert same_columns([frame, frame.head(0), frame.copy()])
    assert not same_columns([frame, frame.astype({"a": "float64"})])
    assert not same_columns([frame, frame[["b", "a"]]])
    assert not same_columns([frame, frame.drop(columns="b")])
    labels = pd.DataFrame({"c": pd.Categorical(["x", "y"])})
    assert same_columns([labels, labels.iloc[::-1]])
    assert not same_columns([labels, labels.astype(pd.CategoricalDtype(["x", "y", "z"]))])
    assert not same_columns([labels, labels.astype(object)])  # together: object, not category
    stamps = pd.DataFrame({"t": pd.to_datetime(["2026-01-01"], utc=True)})
    assert not same_columns([stamps, stamps.assign(t=stamps["t"].dt.tz_convert("Europe/Paris"))])
