"""Monitoring: compare what the model sees now with what it was trained on, and decide.

- reference: the rows the model was trained on (the train split of the training set);
- current: the newest `monitor.current_days` days of raw batches, plus the newest
  days of the serving prediction log (prediction_log.py: one record per served prediction);
- labelled: the newest `current_days` days whose labels are known by the window's end
  (`dataset.label.horizon_days`), for model quality.

Every column comes from the dataset contract (params.yaml `dataset`). The package, in
the order a run uses it:

- columns.py: the monitored columns, and the columns each input must hold;
- data.py: the monitored view of features and raw batches, the windows, sampling,
  and `build_monitor_data` (the reference, current and labelled rows of a run);
- checks.py: feature drift, prediction drift, model quality and data quality, each with
  thresholds in params.yaml (`monitor:`), and `verdict` (retrain, and why);
- evidently_reports.py: the Evidently reports the checks read their numbers from;
- versions.py: score drift and quality per model version of the prediction log
  (served and shadow), beside the verdict;
- reports.py: summary.json (for machines), metrics.json (DVC metrics), the run folders
  and their index page, the MLflow run, and the console paragraph.

The monitor stage (stages/monitor.py) runs them in that order.
"""

from __future__ import annotations

from .checks import MonitorResult, run_checks, verdict
from .columns import MonitoredColumns
from .data import MonitorData, build_monitor_data, monitoring_view
from .reports import describe, log_to_mlflow, write_index, write_outputs

__all__ = [
    "MonitorData",
    "MonitorResult",
    "MonitoredColumns",
    "build_monitor_data",
    "describe",
    "log_to_mlflow",
    "monitoring_view",
    "run_checks",
    "verdict",
    "write_index",
    "write_outputs",
]
