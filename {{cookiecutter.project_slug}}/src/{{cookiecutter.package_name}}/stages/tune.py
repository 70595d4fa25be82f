"""Stage `tune` (optional: params.yaml tune.enabled): an Optuna search over train's
XGBoost parameters on the train/valid days of the time split (tuning.py), one MLflow run
with a nested run per trial. Its output, paths.tuned_params, is a dep of `train`: the
best parameters when tuning is on; `{"enabled": false}` when off (train then uses
params.yaml `train` as it is)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from .. import tracking
from ..config import MlflowConfig, PathsConfig, SplitConfig, TrainConfig
from ..contract import DatasetContract
from ..split import time_split
from ..training import read_training_set
from ..tune_config import TuneConfig
from ..tuning import OBJECTIVE, Tuned, check_search_space, search, write_tuned

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)


def log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """One nested MLflow run per trial, under the active `tune` run."""
    import mlflow

    with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
        mlflow.set_tags({"stage": "tune.trial", "trial.state": trial.state.name.lower()})
        mlflow.log_params({"trial.number": trial.number, **trial.params})
        metrics = {"boosting_rounds": len(trial.intermediate_values)}
        if "best_iteration" in trial.user_attrs:  # completed: its score at its best round
            metrics[f"valid_{OBJECTIVE}"] = trial.value
            metrics["best_iteration"] = trial.user_attrs["best_iteration"]
        mlflow.log_metrics(metrics)


def run(
    paths: PathsConfig,
    split: SplitConfig,
    tune: TuneConfig,
    train: TrainConfig,
    mlflow_cfg: MlflowConfig,
    contract: DatasetContract,
) -> Tuned:
    """Search (tune.enabled) and write paths.tuned_params; return what was written."""
    check_search_space(tune, train)  # a bad space fails even while tuning is off
    if not tune.enabled:
        log.info("tuning is off (tune.enabled: false): train uses params.yaml train as it is")
        tuned = Tuned(enabled=False)
        write_tuned(tuned, paths.tuned_params)
        return tuned
    if train.engine != "local":
        log.info(
            "tuning trains on the local engine in this process (train.engine %s is for "
            "the final model only)",
            train.engine,
        )
    frame = read_training_set(paths, contract)
    splits = time_split(frame, split, contract)
    del frame
    import mlflow

    tracking.setup_mlflow(mlflow_cfg)
    with mlflow.start_run(run_name="tune") as parent:
        mlflow.set_tags({**tracking.lineage_tags(), "stage": "tune"})
        mlflow.log_params(
            {
                **tracking.flatten("tune", tune.model_dump(mode="json")),
                **tracking.flatten("split", split.model_dump(mode="json")),
            }
        )
        tuned = search(splits, tune, train, contract, on_trial=log_trial)
        tuned = replace(tuned, mlflow_run_id=parent.info.run_id)
        mlflow.log_metrics(
            {
                f"best_valid_{OBJECTIVE}": tuned.value or 0.0,
                f"default_valid_{OBJECTIVE}": tuned.default_value or 0.0,
                "trials": tuned.trials,
                "pruned": tuned.pruned,
                "seconds": tuned.seconds,
            }
        )
        mlflow.log_params({f"best.{k}": v for k, v in tuned.params.items()})
    write_tuned(tuned, paths.tuned_params)
    log.info(
        "tuned parameters written to %s; MLflow run %s", paths.tuned_params, tuned.mlflow_run_id
    )
    return tuned
