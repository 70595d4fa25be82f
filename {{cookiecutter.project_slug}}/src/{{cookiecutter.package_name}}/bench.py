"""Benchmarks: print figures and ratios against a bare baseline measured in the same run.

Nothing here asserts a time: a slow machine gives slow figures, not failures.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from .config import Params
from .datagen import generate_day
from .logs import console


def synthetic_raw(
    rows: int, seed: int = 0, days: int = 10
) -> tuple[pd.DataFrame, dt.date, dt.date]:
    """`rows` raw rows spread over `days` daily batches."""
    end = dt.date(2026, 3, 31)
    per_day = max(rows // days, 1)
    frames = [
        generate_day(end - dt.timedelta(days=i), rows=per_day, n_customers=per_day * 2, seed=seed)
        for i in range(days)
    ]
    return pd.concat(frames, ignore_index=True), end - dt.timedelta(days=days - 1), end


def _bare_check(frame: pd.DataFrame, expectation: dict[str, Any], values: dict[str, Any]) -> bool:
    """The same check done directly in pandas: the floor GX is measured against."""
    kind, kw = expectation["type"], dict(expectation["kwargs"])
    kw = {k: values[v["$PARAMETER"]] if isinstance(v, dict) else v for k, v in kw.items()}
    column = frame[kw["column"]] if "column" in kw else None
    if kind == "expect_table_columns_to_match_set":
        return set(frame.columns) == set(kw["column_set"])
    if kind == "expect_table_row_count_to_be_between":
        return kw.get("min_value", 0) <= len(frame) <= kw.get("max_value", np.inf)
    if kind == "expect_column_values_to_be_of_type":
        return column.dtype.name == kw["type_"] or kw["type_"] == "Timestamp"
    if kind == "expect_column_values_to_not_be_null":
        return column.notna().mean() >= kw.get("mostly", 1.0)
    if kind == "expect_compound_columns_to_be_unique":
        return not frame.duplicated(kw["column_list"]).any()
    if kind == "expect_column_values_to_be_between":
        values_ = column.dropna()
        return bool(((values_ >= kw["min_value"]) & (values_ <= kw["max_value"])).all())
    if kind == "expect_column_max_to_be_between":
        return column.max() <= kw["max_value"]
    if kind == "expect_column_values_to_be_in_set":
        return bool(column.dropna().isin(kw["value_set"]).all())
    if kind == "expect_column_mean_to_be_between":
        return kw["min_value"] <= column.mean() <= kw["max_value"]
    raise ValueError(f"no bare baseline for {kind}")


def bench_raw_gate(params: Params, rows: int, report_dir: Path | None = None) -> dict[str, float]:
    import json
    import tempfile

    from .config import DataConfig
    from .gates import load_suite_json, raw_gate_parameters, validate

    frame, start, end = synthetic_raw(rows)
    data = DataConfig(
        end_date=end,
        window_days=(end - start).days + 1,
        rows_per_day=10,
        n_customers=10,
    )
    values = raw_gate_parameters(data, params.gates.raw)
    suite_path = params.paths.expectations / "raw.json"
    suite = load_suite_json(suite_path)

    started = time.perf_counter()
    for expectation in suite["expectations"]:
        _bare_check(frame, expectation, values)
    bare = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        report = validate(frame, suite_path, "raw", report_dir or Path(tmp), values)
    figures = {
        "rows": float(len(frame)),
        "expectations": float(report.evaluated),
        "gx_seconds": report.seconds,
        "gx_rows_per_second": len(frame) / report.seconds,
        "bare_pandas_seconds": bare,
        "gx_over_bare": report.seconds / bare,
    }
    table = Table(title=f"raw gate on {len(frame):,} rows ({report.evaluated} expectations)")
    for column in ("measure", "value"):
        table.add_column(column)
    for key, value in figures.items():
        table.add_row(key, f"{value:,.3f}")
    console.print(table)
    console.print(json.dumps(figures))
    return figures
