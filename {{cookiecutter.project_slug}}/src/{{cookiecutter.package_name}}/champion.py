"""The champion model from the MLflow registry (alias `champion`), reloaded when the alias moves."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from .errors import PipelineError

log = logging.getLogger(__name__)

CHAMPION = "champion"


class NoChampionError(PipelineError):
    """The registered model has no version with the champion alias yet."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    run_id: str
    threshold: float
    booster: Any


def load_version(client: Any, name: str, version: str) -> LoadedModel:
    import mlflow.xgboost

    model_version = client.get_model_version(name, version)
    run = client.get_run(model_version.run_id)
    threshold = float(run.data.params.get("model.threshold", 0.5))
    booster = mlflow.xgboost.load_model(f"models:/{name}/{version}")
    return LoadedModel(name, str(version), model_version.run_id, threshold, booster)


class ChampionModel:
    """Holds the champion in memory; checks the alias at most every `refresh_seconds`."""

    def __init__(self, name: str, refresh_seconds: float = 30.0) -> None:
        import mlflow

        self.name = name
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
                self._checked = now
                if self._model is None or self._model.version != version:
                    self._model = load_version(self._client, self.name, version)
                    log.info("serving %s version %s", self.name, version)
            return self._model
