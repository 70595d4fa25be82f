"""Stage `train`: XGBoost on the training set's train split, early-stopped on the valid
split, saved as UBJSON and tracked in MLflow."""

from __future__ import annotations

import logging

from .. import tracking
from ..config import MlflowConfig, PathsConfig, SplitConfig, TrainConfig
from ..features import FEATURE_COLUMNS, LABEL, TIMESTAMP
from ..files import read_parquet, write_json
from ..model import save_model
from ..split import time_split
from ..training import train_model

log = logging.getLogger(__name__)


def run(
    paths: PathsConfig,
    split: SplitConfig,
    cfg: TrainConfig,
    mlflow: MlflowConfig,
) -> str:
    """Train, save the model to paths.model_dir and log the MLflow run; return its id."""
    frame = read_parquet(
        paths.training_set,
        "training_set",
        columns=[TIMESTAMP, LABEL, *FEATURE_COLUMNS],
        float32=FEATURE_COLUMNS,
    )
    splits = time_split(frame, split)
    del frame  # the splits hold the rows now: peak memory stays near the training matrix
    booster, meta = train_model(splits, cfg)
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
    }
    run_id = tracking.log_training(
        booster,
        meta,
        run_params,
        sample=splits.train[FEATURE_COLUMNS].head(5).astype("float32"),
        tags=tracking.lineage_tags(),
    )
    write_json({"run_id": run_id}, paths.model_dir / tracking.RUN_FILE)
    log.info("model saved to %s; MLflow run %s", paths.model_dir, run_id)
    return run_id
