"""MLflow tracking: where runs go, and the lineage every run carries.

The tracking URI comes from MLFLOW_TRACKING_URI when set (a remote server in
production), else from params.yaml (embedded SQLite). Artifacts of the
embedded setup go to ./mlartifacts.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .config import MlflowConfig

log = logging.getLogger(__name__)

RUN_FILE = "mlflow_run.json"


def setup_mlflow(cfg: MlflowConfig, root: Path = Path()) -> str:
    """Point MLflow at the tracking store and experiment; return the experiment id."""
    import mlflow

    uri = os.environ.get("MLFLOW_TRACKING_URI", cfg.tracking_uri)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(cfg.experiment)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        location = None
        if uri.startswith("sqlite:"):
            location = (root / "mlartifacts").resolve().as_uri()
        experiment_id = mlflow.create_experiment(cfg.experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit(root: Path = Path()) -> dict[str, str]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = "true" if git("status", "--porcelain", "--untracked-files=no") else "false"
    return {"git_commit": commit, "git_dirty": dirty}


def dvc_hashes(root: Path = Path()) -> dict[str, str]:
    """The DVC content hashes of every stage output recorded in dvc.lock so far.

    During `dvc repro` each finished upstream stage is already in dvc.lock, so a
    run records exactly which data versions it was trained and evaluated on.
    """
    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    tags = {}
    for stage in stages.values():
        for out in stage.get("outs", []):
            tags[f"dvc.{out['path']}"] = out.get("md5", "")
    return tags


def lineage_tags(root: Path = Path(), extra: dict[str, Any] | None = None) -> dict[str, str]:
    tags = {**git_commit(root), **dvc_hashes(root)}
    tags.update({k: str(v) for k, v in (extra or {}).items()})
    return tags


def flatten(prefix: str, data: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(flatten(name, value))
        else:
            flat[name] = value
    return flat


def log_training(
    booster: Any,
    meta: Any,
    params: dict[str, Any],
    sample: Any,
    tags: dict[str, str],
) -> str:
    """One MLflow run per training: params, validation metrics, lineage tags and
    the model in the XGBoost flavor (UBJSON), its calibration (`meta.calibration`, as
    calibration.json) among the model's files. Returns the run id."""
    import tempfile

    import mlflow
    import xgboost as xgb
    from mlflow.models import infer_signature

    from .calibration import CALIBRATION_FILE, write_calibration

    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name="train") as run:
        mlflow.set_tags(
            {
                **tags,
                "stage": "train",
                "device_used": meta.device,
                "engine": meta.engine,
                "workers": str(meta.workers),
                "calibration": meta.calibration.method,
            }
        )
        mlflow.log_params({**params, "model.threshold": meta.threshold})
        mlflow.log_metrics({**meta.valid_metrics, "best_iteration": meta.best_iteration})
        signature = infer_signature(sample, booster.predict(xgb.DMatrix(sample)))
        calibration = Path(tmp) / CALIBRATION_FILE
        write_calibration(meta.calibration, calibration)
        mlflow.xgboost.log_model(
            booster,
            name="model",
            model_format="ubj",
            signature=signature,
            pip_requirements=[f"xgboost=={xgb.__version__}"],
            extra_files=[str(calibration)],  # the model's extra_files/calibration.json
        )
        return run.info.run_id


def log_evaluation(
    run_id: str, metrics: dict[str, Any], artifacts: list[Path], tags: dict[str, str]
) -> None:
    """Add test metrics, plots and reports to the training run they evaluate."""
    import mlflow

    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags(tags)
        numeric = {
            f"test_{k}": float(v)
            for k, v in flatten("", metrics).items()
            if isinstance(v, int | float)
        }
        mlflow.log_metrics(numeric)
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path="evaluation")
