"""Training: fit the model on the train split with the engine `train.engine` names,
early-stop on the valid split, calibrate on it (train.calibration), pick the threshold
on the calibrated scores, describe the result.

`local` trains in this process (model.train_local); `dask` on a Dask cluster
(dask_engine.train_on_dask, imported only then: dask.distributed is heavy)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xgboost as xgb

from .calibration import Calibration, fit_calibration
from .config import DaskConfig, PathsConfig, TrainConfig
from .contract import DatasetContract
from .errors import StageInputError
from .files import read_parquet, require
from .model import ModelMeta, best_f1_threshold, scale_pos_weight, train_local
from .split import Splits

log = logging.getLogger(__name__)


def read_training_set(paths: PathsConfig, contract: DatasetContract) -> pd.DataFrame:
    """The columns training reads (features as float32), or a StageInputError naming
    the ones the training set lacks."""
    import pyarrow.parquet as pq

    features = contract.feature_columns
    columns = [contract.timestamp, contract.label.column, *features]
    # a file, or a folder of daily part files (stages/training_set.py)
    present = set(pq.ParquetDataset(require(paths.training_set, "training_set")).schema.names)
    missing = [c for c in columns if c not in present]
    if missing:
        raise StageInputError(
            f"{paths.training_set} lacks {missing}, declared in params.yaml dataset: "
            "re-run `dvc repro training_set`"
        )
    return read_parquet(paths.training_set, "training_set", columns=columns, float32=features)


def calibrate(
    cfg: TrainConfig, y_valid: np.ndarray, valid_scores: np.ndarray
) -> tuple[Calibration, float]:
    """The calibration of the valid split's scores (train.calibration), and the decision
    threshold on the calibrated scores (train.threshold; auto: the best F1 on the valid
    split). Like early stopping, both use the valid split: never the test days."""
    calibration = fit_calibration(cfg.calibration, y_valid, valid_scores)
    if cfg.threshold != "auto":
        threshold = float(cfg.threshold)
    else:
        threshold = best_f1_threshold(y_valid, calibration.apply(valid_scores))
    log.info("calibration: %s; threshold %.3f", calibration.method, threshold)
    return calibration, threshold


def check_classes(splits: Splits, contract: DatasetContract) -> None:
    """A StageInputError when the train or valid split holds a single class."""
    label = contract.label.column
    for name, part in (("train", splits.train), ("valid", splits.valid)):
        if part[label].nunique() < 2:
            raise StageInputError(
                f"the {name} split holds a single class of {label} (dataset.label.column): "
                "cannot train a classifier (check dataset.label.positive, or widen "
                "data.window_days)"
            )


def train_model(
    splits: Splits,
    cfg: TrainConfig,
    contract: DatasetContract,
    dask_cfg: DaskConfig | None = None,
) -> tuple[xgb.Booster, ModelMeta]:
    """Fit contract.feature_columns -> contract.label.column (0/1) on the train split,
    early-stop on the valid split, with `cfg.engine`: `local` (this process) or `dask`
    (xgboost.dask on the cluster `dask_cfg`, default cfg.dask)."""
    label = contract.label.column
    check_classes(splits, contract)
    y_train = splits.train[label].to_numpy()
    positives = int(y_train.sum())
    spw = scale_pos_weight(y_train, cfg)
    log.info(
        "training on %d rows (%.1f%% positive), validating on %d rows (engine: %s)",
        len(y_train),
        100 * positives / len(y_train),
        len(splits.valid),
        cfg.engine,
    )
    if cfg.engine == "dask":
        from .dask_engine import train_on_dask  # only this engine imports dask.distributed

        fit = train_on_dask(splits, cfg, dask_cfg or cfg.dask, spw, contract)
    else:
        fit = train_local(splits, cfg, spw, contract)
    best = int(fit.booster.best_iteration)
    calibration, threshold = calibrate(cfg, splits.valid[label].to_numpy(), fit.valid_scores)
    valid_metrics = {f"valid_{k}": float(v[best]) for k, v in fit.evals_result["valid"].items()}
    log.info("best iteration %d; %s; threshold %.3f", best, valid_metrics, threshold)
    # Keep only the trees up to the best iteration so every consumer predicts alike.
    booster = fit.booster[: best + 1]
    meta = ModelMeta(
        feature_names=list(contract.feature_columns),
        device=fit.device,
        best_iteration=best,
        threshold=threshold,
        scale_pos_weight=spw,
        xgb_params=fit.params,
        valid_metrics=valid_metrics,
        split_summary=splits.summary(label),
        engine=cfg.engine,
        workers=fit.workers,
        calibration=calibration,
    )
    return booster, meta
