"""The XGBoost model: parameters, device selection, the local training engine,
UBJSON save/load (never pickle, its calibration beside it) and scoring.

Both engines (`train_local` here, `dask_engine.train_on_dask`) train with the
same parameters and return a plain Booster, so everything after training is
shared; `training.train_model` picks the engine."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from .calibration import CALIBRATION_FILE, Calibration, read_calibration, write_calibration
from .config import TrainConfig
from .contract import DatasetContract
from .errors import StageInputError
from .files import read_json, require, write_json
from .logs import progress
from .split import Splits

log = logging.getLogger(__name__)

MODEL_FILE = "model.ubj"
META_FILE = "model_meta.json"


class FeatureMismatchError(StageInputError):
    """A model was trained on other features than the contract's (params.yaml dataset)."""


@dataclass
class ModelMeta:
    feature_names: list[str]  # what the model reads, in contract.feature_columns order
    device: str
    best_iteration: int
    threshold: float
    scale_pos_weight: float
    xgb_params: dict[str, Any]
    valid_metrics: dict[str, float]
    split_summary: dict[str, dict[str, float]] = field(default_factory=dict)
    engine: str = "local"  # train.engine that trained the model: local | dask
    workers: int = 1  # Dask workers that trained it (1: the local engine)
    # fitted on the valid split (train.calibration); model_meta.json names its method,
    # calibration.json holds it
    calibration: Calibration = field(default_factory=Calibration)


def cuda_usable() -> bool:
    """True when this XGBoost build can train on a visible CUDA device."""
    if not xgb.build_info().get("USE_CUDA"):
        return False
    probe = xgb.DMatrix(np.zeros((4, 1), dtype=np.float32), label=[0, 1, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            booster = xgb.train({"device": "cuda", "tree_method": "hist"}, probe, 1)
        except xgb.core.XGBoostError:
            return False
    config = json.loads(booster.save_config())
    return str(config["learner"]["generic_param"]["device"]).startswith("cuda")


def resolve_device(requested: str) -> str:
    """Map the `train.device` parameter to the device XGBoost will really use."""
    if requested == "cpu":
        return "cpu"
    usable = cuda_usable()
    if requested == "cuda" and not usable:
        log.warning("train.device is 'cuda' but no usable CUDA GPU was found: training on CPU")
    device = "cuda" if usable else "cpu"
    log.info("training device: %s (requested %s)", device, requested)
    return device


def feature_matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    return frame[features].to_numpy(dtype=np.float32)


def check_features(trained: list[str] | None, contract: DatasetContract, model: str) -> None:
    """A FeatureMismatchError naming the difference when `model` (what to call it in the
    message) reads other features than contract.feature_columns. Order does not matter:
    models are scored by feature name."""
    if trained is None:
        raise FeatureMismatchError(f"{model} records no feature names: retrain it")
    expected = contract.feature_columns
    missing = [c for c in expected if c not in trained]
    extra = [c for c in trained if c not in expected]
    if missing or extra:
        raise FeatureMismatchError(
            f"{model} was trained on other features than params.yaml dataset declares: "
            f"features of the contract it lacks: {missing or 'none'}; features it reads that "
            f"the contract no longer produces: {extra or 'none'}. Retrain on this contract "
            "(dvc repro train) or restore the contract the model was trained with."
        )


def scale_pos_weight(y_train: np.ndarray, cfg: TrainConfig) -> float:
    """train.scale_pos_weight, where `auto` is negatives / positives of the train split."""
    if cfg.scale_pos_weight != "auto":
        return float(cfg.scale_pos_weight)
    positives = int(y_train.sum())
    return (len(y_train) - positives) / positives


def xgb_params(cfg: TrainConfig, device: str, scale_pos_weight: float) -> dict[str, Any]:
    return {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "aucpr"],  # the last one drives early stopping
        "tree_method": "hist",
        "device": device,
        "learning_rate": cfg.learning_rate,
        "max_depth": cfg.max_depth,
        "min_child_weight": cfg.min_child_weight,
        "subsample": cfg.subsample,
        "colsample_bytree": cfg.colsample_bytree,
        "reg_lambda": cfg.reg_lambda,
        "max_bin": cfg.max_bin,
        "scale_pos_weight": scale_pos_weight,
        "seed": cfg.seed,
        "nthread": cfg.nthread,
    }


class _ProgressCallback(xgb.callback.TrainingCallback):
    def __init__(self, total: int) -> None:
        self._bar = progress()
        self._task = self._bar.add_task("train (boosting rounds)", total=total)

    def before_training(self, model: xgb.Booster) -> xgb.Booster:
        self._bar.start()
        return model

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        self._bar.advance(self._task)
        return False

    def after_training(self, model: xgb.Booster) -> xgb.Booster:
        self._bar.stop()
        return model


def best_f1_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))]) if len(thresholds) else 0.5


@dataclass
class Fit:
    """What a training engine hands back to `training.train_model`."""

    booster: xgb.Booster  # every round; best_iteration set by early stopping
    device: str  # the device XGBoost trained on
    params: dict[str, Any]  # the xgb_params it trained with
    evals_result: dict[str, dict[str, list[float]]]  # {"valid": {metric: [per round]}}
    valid_scores: np.ndarray  # scores of the valid split at the best iteration
    workers: int = 1  # Dask workers that trained (1: the local engine)


def training_matrices(
    splits: Splits, cfg: TrainConfig, contract: DatasetContract
) -> tuple[xgb.QuantileDMatrix, xgb.QuantileDMatrix]:
    """The train and valid splits as XGBoost matrices (valid binned like train)."""
    features, label = contract.feature_columns, contract.label.column
    dtrain = xgb.QuantileDMatrix(
        feature_matrix(splits.train, features),
        splits.train[label].to_numpy(),
        feature_names=features,
        max_bin=cfg.max_bin,
    )
    dvalid = xgb.QuantileDMatrix(
        feature_matrix(splits.valid, features),
        splits.valid[label].to_numpy(),
        feature_names=features,
        max_bin=cfg.max_bin,
        ref=dtrain,
    )
    return dtrain, dvalid


def fit_booster(
    cfg: TrainConfig,
    params: dict[str, Any],
    dtrain: xgb.DMatrix,
    dvalid: xgb.DMatrix,
    callback: xgb.callback.TrainingCallback,
) -> tuple[xgb.Booster, dict[str, Any]]:
    """XGBoost on `dtrain`, stopped early on `dvalid`'s eval_metric; `callback` watches
    each round (progress, or a tuning trial's pruning). Returns the booster and the
    valid split's metric per round."""
    evals_result: dict[str, Any] = {}
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=cfg.num_boost_round,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=cfg.early_stopping_rounds,
        evals_result=evals_result,
        verbose_eval=False,
        callbacks=[callback],
    )
    return booster, evals_result


def train_local(
    splits: Splits, cfg: TrainConfig, scale_pos_weight: float, contract: DatasetContract
) -> Fit:
    """The `local` engine: XGBoost in this process, on the whole train split in memory."""
    device = resolve_device(cfg.device)
    params = xgb_params(cfg, device, scale_pos_weight)
    dtrain, dvalid = training_matrices(splits, cfg, contract)
    booster, evals_result = fit_booster(
        cfg, params, dtrain, dvalid, _ProgressCallback(cfg.num_boost_round)
    )
    best = int(booster.best_iteration)
    valid_scores = booster.predict(dvalid, iteration_range=(0, best + 1))
    return Fit(booster, device, params, evals_result, valid_scores)


def save_model(booster: xgb.Booster, meta: ModelMeta, model_dir: Path) -> Path:
    """The booster (UBJSON), model_meta.json and calibration.json, into `model_dir`."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / MODEL_FILE
    tmp = model_dir / f".tmp.{MODEL_FILE}"
    booster.save_model(tmp)
    tmp.replace(path)
    write_calibration(meta.calibration, model_dir / CALIBRATION_FILE)
    write_json(asdict(meta) | {"calibration": meta.calibration.method}, model_dir / META_FILE)
    return path


def load_model(model_dir: Path, contract: DatasetContract) -> tuple[xgb.Booster, ModelMeta]:
    """The trained model and its calibration; a FeatureMismatchError when it reads other
    features than the contract's (params.yaml dataset changed since it was trained)."""
    booster = xgb.Booster()
    booster.load_model(require(model_dir / MODEL_FILE, "train"))
    fields = read_json(model_dir / META_FILE, "train")
    method = fields.pop("calibration", "none")
    calibration = Calibration()
    if method != "none" or (model_dir / CALIBRATION_FILE).is_file():
        path = require(model_dir / CALIBRATION_FILE, "train")
        calibration = read_calibration(path, f"the model in {model_dir}")
        if calibration.method != method:
            raise StageInputError(
                f"{model_dir}: {META_FILE} names the calibration {method!r} but "
                f"{CALIBRATION_FILE} holds {calibration.method!r}: re-run `dvc repro train`"
            )
    meta = ModelMeta(**fields, calibration=calibration)
    check_features(meta.feature_names, contract, f"the model in {model_dir}")
    return booster, meta


def predict_proba(
    booster: xgb.Booster, frame: pd.DataFrame, calibration: Calibration | None = None
) -> np.ndarray:
    """Scores of `frame`'s rows, read by the feature names the booster was trained on,
    through `calibration` when given (Calibration.apply)."""
    names = booster.feature_names
    if not names:
        raise FeatureMismatchError("the model records no feature names: retrain it")
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise FeatureMismatchError(f"the rows to score lack features the model reads: {missing}")
    raw = booster.predict(xgb.DMatrix(feature_matrix(frame, names), feature_names=names))
    return raw if calibration is None else calibration.apply(raw)


def ordered_matrix(booster: xgb.Booster, matrix: np.ndarray, columns: list[str]) -> np.ndarray:
    """`matrix`'s columns (the features `columns`, by name) in the order of the feature
    names the booster was trained on, as float32."""
    names = booster.feature_names
    if not names:
        raise FeatureMismatchError("the model records no feature names: retrain it")
    position = {c: i for i, c in enumerate(columns)}
    missing = [n for n in names if n not in position]
    if missing:
        raise FeatureMismatchError(f"the rows to score lack features the model reads: {missing}")
    return matrix[:, [position[n] for n in names]].astype(np.float32)


def predict_matrix(
    booster: xgb.Booster,
    matrix: np.ndarray,
    columns: list[str],
    calibration: Calibration | None = None,
) -> np.ndarray:
    """Scores of `matrix`'s rows, whose columns are the features `columns` (names), read by
    the feature names the booster was trained on: predict_proba for a few rows at a time
    (the service's), without a DataFrame or a DMatrix (XGBoost's inplace_predict)."""
    ordered = ordered_matrix(booster, matrix, columns)
    if not len(ordered):
        return np.empty(0, dtype=np.float32)
    raw = booster.inplace_predict(ordered)
    return raw if calibration is None else calibration.apply(raw)
