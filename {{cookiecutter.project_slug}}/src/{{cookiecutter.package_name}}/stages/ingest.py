"""Stage `ingest`: land one parquet file per daily batch of the window in the raw folder.

`fetch_batch` is the seam to your source. params.yaml `ingest.source` picks one of
sources.py: `synthetic` (deterministic generated rows), `files` (CSV or
parquet files cut into days by their timestamp) or `sql` (one query per day).
For anything else (an API, a warehouse client), replace fetch_batch's body with
a read that returns the day's rows with the columns params.yaml `dataset` declares.
Each batch is then conformed to that contract (the key as its declared type, UTC
timestamps, the label as 1/0) and judged by the raw gate.

A batch, once landed, is kept (partitions.py): a daily run fetches only the day that
entered the window and deletes the one that left it. Every day is fetched again when
the source's settings (params.yaml `ingest.source` and its section), the contract or
this code change (the fingerprint in data/raw/_manifest.json), or with `ingest
--refetch` (a database that corrected days already landed). The `files` source gives
each day a key, a hash of the rows its files hold for that day: when the files change
(a day appended, a day corrected), only the days whose rows changed are fetched again.
A day fetched again from unchanged rows is the same file, byte for byte, so the stages
after ingest do not redo it.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd

from .. import contract as contract_module
from .. import contract_rows, datagen, files, partitions, sources
from ..batches import BATCH_PREFIX, batch_path
from ..config import Window
from ..contract import DatasetContract
from ..errors import ConfigError, StageInputError
from ..files import write_parquet
from ..ingest_config import IngestConfig
from ..logs import progress
from ..partitions import DayFiles
from ..sources import files_batch, files_day_keys, sql_batch, synthetic_batch

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


def code_fingerprint(cfg: IngestConfig, contract: DatasetContract) -> str:
    """What every landed batch depends on besides its day (and, for the `files` source,
    its rows: day_keys): the chosen source's settings, the contract and the code that
    fetches and conforms it."""
    modules = [sources, datagen, contract_rows, contract_module, files, partitions]
    section = getattr(cfg, cfg.source)
    return partitions.fingerprint(
        [*modules, Path(__file__)],
        source=cfg.source,
        settings=section.model_dump(mode="json") if section is not None else None,
        contract=contract.model_dump(mode="json"),
    )


def day_keys(
    days: list[dt.date], cfg: IngestConfig, contract: DatasetContract
) -> dict[dt.date, str]:
    """What each day's batch is fetched from: a hash of its rows for the `files` source;
    nothing for the others (a generated day is its settings' and day's; a database
    cannot be hashed: `ingest --refetch`)."""
    if cfg.source == "files" and cfg.files is not None:
        return files_day_keys(days, cfg.files, contract.timestamp)
    return dict.fromkeys(days, "")


def run(
    window: Window,
    cfg: IngestConfig,
    contract: DatasetContract,
    raw_dir: Path,
    refetch: bool = False,
) -> list[Path]:
    """Write the window's daily batches not landed yet (every one with `refetch`); drop
    files of days outside it. Returns the window's batch files."""
    days = window.dates()
    fingerprint = code_fingerprint(cfg, contract)
    raw_dir.mkdir(parents=True, exist_ok=True)
    if refetch:
        (raw_dir / partitions.MANIFEST).unlink(missing_ok=True)
    batches = DayFiles(raw_dir, BATCH_PREFIX)
    keys = day_keys(days, cfg, contract)
    plan = partitions.plan(raw_dir, fingerprint, keys, [batches])
    entries = dict(plan.kept_entries)
    with progress() as bar:
        task = bar.add_task("ingest", total=len(plan.build))
        for day in plan.build:
            batch = conformed_batch(day, cfg, contract)
            write_parquet(batch, batches.path(day))
            entries[day.isoformat()] = {"key": keys[day], "rows": len(batch)}
            bar.advance(task)
    partitions.record(raw_dir, fingerprint, entries, source=cfg.source)
    log.info(
        "ingest: %s of the window %s..%s, from source %s into %s",
        plan.describe(),
        days[0],
        days[-1],
        cfg.source,
        raw_dir,
    )
    return [batch_path(raw_dir, day) for day in days]
