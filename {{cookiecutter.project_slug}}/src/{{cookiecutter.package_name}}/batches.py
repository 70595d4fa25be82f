"""The raw daily batches: one parquet file per day, named after the day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from .errors import StageInputError

BATCH_PREFIX = "batch_"


def batch_path(raw_dir: Path, day: dt.date) -> Path:
    return raw_dir / f"{BATCH_PREFIX}{day.isoformat()}.parquet"


def raw_batch_files(raw_dir: Path) -> list[Path]:
    """The daily batch files in `raw_dir`, oldest first."""
    files = sorted(raw_dir.glob(f"{BATCH_PREFIX}*.parquet"))
    if not files:
        raise StageInputError(
            f"no batch_*.parquet files in {raw_dir}: they are produced by the 'ingest' stage. "
            "Run `dvc repro ingest` (or `dvc pull`)."
        )
    return files


def read_raw(raw_dir: Path) -> pd.DataFrame:
    """All daily batches in `raw_dir` as one frame."""
    return pd.concat([pd.read_parquet(f) for f in raw_batch_files(raw_dir)], ignore_index=True)
