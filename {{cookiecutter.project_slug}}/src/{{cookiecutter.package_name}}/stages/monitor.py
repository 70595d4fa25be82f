"""Stage `monitor`: Evidently drift and quality checks of the newest data (raw batches
and the prediction log) against the training reference; writes the verdict.

Finding drift is a verdict, not a failure: `retrain` and its reasons are in
reports/monitoring/summary.json. Only a missing or unusable input raises.
"""

from __future__ import annotations

import datetime as dt

from .. import tracking
from ..batches import read_raw
from ..config import Params
from ..files import read_json, read_parquet
from ..logs import console
from ..model import load_model
from ..monitoring import build_monitor_data, describe, log_to_mlflow, run_checks, write_outputs
from ..monitoring.windows import quality_window
from ..prediction_log import read_prediction_log
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


def run(p: Params) -> None:
    """Check, write reports/monitoring/, log the run to MLflow, print the verdict."""
    cfg, contract = p.monitor, p.dataset
    booster, meta = load_model(p.paths.model_dir, contract)
    training = read_parquet(p.paths.training_set, "training_set")
    test_predictions = (
        read_parquet(p.paths.predictions, "evaluate") if p.paths.predictions.is_file() else None
    )
    data = build_monitor_data(
        raw=read_raw(p.paths.raw),
        reference=time_split(training, p.split, contract).train,
        booster=booster,
        threshold=meta.threshold,
        cfg=cfg,
        contract=contract,
        prediction_log=read_prediction_log(p.paths.prediction_log, contract, log_since(p)),
        test_predictions=test_predictions,
        end_date=p.window.end_date,
        calibration=meta.calibration,
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
