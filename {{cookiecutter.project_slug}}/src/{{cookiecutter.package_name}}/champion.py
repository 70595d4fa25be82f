"""The champion: the registered model version with the MLflow alias `champion` (and
`candidate`, the newest version promote registered).

Everything the registry knows about a version the project uses lives here:

- registering a training run's model as a version (idempotent), recording the
  model's decision threshold on the version as the tag `threshold`, the sha256 of
  its model file as the tag `model_sha256` and that of its calibration file (logged
  with the model, calibration.py) as `calibration_sha256`;
- the threshold of a version: that tag (the one source; versions registered by hand,
  without it, fall back to the training run's param `model.threshold`);
- reading an alias, loading a version (booster, calibration, threshold) after checking
  its model and calibration files against the recorded sha256 (other bytes, or none
  recorded: ModelIntegrityError, never loaded; a version logged before calibrations
  existed has neither file nor tag, and scores uncalibrated), and `ChampionModel`,
  which holds the champion in memory for serving and reloads it when the alias moves;
  a version trained on other features than the contract's (params.yaml dataset)
  fails to load with a FeatureMismatchError naming the difference;
- scoring a holdout with a booster (and its calibration), by the feature names the
  booster was trained on.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .calibration import CALIBRATION_FILE, Calibration, CalibrationFileError, read_calibration
from .contract import DatasetContract
from .errors import PipelineError, StageInputError
from .files import file_digest
from .model import FeatureMismatchError, check_features, predict_proba

log = logging.getLogger(__name__)

CHAMPION = "champion"
CANDIDATE = "candidate"  # every version promote registers; served beside the champion in rollouts
DECISION_TAG = "promotion.decision"  # the promotion gate's decision, on every registered version
AWAITING_SHADOW = "awaiting_shadow"  # passed, held for a shadow period (promote.rollout)
GATE_PASSED = ("promoted", AWAITING_SHADOW)
THRESHOLD_TAG = "threshold"  # set on every version when it is registered
RUN_THRESHOLD_PARAM = "model.threshold"  # the training run's param (tracking.log_training)
DEFAULT_THRESHOLD = 0.5
DIGEST_TAG = "model_sha256"  # set on every version when it is registered
CALIBRATION_DIGEST_TAG = "calibration_sha256"  # ... when its model carries a calibration


class NoChampionError(PipelineError):
    """The registered model has no version with the champion alias yet."""


class ModelIntegrityError(PipelineError):
    """A version's model file is not the one recorded when it was registered."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    run_id: str
    threshold: float
    booster: Any
    calibration: Calibration = field(default_factory=Calibration)  # scores pass through it


class ModelHolder(Protocol):
    """What the service scores with (serving.create_app): ChampionModel, the version the
    `champion` alias points at, or PinnedVersion, one version whatever the aliases say."""

    def get(self) -> LoadedModel: ...


@dataclass(frozen=True)
class PinnedVersion:
    """One loaded version, served as it is: promote's infra validation serves the
    candidate through it, before any alias points at it."""

    model: LoadedModel

    def get(self) -> LoadedModel:
        return self.model


def alias_version(client: Any, name: str, alias: str) -> Any | None:
    """The ModelVersion `alias` points at; None when the model or the alias does not exist.

    A tracking server with MLflow's basic-auth app answers 403, not 404, for an alias of
    a model that does not exist yet: that is None too, once the model is known not to exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        if exc.error_code == "PERMISSION_DENIED" and not model_exists(client, name):
            return None
        raise


def model_exists(client: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def register(client: Any, name: str, run_id: str, threshold: float) -> Any:
    """The registered version of the model logged by `run_id`, registering it once
    (idempotent), with its decision threshold recorded as the version's tag."""
    import mlflow
    from mlflow.exceptions import MlflowException

    existing = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if existing:
        version = max(existing, key=lambda v: int(v.version))
    else:
        try:
            run = client.get_run(run_id)
        except MlflowException as exc:
            raise StageInputError(
                f"MLflow run {run_id} (models/mlflow_run.json) is not in the tracking store "
                f"{mlflow.get_tracking_uri()}: run `dvc repro train` against this store"
            ) from exc
        logged = client.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
        )
        uri = f"models:/{logged[0].model_id}" if logged else f"runs:/{run_id}/model"
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(
                name, description="Promoted by the promotion gate; `champion` is served."
            )
        version = mlflow.register_model(uri, name)
    client.set_model_version_tag(name, version.version, THRESHOLD_TAG, str(threshold))
    if not {DIGEST_TAG, CALIBRATION_DIGEST_TAG} <= set(version.tags or {}):
        with tempfile.TemporaryDirectory() as tmp:
            files = _download_model(name, str(version.version), Path(tmp))
            digests = {DIGEST_TAG: file_digest(files.model, "sha256")}
            if files.calibration is not None and files.calibration.is_file():
                digests[CALIBRATION_DIGEST_TAG] = file_digest(files.calibration, "sha256")
        for tag, digest in digests.items():
            if tag not in (version.tags or {}):
                client.set_model_version_tag(name, version.version, tag, digest)
    return client.get_model_version(name, version.version)


@dataclass(frozen=True)
class ModelFiles:
    """A version's files, downloaded: its XGBoost model and its calibration, if any."""

    model: Path
    calibration: Path | None


def _inside(local: Path, relative: str, suffixes: set[str], what: str) -> Path:
    path = (local / relative).resolve()
    if local.resolve() not in path.parents or path.suffix not in suffixes:
        raise ModelIntegrityError(
            f"{what}: its file {relative!r} is not a {'/'.join(sorted(suffixes))} file inside "
            "the model's artifacts"
        )
    return path


def _download_model(name: str, version: str, into: Path) -> ModelFiles:
    """The version's XGBoost model file (the flavor's `data`) and calibration file (one of
    its `extra_files`), downloaded into `into`."""
    import mlflow
    import yaml

    # a few small local files: MLflow's progress bar would only add noise to every load
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    local = Path(
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(into))
    )
    what = f"version {version} of model {name!r}"
    flavor = yaml.safe_load((local / "MLmodel").read_text()).get("flavors", {}).get("xgboost")
    if not flavor or "data" not in flavor:
        raise ModelIntegrityError(
            f"{what} is not an XGBoost model (its MLmodel has no xgboost flavor): only "
            "UBJSON/JSON boosters are loaded"
        )
    extra = [str(f.get("path", "")) for f in flavor.get("extra_files") or []]
    listed = [_inside(local, p, {".json"}, what) for p in extra if Path(p).name == CALIBRATION_FILE]
    model = _inside(local, flavor["data"], {".ubj", ".json"}, what)
    return ModelFiles(model, listed[0] if listed else None)


def _checked(path: Path | None, expected: str | None, what: str) -> None:
    """A ModelIntegrityError unless the file `path` has the sha256 `expected` (no file
    listed and no digest recorded: fine)."""
    if path is None and expected is None:
        return
    if path is None or not path.is_file():
        raise ModelIntegrityError(
            f"{what}: its file is missing (its model lists it, or its sha256 was recorded); "
            "it is not loaded"
        )
    if expected is None:
        raise ModelIntegrityError(
            f"{what}: no sha256 of it was recorded, so its bytes cannot be checked and it is "
            "not loaded: register models through the promote stage, which records the digests"
        )
    actual = file_digest(path, "sha256")
    if actual != expected:
        raise ModelIntegrityError(
            f"{what} has sha256 {actual}, but {expected} was recorded when it was "
            "registered; it is not loaded"
        )


def version_threshold(client: Any, model_version: Any) -> float:
    """The decision threshold of a registered version (see the module docstring)."""
    tagged = (model_version.tags or {}).get(THRESHOLD_TAG)
    if tagged is not None:
        return float(tagged)
    param = client.get_run(model_version.run_id).data.params.get(RUN_THRESHOLD_PARAM)
    if param is not None:
        return float(param)
    log.warning(
        "version %s of %r records no threshold (tag %r, run param %r): using %s",
        model_version.version,
        model_version.name,
        THRESHOLD_TAG,
        RUN_THRESHOLD_PARAM,
        DEFAULT_THRESHOLD,
    )
    return DEFAULT_THRESHOLD


def load_version(client: Any, name: str, version: str, contract: DatasetContract) -> LoadedModel:
    """A registered version's booster, calibration and threshold, their bytes checked; a
    FeatureMismatchError when it reads other features than contract.feature_columns."""
    import xgboost as xgb

    model_version = client.get_model_version(name, str(version))
    threshold = version_threshold(client, model_version)
    tags = model_version.tags or {}
    what = f"version {version} of model {name!r}"
    if not tags.get(DIGEST_TAG):
        raise ModelIntegrityError(
            f"{what} records no {DIGEST_TAG} tag, so its bytes cannot be checked and it is "
            "not loaded: register models through the promote stage, which records the digest"
        )
    with tempfile.TemporaryDirectory() as tmp:
        files = _download_model(name, str(version), Path(tmp))
        _checked(files.model, tags[DIGEST_TAG], f"{what}: its model file")
        _checked(files.calibration, tags.get(CALIBRATION_DIGEST_TAG), f"{what}: its calibration")
        booster = xgb.Booster()
        booster.load_model(str(files.model))
        calibration = Calibration()
        if files.calibration is not None:
            try:
                calibration = read_calibration(files.calibration, what)
            except CalibrationFileError as exc:
                raise ModelIntegrityError(str(exc)) from exc
    check_features(booster.feature_names, contract, what)
    return LoadedModel(name, str(version), model_version.run_id, threshold, booster, calibration)


def booster_scores(
    booster: Any, holdout: pd.DataFrame, calibration: Calibration | None = None
) -> np.ndarray:
    """Scores of `holdout` by the features the booster was trained on (by name), through
    `calibration` when given; a FeatureMismatchError (a StageInputError) when the holdout
    lacks one of them."""
    return predict_proba(booster, holdout, calibration)


def registered_scores(
    client: Any,
    name: str,
    version: str,
    holdout: pd.DataFrame,
    trained: Any,
    contract: DatasetContract,
    calibration: Calibration | None = None,
) -> np.ndarray:
    """The holdout's scores by the registered version, loaded as the service loads it
    (from the registry, its bytes checked, through its calibration); a PipelineError when
    they differ from the scores of the booster train wrote (`trained`, through its
    `calibration`): the registry holds another model."""
    candidate = load_version(client, name, version, contract)
    scores = booster_scores(candidate.booster, holdout, candidate.calibration)
    if not np.allclose(scores, booster_scores(trained, holdout, calibration), atol=1e-6):
        raise PipelineError(
            f"version {version} of {name!r} in the registry scores the holdout differently "
            "from the model the train stage wrote: it is not that model; nothing was promoted"
        )
    return scores


# why a champion cannot be served right now (the service answers 503 with the message)
UNSERVABLE = (NoChampionError, FeatureMismatchError, ModelIntegrityError)


class ChampionModel:
    """Holds the champion in memory; checks the alias at most every `refresh_seconds`.
    A champion trained on other features than `contract`'s, or whose model file is not
    the one registered, is never served: get() raises FeatureMismatchError or
    ModelIntegrityError (and retries at the next call)."""

    def __init__(self, name: str, contract: DatasetContract, refresh_seconds: float = 30.0) -> None:
        import mlflow

        self.name = name
        self.contract = contract
        self.refresh_seconds = refresh_seconds
        self._client = mlflow.MlflowClient()
        self._lock = threading.Lock()
        self._model: LoadedModel | None = None
        self._checked = 0.0

    def _champion_version(self) -> str:
        from mlflow.exceptions import MlflowException

        try:
            return str(self._client.get_model_version_by_alias(self.name, CHAMPION).version)
        except MlflowException as exc:
            raise NoChampionError(
                f"no '{CHAMPION}' version of model '{self.name}' in the MLflow registry yet: "
                "run the pipeline (its promote stage) or set the alias"
            ) from exc

    def get(self) -> LoadedModel:
        now = time.monotonic()
        with self._lock:
            if self._model is None or now - self._checked >= self.refresh_seconds:
                version = self._champion_version()
                if self._model is None or self._model.version != version:
                    self._model = load_version(self._client, self.name, version, self.contract)
                    log.info("serving %s version %s", self.name, version)
                self._checked = now
            return self._model
