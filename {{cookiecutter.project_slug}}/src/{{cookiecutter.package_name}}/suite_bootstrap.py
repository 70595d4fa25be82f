"""Bootstrap an expectation suite from a sample of your own data.

GX Core 1.x ships no profiler, so this writes a plain starting suite from what
the sample shows: the column set, each column's type, nulls, value ranges
(widened by a margin), small category sets and key uniqueness. Every
expectation is a normal GX expectation in GX's JSON format: tighten, loosen
or delete them by hand, then point a gate at the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .errors import StageInputError
from .files import write_json

MAX_CATEGORIES = 25  # string columns with at most this many values get a value set
RANGE_MARGIN = 0.1  # numeric ranges are widened by this share of the observed span


def _expect(kind: str, note: str | None = None, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {"notes": note} if note else {}}


def _type_name(series: pd.Series) -> str:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return "Timestamp"  # how GX names timezone-aware values
    return str(series.dtype)


def _number(value: Any) -> float | int:
    return value.item() if hasattr(value, "item") else value


def _null_expectation(column: str, series: pd.Series) -> list[dict[str, Any]]:
    non_null = float(series.notna().mean())
    if non_null == 1.0:
        return [_expect("expect_column_values_to_not_be_null", column=column)]
    if non_null == 0:
        return []
    note = f"{non_null:.2%} non-null in the sample"
    mostly = float(np.floor(non_null * 100) / 100)
    expectation = _expect("expect_column_values_to_not_be_null", note, column=column, mostly=mostly)
    return [{**expectation, "severity": "warning"}]


def _range_expectation(column: str, series: pd.Series, values: pd.Series) -> dict[str, Any]:
    low, high = _number(values.min()), _number(values.max())
    span = (high - low) or abs(high) or 1.0
    floor = low - RANGE_MARGIN * span
    if low >= 0:
        floor = max(floor, 0)
    ceiling = high + RANGE_MARGIN * span
    if ptypes.is_integer_dtype(series):
        floor, ceiling = int(np.floor(floor)), int(np.ceil(ceiling))
    return _expect(
        "expect_column_values_to_be_between",
        f"observed {low}..{high} in the sample",
        column=column,
        min_value=floor,
        max_value=ceiling,
    )


def _value_expectations(column: str, series: pd.Series) -> list[dict[str, Any]]:
    values = series.dropna()
    if values.empty:
        return []
    if ptypes.is_bool_dtype(series) or (
        ptypes.is_integer_dtype(series) and set(values.unique()) <= {0, 1}
    ):
        value_set = sorted(_number(v) for v in values.unique())
        return [_expect("expect_column_values_to_be_in_set", column=column, value_set=value_set)]
    if ptypes.is_numeric_dtype(series):
        return [_range_expectation(column, series, values)]
    if ptypes.is_object_dtype(series) or ptypes.is_string_dtype(series):
        categories = values.unique()
        if len(categories) <= MAX_CATEGORIES:
            value_set = sorted(str(v) for v in categories)
            return [
                _expect("expect_column_values_to_be_in_set", column=column, value_set=value_set)
            ]
    return []


def _column_expectations(column: str, series: pd.Series) -> list[dict[str, Any]]:
    """Type, nulls and values of one column, as the sample shows them."""
    of_type = _expect("expect_column_values_to_be_of_type", column=column, type_=_type_name(series))
    return [of_type, *_null_expectation(column, series), *_value_expectations(column, series)]


def _param(name: str) -> dict[str, str]:
    return {"$PARAMETER": name}


def _daily_batch_expectations(timestamp: str, label: str | None) -> list[dict[str, Any]]:
    """The checks the raw gate fills in for each daily batch (raw_gate.batch_parameters)."""
    out = [
        _expect(
            "expect_table_row_count_to_be_between",
            "rows of one daily batch: params.yaml validate_raw.min_rows_per_day..max_rows_per_day",
            min_value=_param("min_rows"),
            max_value=_param("max_rows"),
        ),
        _expect(
            "expect_column_values_to_be_between",
            "every row of a daily batch belongs to that day",
            column=timestamp,
            min_value=_param("day_start"),
            max_value=_param("day_end"),
        ),
        _expect(
            "expect_column_max_to_be_between",
            "no timestamps from the future",
            column=timestamp,
            max_value=_param("now"),
        ),
    ]
    if label:
        out.append(
            _expect(
                "expect_column_mean_to_be_between",
                "the day's share of positives is plausible for the window's rate",
                column=label,
                min_value=_param("min_label_share"),
                max_value=_param("max_label_share"),
            )
        )
    return out


def profile_suite(
    sample: pd.DataFrame,
    name: str,
    keys: list[str] | None = None,
    timestamp: str | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """A starting suite that the sample passes, in GX's suite JSON format. With a
    `timestamp` column it is a raw-gate suite: judged per daily batch with the gate's
    run-time values (day bounds, rows per day, the label share of `label`)."""
    if sample.empty:
        raise StageInputError("the sample is empty: profile a file with rows")
    named = [*(keys or []), *([timestamp] if timestamp else []), *([label] if label else [])]
    missing = [k for k in named if k not in sample.columns]
    if missing:
        raise StageInputError(f"columns {missing} are not in the sample")
    expectations = [
        _expect(
            "expect_table_columns_to_match_set", column_set=list(sample.columns), exact_match=True
        ),
        *(
            _daily_batch_expectations(timestamp, label)
            if timestamp
            else [
                _expect(
                    "expect_table_row_count_to_be_between",
                    "bootstrapped as 1..10x the sample size: set the bounds your source delivers",
                    min_value=1,
                    max_value=10 * len(sample),
                )
            ]
        ),
    ]
    if keys:
        expectations.append(
            _expect("expect_compound_columns_to_be_unique", column_list=list(keys))
            if len(keys) > 1
            else _expect("expect_column_values_to_be_unique", column=keys[0])
        )
    for column in sample.columns:
        expectations += _column_expectations(column, sample[column])
    return {
        "name": name,
        "meta": {"notes": f"Bootstrapped from a sample of {len(sample)} rows; review and tighten."},
        "expectations": expectations,
    }


def write_suite(
    sample_path: Path,
    name: str,
    keys: list[str],
    target: Path,
    force: bool = False,
    timestamp: str | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Profile the sample file (parquet or CSV) and write the suite to `target`."""
    if not sample_path.is_file():
        raise StageInputError(
            f"sample {sample_path} not found: give a parquet or CSV file of your data"
        )
    if target.exists() and not force:
        raise StageInputError(
            f"{target} exists; pass --force to overwrite it or --out to write elsewhere"
        )
    read = pd.read_csv if sample_path.suffix == ".csv" else pd.read_parquet
    sample = read(sample_path)
    if timestamp and timestamp in sample.columns:  # CSV holds text: the gate sees UTC times
        sample[timestamp] = pd.to_datetime(sample[timestamp], utc=True)
    suite = profile_suite(sample, name, keys, timestamp, label)
    write_json(suite, target)
    return suite
