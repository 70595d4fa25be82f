"""Stage `ingest`: land one parquet file per daily batch of the window in the raw folder.

`fetch_batch` is the seam to your source. params.yaml `ingest.source` picks one of
sources.py: `synthetic` (deterministic generated rows), `files` (CSV or
parquet files cut into days by their timestamp) or `sql` (one query per day).
For anything else (an API, a warehouse client), replace fetch_batch's body with
a read that returns the day's rows with the columns params.yaml `dataset` declares.
Each batch is then conformed to that contract (the key as its declared type, UTC
timestamps, the label as 1/0) and judged by the raw gate.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd

from ..batches import batch_path
from ..config import Window
from ..contract import DatasetContract
from ..errors import ConfigError, StageInputError
from ..files import write_parquet
from ..ingest_config import IngestConfig
from ..logs import progress
from ..sources import files_batch, sql_batch, synthetic_batch

log = logging.getLogger(__name__)


def fetch_batch(day: dt.date, cfg: IngestConfig, contract: DatasetContract) -> pd.DataFrame:
    """Return the batch of rows observed on `day` (UTC) from the configured source, with
    the columns of `contract` (params.yaml `dataset`)."""
    if cfg.source == "files" and cfg.files is not None:
        return files_batch(day, cfg.files, contract.timestamp)
    if cfg.source == "sql" and cfg.sql is not None:
        return sql_batch(day, cfg.sql, contract.timestamp)
    if cfg.source == "synthetic" and cfg.synthetic is not None:
        return synthetic_batch(day, cfg.synthetic, contract)
    raise ConfigError(f"ingest.source is {cfg.source!r} but ingest.{cfg.source} is missing")


def conformed_batch(day: dt.date, cfg: IngestConfig, contract: DatasetContract) -> pd.DataFrame:
    """The day's batch from the source, conformed to the dataset contract."""
    batch = fetch_batch(day, cfg, contract)
    try:
        return contract.conform(batch, f"ingest {day.isoformat()}")
    except ValueError as exc:
        raise StageInputError(str(exc)) from exc


def run(window: Window, cfg: IngestConfig, contract: DatasetContract, raw_dir: Path) -> list[Path]:
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
            write_parquet(conformed_batch(day, cfg, contract), path)
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
