"""The holdout promote judges models on: the test days of the training set's time split
(split.time_split), the newest `split.test_days` days with rows.

The training set is a folder of day files (stages/training_set.py), so `read_holdout`
reads the newest ones alone when their parquet metadata proves the result is the same
rows, in the same order and with the same types, as splitting the whole table: every
file of the folder is a day's file, all have one schema, and each file's timestamp
statistics lie inside its own day (UTC). Otherwise (a single file, a stray file,
statistics missing) it reads and splits the whole table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from .config import Params
from .contract import DatasetContract
from .files import read_parquet
from .parquet_parts import footer_stats
from .partitions import DayFiles
from .split import days_needed, time_split


def holdout_span(holdout: pd.DataFrame, contract: DatasetContract) -> dict[str, Any]:
    """The holdout's rows, first and last day (promotion.json `holdout`)."""
    stamps = holdout[contract.timestamp]
    return {
        "rows": len(holdout),
        "start": str(stamps.min().date()),
        "end": str(stamps.max().date()),
    }


def _newest_days(folder: Path, timestamp: str, count: int) -> list[Path] | None:
    """The part files of the newest `count` days with rows of a training set written one
    file a day, when each file's `timestamp` statistics (parquet metadata) show that all
    its rows lie in its own day (UTC); None when that cannot be told from the metadata."""
    files = DayFiles(folder).existing()
    if set(files.values()) != {f for f in folder.iterdir() if not f.name.startswith(("_", "."))}:
        return None  # other files too: they are part of the table
    days = [(day, path, pq.ParquetFile(path).metadata) for day, path in files.items()]
    schemas = {str(meta.schema.to_arrow_schema()) for _, _, meta in days}
    if len(schemas) > 1:
        return None  # read as one table, the first file's types would apply to all
    with_rows = []
    for day, path, meta in days:
        if not meta.num_rows:
            continue
        stats = footer_stats(meta, timestamp)
        if stats is None or stats.nulls:
            return None  # no statistics, or nulls: where those rows belong is unknown
        low, high = (t if t.tzinfo else t.tz_localize("UTC") for t in (stats.low, stats.high))
        start = pd.Timestamp(day, tz="UTC")
        if low < start or high >= start + pd.Timedelta(days=1):
            return None
        with_rows.append(path)
    return with_rows[-count:]


def read_holdout(p: Params) -> pd.DataFrame:
    """The holdout: the test days of the training set's time split (split.time_split).
    When the training set is a folder of day files (stages/training_set.py) whose
    metadata shows each holds only its day, only the newest days are read: the same rows,
    in the same order, as splitting the whole table."""
    folder, cfg = p.paths.training_set, p.split
    newest = (
        _newest_days(folder, p.dataset.timestamp, days_needed(cfg)) if folder.is_dir() else None
    )
    if newest is not None and len(newest) == days_needed(cfg):
        return pd.read_parquet(newest[-cfg.test_days :])
    return time_split(read_parquet(folder, "training_set"), cfg, p.dataset).test
