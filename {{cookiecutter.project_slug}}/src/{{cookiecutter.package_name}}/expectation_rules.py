"""The expectations the suites are made of, in GX's suite JSON format.

Each helper returns plain dicts (`{"type", "kwargs", "meta", "severity"}`) that
suite_bootstrap.py assembles into suites; a value written {"$PARAMETER": name}
is filled in by the gate at run time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

MAX_CATEGORIES = 25  # string columns with at most this many values get a value set
RANGE_MARGIN = 0.1  # numeric ranges are widened by this share of the observed span
MEAN_MARGIN = 0.25  # daily-mean bounds are widened by this share of the table's mean
NULL_HEADROOM = 0.02  # a nullable column's non-null floor sits this far below the table's
FLOAT_MAX = float(np.finfo("float64").max)  # "finite": between -FLOAT_MAX and FLOAT_MAX


def expectation(
    kind: str, note: str | None = None, severity: str = "critical", **kwargs: Any
) -> dict[str, Any]:
    """One expectation in GX's suite JSON (severity written only when not critical)."""
    out = {"type": kind, "kwargs": kwargs, "meta": {"notes": note} if note else {}}
    return {**out, "severity": severity} if severity != "critical" else out


def param(name: str) -> dict[str, str]:
    return {"$PARAMETER": name}


def type_name(series: pd.Series) -> str:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return "Timestamp"  # how GX names timezone-aware values
    return str(series.dtype)


def number(value: Any) -> float | int:
    return value.item() if hasattr(value, "item") else value


def of_type(column: str, type_: str, note: str | None = None) -> dict[str, Any]:
    return expectation("expect_column_values_to_be_of_type", note, column=column, type_=type_)


def not_null(column: str, note: str | None = None) -> dict[str, Any]:
    return expectation("expect_column_values_to_not_be_null", note, column=column)


def null_expectation(column: str, series: pd.Series) -> list[dict[str, Any]]:
    """Not null when the sample has no nulls; else a warning at the sample's non-null share."""
    non_null = float(series.notna().mean())
    if non_null == 1.0:
        return [not_null(column)]
    if non_null == 0:
        return []
    mostly = float(np.floor(non_null * 100) / 100)
    note = f"{non_null:.2%} non-null in the sample"
    return [
        expectation(
            "expect_column_values_to_not_be_null", note, "warning", column=column, mostly=mostly
        )
    ]


def nullable_floor(column: str, series: pd.Series) -> list[dict[str, Any]]:
    """A warning when a nullable column holds fewer values than the table did."""
    non_null = float(series.notna().mean())
    mostly = float(np.floor((non_null - NULL_HEADROOM) * 100) / 100)
    if mostly <= 0:
        return []
    note = f"nullable in the data contract; {non_null:.2%} non-null in the profiled table"
    return [
        expectation(
            "expect_column_values_to_not_be_null", note, "warning", column=column, mostly=mostly
        )
    ]


def outward(value: float, up: bool, digits: int = 4) -> float:
    """`value` rounded away from a range's inside, to `digits` significant digits."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    exponent = math.floor(math.log10(abs(value)))
    step = 10.0 ** (exponent - digits + 1)
    steps = value / step
    steps = round(steps) if abs(steps - round(steps)) < 1e-6 else steps  # float noise
    rounded = (math.ceil if up else math.floor)(steps) * step
    return float(round(rounded, max(0, digits - 1 - exponent)))


def range_expectation(
    column: str, series: pd.Series, values: pd.Series, severity: str = "critical", where: str = ""
) -> dict[str, Any]:
    """The observed range widened by RANGE_MARGIN of its span (not below 0 if never negative)."""
    low, high = number(values.min()), number(values.max())
    span = (high - low) or abs(high) or 1.0
    floor = low - RANGE_MARGIN * span
    if low >= 0:
        floor = max(floor, 0)
    ceiling = high + RANGE_MARGIN * span
    if ptypes.is_integer_dtype(series):
        floor, ceiling = int(np.floor(floor)), int(np.ceil(ceiling))
    else:
        floor, ceiling = outward(floor, up=False), outward(ceiling, up=True)
    return expectation(
        "expect_column_values_to_be_between",
        f"observed {low}..{high} in the {where or 'sample'}",
        severity,
        column=column,
        min_value=floor,
        max_value=ceiling,
    )


def hard_bounds(column: str, series: pd.Series, values: pd.Series) -> list[dict[str, Any]]:
    """Critical: a float is finite; a column never negative in the table stays so."""
    never_negative = bool(values.min() >= 0)
    if ptypes.is_float_dtype(series):
        note = "finite" + (" and never negative" if never_negative else "")
        low = 0 if never_negative else -FLOAT_MAX
        bounds = {"min_value": low, "max_value": FLOAT_MAX}
    elif never_negative:
        note, bounds = "never negative", {"min_value": 0}
    else:
        return []
    return [expectation("expect_column_values_to_be_between", note, column=column, **bounds)]


def numeric_expectations(column: str, series: pd.Series, where: str) -> list[dict[str, Any]]:
    values = series.dropna()
    if values.empty:
        return []
    return [
        *hard_bounds(column, series, values),
        range_expectation(column, series, values, "warning", where),
    ]


def daily_mean(column: str, frame: pd.DataFrame, timestamp: str) -> list[dict[str, Any]]:
    """A warning when a day's mean leaves the daily means of the table (widened)."""
    daily = frame.groupby(frame[timestamp].dt.floor("D"))[column].mean().dropna()
    if daily.empty:
        return []
    low, high = float(daily.min()), float(daily.max())
    pad = MEAN_MARGIN * abs(float(frame[column].mean())) or (high - low) or 1.0
    note = (
        f"daily means were {low:.4g}..{high:.4g}: a shifted mean hints at a unit or "
        "definition change upstream"
    )
    return [
        expectation(
            "expect_column_mean_to_be_between",
            note,
            "warning",
            column=column,
            min_value=outward(low - pad, up=False),
            max_value=outward(high + pad, up=True),
        )
    ]


def value_expectations(column: str, series: pd.Series) -> list[dict[str, Any]]:
    values = series.dropna()
    if values.empty:
        return []
    if ptypes.is_bool_dtype(series) or (
        ptypes.is_integer_dtype(series) and set(values.unique()) <= {0, 1}
    ):
        value_set = sorted(number(v) for v in values.unique())
        return [
            expectation("expect_column_values_to_be_in_set", column=column, value_set=value_set)
        ]
    if ptypes.is_numeric_dtype(series):
        return [range_expectation(column, series, values)]
    if ptypes.is_object_dtype(series) or ptypes.is_string_dtype(series):
        categories = values.unique()
        if len(categories) <= MAX_CATEGORIES:
            value_set = sorted(str(v) for v in categories)
            return [
                expectation("expect_column_values_to_be_in_set", column=column, value_set=value_set)
            ]
    return []


def column_expectations(column: str, series: pd.Series) -> list[dict[str, Any]]:
    """Type, nulls and values of one column, as the sample shows them."""
    return [
        of_type(column, type_name(series)),
        *null_expectation(column, series),
        *value_expectations(column, series),
    ]


def daily_batch_expectations(timestamp: str, label: str | None) -> list[dict[str, Any]]:
    """The checks the raw gate fills in for each daily batch (raw_gate.batch_parameters)."""
    out = [
        expectation(
            "expect_table_row_count_to_be_between",
            "rows of one daily batch: params.yaml validate_raw.min_rows_per_day..max_rows_per_day",
            min_value=param("min_rows"),
            max_value=param("max_rows"),
        ),
        expectation(
            "expect_column_values_to_be_between",
            "every row of a daily batch belongs to that day",
            column=timestamp,
            min_value=param("day_start"),
            max_value=param("day_end"),
        ),
        expectation(
            "expect_column_max_to_be_between",
            "no timestamps from the future",
            column=timestamp,
            max_value=param("now"),
        ),
    ]
    if label:
        out.append(
            expectation(
                "expect_column_mean_to_be_between",
                "the day's share of positives is plausible for the window's rate "
                "(validate_raw.label_share_alpha)",
                column=label,
                min_value=param("min_label_share"),
                max_value=param("max_label_share"),
            )
        )
    return out


def unique_keys(keys: list[str], note: str | None = None) -> dict[str, Any]:
    if len(keys) > 1:
        return expectation("expect_compound_columns_to_be_unique", note, column_list=list(keys))
    return expectation("expect_column_values_to_be_unique", note, column=keys[0])
