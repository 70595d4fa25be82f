"""The expectations a day-by-day gate may judge once on several days' rows together.

A row-level expectation (GX's map expectations that test each row on its own: not null,
in a set, between fixed bounds, of a type, matching a pattern) with `mostly` 1 and no
run-time `$PARAMETER` fails on the rows of several days exactly when it fails on one of
those days: its unexpected rows are the union of each day's. So when the days' files
have the same columns and column types (their rows put together keep those types), the
day gate validates such expectations once on the days' rows together and the rest of
the suite day by day. Expectations that compare a row with other rows (uniqueness,
order, z-scores, outliers), aggregates (means, row counts), shares (`mostly` < 1) and
run-time values (the day's bounds) are always judged day by day. When the rows together
have any finding, each of those days is validated again with the whole suite, so every
finding names its day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

# GX map expectations whose verdict on a row depends on that row alone
ROW_BY_ROW = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
        "expect_column_values_to_match_regex_list",
        "expect_column_values_to_not_match_regex_list",
        "expect_column_values_to_match_like_pattern",
        "expect_column_values_to_not_match_like_pattern",
        "expect_column_values_to_match_like_pattern_list",
        "expect_column_values_to_not_match_like_pattern_list",
        "expect_column_values_to_match_strftime_format",
        "expect_column_values_to_be_dateutil_parseable",
        "expect_column_values_to_be_json_parseable",
        "expect_column_values_to_match_json_schema",
        "expect_column_pair_values_to_be_equal",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_in_set",
        "expect_multicolumn_sum_to_equal",
        "expect_multicolumn_values_to_be_equal",
        "expect_select_column_values_to_be_unique_within_record",
    }
)
# at most this much data (parquet's uncompressed size) is validated together: bounds memory
UNION_BYTES = 256 * 2**20


def _run_time_value(value: Any) -> bool:
    if isinstance(value, dict):
        return "$PARAMETER" in value or any(_run_time_value(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_run_time_value(v) for v in value)
    return False


def judged_row_by_row(expectation: Mapping[str, Any]) -> bool:
    """Whether an expectation of suite JSON ({"type", "kwargs", ...}) fails on several
    days' rows together exactly when it fails on one of the days (module docstring)."""
    kwargs = expectation.get("kwargs") or {}
    return (
        expectation.get("type") in ROW_BY_ROW
        and kwargs.get("mostly", 1) == 1
        and not _run_time_value(kwargs)
    )


def same_columns(frames: Iterable[pd.DataFrame]) -> bool:
    """Whether the frames have the same columns, in the same order, of the same types
    (a categorical's categories and a timestamp's zone included): then their rows put
    together keep each column's type."""
    schemas = [list(zip(f.columns, f.dtypes, strict=True)) for f in frames]
    return all(schema == schemas[0] for schema in schemas[1:])


def data_bytes(path: Path) -> int:
    """The uncompressed size of a parquet file's data, from its footer."""
    meta = pq.read_metadata(path)
    return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))


def groups(sizes: Mapping[Any, int], limit: int = UNION_BYTES) -> list[list[Any]]:
    """The keys of `sizes` (in order) in consecutive groups of at most `limit` in size
    each (a larger key is a group of its own; `limit` 0: every key is)."""
    if limit <= 0:
        return [[key] for key in sizes]
    out: list[list[Any]] = []
    total = limit + 1
    for key, count in sizes.items():
        if total + count > limit:
            out.append([])
            total = 0
        out[-1].append(key)
        total += count
    return out


def split(expectations: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[Any]]:
    """The suite's expectations judged row by row, and the others."""
    together = [e for e in expectations if judged_row_by_row(e)]
    return together, [e for e in expectations if not judged_row_by_row(e)]
