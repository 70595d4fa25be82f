"""Stage `monitor`: Evidently drift and quality checks of the newest data (raw batches
and the prediction log) against the training reference; writes the verdict.

Finding drift is a verdict, not a failure: `retrain` and its reasons are in
reports/monitoring/summary.json. Only a missing or unusable input raises.

A run reads what it judges, not the whole window: the raw batches whose rows can fall
in its windows (`read_window_raw`) and, of the training set, the timestamps (to find
the train split) and the features and label of the split's sampled rows
(`read_reference`). The data are those a read of the whole window and training set
gives (tests/unit/test_monitoring.py compares them).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .. import tracking
from ..batches import raw_batch_files
from ..config import Params
from ..files import read_json, read_parquet, require
from ..logs import console
from ..model import load_model
from ..monitoring import build_monitor_data, describe, log_to_mlflow, run_checks, write_outputs
from ..monitoring.columns import MonitoredColumns
from ..monitoring.windows import quality_window, raw_needed_from, sample_positions
from ..parquet_parts import files_from, newest_of
from ..prediction_log import PredictionLog, read_prediction_log
from ..prediction_log_files import segments
from ..split import time_split


def log_since(p: Params) -> dt.date:
    """The oldest day of the prediction log the monitor needs: its quality window (the
    matured days before interval.yaml end_date) and its drift window (the log's newest
    monitor.current_days days; a day's file may start with the day before's last lines)."""
    quality_start, _ = quality_window(p.dataset, p.window.end_date, p.monitor.current_days)
    since = quality_start.date()
    if days := segments(p.paths.prediction_log):
        since = min(since, days[-1][0] - dt.timedelta(days=p.monitor.current_days))
    return since


def read_window_raw(p: Params, prediction_log: PredictionLog | None) -> pd.DataFrame:
    """The raw batches (as batches.read_raw reads them) from the oldest instant the run
    uses on (windows.raw_needed_from): a file whose rows are all older is not read
    (parquet_parts.py). Every file is read when one lacks the timestamp column."""
    files, ts = raw_batch_files(p.paths.raw), p.dataset.timestamp
    newest = newest_of(files, ts)
    if newest is not None and newest is not pd.NaT:
        served = prediction_log.frame if prediction_log is not None else None
        start = raw_needed_from(
            newest, p.dataset, p.monitor.current_days, p.window.end_date, served
        )
        files = files_from(files, ts, start)
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def read_reference(p: Params) -> tuple[pd.DataFrame, int]:
    """The rows of the training set's train split (split.time_split) the monitor compares
    with: monitor.sample_rows of them, drawn as windows.sample draws them from the whole
    split, their features and label only; and the split's row count. The training set
    is read in Arrow: only the sampled rows become a DataFrame."""
    path, columns = require(p.paths.training_set, "training_set"), MonitoredColumns.of(p.dataset)
    present = set(ds.dataset(path, format="parquet").schema.names)  # a file or a folder
    wanted = [columns.timestamp, *columns.features, columns.label]
    table = pq.read_table(path, columns=[c for c in dict.fromkeys(wanted) if c in present])
    stamps = table.select([c for c in [columns.timestamp] if c in present]).to_pandas()
    train = time_split(stamps.assign(_row=np.arange(len(stamps))), p.split, p.dataset).train
    rows = train["_row"].to_numpy()
    drawn = rows[sample_positions(len(rows), p.monitor.sample_rows, p.monitor.seed)]
    reference = table.take(drawn).to_pandas()
    return reference.drop(columns=[columns.timestamp], errors="ignore"), len(rows)


def run(p: Params) -> None:
    """Check, write reports/monitoring/, log the run to MLflow, print the verdict."""
    cfg, contract = p.monitor, p.dataset
    booster, meta = load_model(p.paths.model_dir, contract)
    reference, reference_rows = read_reference(p)
    test_predictions = (
        read_parquet(p.paths.predictions, "evaluate") if p.paths.predictions.is_file() else None
    )
    prediction_log = read_prediction_log(p.paths.prediction_log, contract, log_since(p))
    data = build_monitor_data(
        raw=read_window_raw(p, prediction_log),
        reference=reference,
        booster=booster,
        threshold=meta.threshold,
        cfg=cfg,
        contract=contract,
        prediction_log=prediction_log,
        test_predictions=test_predictions,
        end_date=p.window.end_date,
        calibration=meta.calibration,
        reference_rows=reference_rows,
    )
    result = run_checks(data, cfg)
    run_dir = write_outputs(result, p.paths.monitoring, cfg.keep_runs)
    tracking.setup_mlflow(p.mlflow)
    run_file = p.paths.model_dir / tracking.RUN_FILE
    model_run = read_json(run_file, "train")["run_id"] if run_file.is_file() else None
    mlflow_run = log_to_mlflow(result, run_dir, model_run, tracking.lineage_tags())
    console.print(describe(result), highlight=False)
    console.print(
        f"reports: {p.paths.monitoring / 'index.html'} (this run: {run_dir}); "
        f"verdict: {p.paths.monitoring / 'summary.json'}; MLflow run {mlflow_run}",
        highlight=False,
    )
