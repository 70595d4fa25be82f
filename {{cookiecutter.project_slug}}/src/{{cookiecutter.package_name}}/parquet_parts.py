"""A day-partitioned table's files (raw batches, the feature table's parts) chosen by
the timestamps they hold, read from each file's parquet footer.

A daily run of `monitor` or `materialize` uses only the newest days of a 60-day window:
the files whose rows can fall in the days it uses are read, the others not opened
beyond their footer. The choice never relies on a file's name: a file is skipped only
when its rows are all older than the first instant needed, as its footer's statistics
show (a file written without them is dated from its timestamp column). Read this way,
the rows from that instant on are exactly those of the whole table, in its order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pyarrow.parquet as pq


class FooterStats(NamedTuple):
    """A column's range and nulls over a parquet file's row groups."""

    low: pd.Timestamp
    high: pd.Timestamp
    nulls: int


def footer_stats(meta: pq.FileMetaData, column: str) -> FooterStats | None:
    """`column`'s oldest and newest value and its nulls over the row groups holding rows
    of a parquet file, from its footer `meta`; None when the file has no rows or no such
    column, or such a row group has no min/max statistics."""
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if meta.num_rows == 0 or column not in names:
        return None
    index, lows, highs, nulls = names.index(column), [], [], 0
    for group in (meta.row_group(i) for i in range(meta.num_row_groups)):
        if group.num_rows == 0:
            continue
        stats = group.column(index).statistics
        if stats is None or not stats.has_min_max:
            return None
        lows.append(pd.Timestamp(stats.min))
        highs.append(pd.Timestamp(stats.max))
        nulls += stats.null_count or 0
    return FooterStats(min(lows), max(highs), nulls)


def newest_stamp(path: Path, column: str) -> pd.Timestamp | None:
    """The newest value of `column` in the parquet file `path`, from its footer (from the
    column itself when the footer has no statistics); NaT for a file without rows, None
    when the file has no such column."""
    meta = pq.ParquetFile(path).metadata
    if meta.num_rows == 0:
        return pd.NaT
    if column not in (meta.schema.column(i).name for i in range(meta.num_columns)):
        return None
    stats = footer_stats(meta, column)
    if stats is None:
        return pd.read_parquet(path, columns=[column])[column].max()
    return stats.high


def newest_of(paths: Sequence[Path], column: str) -> pd.Timestamp | None:
    """The newest value of `column` in any of `paths` (NaT: no rows at all); None when a
    file has no such column."""
    stamps = [newest_stamp(path, column) for path in paths]
    if any(stamp is None for stamp in stamps):
        return None
    known = [stamp for stamp in stamps if stamp is not pd.NaT]
    return max(known) if known else pd.NaT


def files_from(paths: Sequence[Path], column: str, start: pd.Timestamp) -> list[Path]:
    """The files of `paths` (in their order) that may hold a row with `column` at or after
    `start`: all but those whose footer shows only older rows. Files without rows are
    kept (they add no row, as in the whole table)."""
    kept = []
    for path in paths:
        newest = newest_stamp(path, column)
        try:
            older = newest is not None and newest is not pd.NaT and newest < start
        except TypeError:  # one with a time zone, one without: read the file
            older = False
        if not older:
            kept.append(path)
    return kept
