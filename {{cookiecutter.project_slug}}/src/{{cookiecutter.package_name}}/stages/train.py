"""Stage `train`: XGBoost on the training set's train split, early-stopped on the valid
split, saved as UBJSON and tracked in MLflow. The parameters are params.yaml `train`,
with the tune stage's best values in place when tuning is on (paths.tuned_params)."""

from __future__ import annotations

import logging

from .. import tracking
from ..config import MlflowConfig, PathsConfig, SplitConfig, TrainConfig
from ..contract import DatasetContract
from ..files import write_json
from ..model import save_model
from ..split import time_split
from ..training import read_training_set, train_model
from ..tuning import read_tuned, tuned_config

log = logging.getLogger(__name__)


def run(
    paths: PathsConfig,
    split: SplitConfig,
    cfg: TrainConfig,
    mlflow: MlflowConfig,
    contract: DatasetContract,
) -> str:
    """Train, save the model to paths.model_dir and log the MLflow run; return its id."""
    frame = read_training_set(paths, contract)
    tuned = read_tuned(paths.tuned_params)
    cfg = tuned_config(cfg, tuned)
    if tuned.enabled:
        log.info("parameters from tuning (%s): %s", paths.tuned_params, tuned.params)
    splits = time_split(frame, split, contract)
    del frame  # the splits hold the rows now: peak memory stays near the training matrix
    booster, meta = train_model(splits, cfg, contract)
    save_model(booster, meta, paths.model_dir)
    tracking.setup_mlflow(mlflow)
    run_params = {
        **tracking.flatten("train", cfg.model_dump(mode="json", exclude={"dask"})),
        **(
            tracking.flatten("train.dask", cfg.dask.model_dump(mode="json"))
            if cfg.engine == "dask"
            else {}
        ),
        **tracking.flatten("split", split.model_dump(mode="json")),
        "dataset.label.column": contract.label.column,
        "dataset.label.horizon_days": contract.label.horizon_days,
        "tune.enabled": tuned.enabled,  # train.* above holds the tuned values then
        "tune.tuned_keys": ",".join(sorted(tuned.params)) or "none",
    }
    tune_run = {"tune.run_id": tuned.mlflow_run_id} if tuned.mlflow_run_id else {}
    run_id = tracking.log_training(
        booster,
        meta,
        run_params,
        sample=splits.train[contract.feature_columns].head(5).astype("float32"),
        tags=tracking.lineage_tags(extra=tune_run),
    )
    write_json({"run_id": run_id}, paths.model_dir / tracking.RUN_FILE)
    log.info("model saved to %s; MLflow run %s", paths.model_dir, run_id)
    return run_id
