"""Ingest stage: land one parquet file per daily batch in the raw data folder.

`fetch_batch` is the seam to your real source. The template ships a
deterministic generator behind it; replace its body with a query of your
warehouse, a read from object storage or an API call that returns the same
columns (see datagen.RAW_COLUMNS and expectations/raw.json).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd

from .config import DataConfig
from .datagen import generate_day
from .errors import StageInputError
from .files import write_parquet
from .logs import progress

log = logging.getLogger(__name__)


def fetch_batch(day: dt.date, cfg: DataConfig) -> pd.DataFrame:
    """Return the batch of customer snapshots observed on `day`. Replace with your source."""
    return generate_day(
        day,
        rows=cfg.rows_per_day,
        n_customers=cfg.n_customers,
        seed=cfg.seed,
        drift_start=cfg.drift.start_date,
        covariate_drift=cfg.drift.covariate,
        concept_drift=cfg.drift.concept,
    )


def batch_path(raw_dir: Path, day: dt.date) -> Path:
    return raw_dir / f"batch_{day.isoformat()}.parquet"


def batch_days(cfg: DataConfig) -> list[dt.date]:
    return [cfg.start_date + dt.timedelta(days=i) for i in range(cfg.window_days)]


def ingest(cfg: DataConfig, raw_dir: Path) -> list[Path]:
    """Write the rolling window of daily batches ending at cfg.end_date; drop older files."""
    days = batch_days(cfg)
    raw_dir.mkdir(parents=True, exist_ok=True)
    wanted = {batch_path(raw_dir, day) for day in days}
    for stale in set(raw_dir.glob("batch_*.parquet")) - wanted:
        stale.unlink()
    written = []
    with progress() as bar:
        task = bar.add_task("ingest", total=len(days))
        for day in days:
            path = batch_path(raw_dir, day)
            write_parquet(fetch_batch(day, cfg), path)
            written.append(path)
            bar.advance(task)
    log.info("ingested %d daily batches %s..%s into %s", len(days), days[0], days[-1], raw_dir)
    return written


def raw_batch_files(raw_dir: Path) -> list[Path]:
    """The daily batch files in `raw_dir`, oldest first."""
    files = sorted(raw_dir.glob("batch_*.parquet"))
    if not files:
        raise StageInputError(
            f"no batch_*.parquet files in {raw_dir}: they are produced by the 'ingest' stage. "
            "Run `dvc repro ingest` (or `dvc pull`)."
        )
    return files


def read_raw(raw_dir: Path) -> pd.DataFrame:
    """All daily batches in `raw_dir` as one frame."""
    return pd.concat([pd.read_parquet(f) for f in raw_batch_files(raw_dir)], ignore_index=True)
