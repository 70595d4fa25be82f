"""Stage `ingest`: land one parquet file per daily batch of the window in the raw folder.

`fetch_batch` is the seam to your source. The template ships a deterministic
generator behind it; replace its body with a query of your warehouse, a read
from object storage or an API call that returns the same columns (see
datagen.RAW_COLUMNS and expectations/raw.json).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd

from ..batches import batch_path
from ..config import IngestConfig, Window
from ..datagen import generate_day
from ..files import write_parquet
from ..logs import progress

log = logging.getLogger(__name__)


def fetch_batch(day: dt.date, cfg: IngestConfig) -> pd.DataFrame:
    """Return the batch of rows observed on `day`. Replace with your source."""
    synthetic = cfg.synthetic
    return generate_day(
        day,
        rows=synthetic.rows_per_day,
        n_customers=synthetic.n_customers,
        seed=synthetic.seed,
        drift_start=synthetic.drift.start_date,
        covariate_drift=synthetic.drift.covariate,
        concept_drift=synthetic.drift.concept,
    )


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
    log.info("ingested %d daily batches %s..%s into %s", len(days), days[0], days[-1], raw_dir)
    return written
