"""Stage `ingest`: land one parquet file per daily batch of the window in the raw folder.

`fetch_batch` is the seam to your source. params.yaml `ingest.source` picks one of
sources.py: `synthetic` (the demo's deterministic generator), `files` (CSV or
parquet files cut into days by their timestamp) or `sql` (one query per day).
For anything else (an API, a warehouse client), replace fetch_batch's body with
a read that returns the same columns (see datagen.RAW_COLUMNS and
expectations/raw.json) for the day.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd

from ..batches import batch_path
from ..config import IngestConfig, Window
from ..errors import ConfigError
from ..files import write_parquet
from ..logs import progress
from ..sources import files_batch, sql_batch, synthetic_batch

log = logging.getLogger(__name__)


def fetch_batch(day: dt.date, cfg: IngestConfig) -> pd.DataFrame:
    """Return the batch of rows observed on `day` (UTC) from the configured source."""
    if cfg.source == "files" and cfg.files is not None:
        return files_batch(day, cfg.files)
    if cfg.source == "sql" and cfg.sql is not None:
        return sql_batch(day, cfg.sql)
    if cfg.source == "synthetic" and cfg.synthetic is not None:
        return synthetic_batch(day, cfg.synthetic)
    raise ConfigError(f"ingest.source is {cfg.source!r} but ingest.{cfg.source} is missing")


def run(window: Window, cfg: IngestConfig, raw_dir: Path) -> list[Path]:
    """Write the window's daily batches; drop files of days outside it."""
    days = window.dates()
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
    log.info(
        "ingested %d daily batches %s..%s from source %s into %s",
        len(days),
        days[0],
        days[-1],
        cfg.source,
        raw_dir,
    )
    return written
