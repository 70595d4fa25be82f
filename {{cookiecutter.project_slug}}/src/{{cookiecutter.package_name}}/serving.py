"""HTTP prediction service: features from the Feast online store, model from the
MLflow registry (alias `champion`), every prediction appended to the prediction log
(prediction_log.py: the record the monitor reads back).

Start with `make serve` (binds 127.0.0.1). Endpoints: POST /predict, GET /health,
GET /metadata; OpenAPI docs at /docs. The request and response models are built
from the dataset contract: ids are the entity key's values, of its declared type.
"""

# No `from __future__ import annotations` here: the endpoint's request model is built per
# contract in create_app, and FastAPI reads the annotation as a class at run time.

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    create_model,
)

from .champion import ChampionModel, LoadedModel, NoChampionError
from .config import Params
from .contract import DatasetContract
from .features import FEATURE_SERVICE
from .model import FeatureMismatchError, predict_proba
from .prediction_log import PredictionLogWriter, PredictionRecord

MAX_BATCH = 1000
UNKNOWN_ENTITY = "no features in the online store for this id (unknown, or older than the TTL)"


@dataclass(frozen=True)
class ApiModels:
    """The contract's request and response models (pydantic)."""

    request: type[BaseModel]
    prediction: type[BaseModel]
    response: type[BaseModel]


def api_models(contract: DatasetContract) -> ApiModels:
    """/predict's models for `contract`: ids are strict JSON integers or non-empty strings
    (dataset.entity.dtype); "12" is not the integer 12 and 12 is not the string "12"."""
    entity, label = contract.entity, contract.label
    id_type: Any = (
        StrictInt
        if entity.dtype == "int"
        else Annotated[StrictStr, StringConstraints(min_length=1)]
    )
    kind = "integer" if entity.dtype == "int" else "string"
    about = f"a value of `{entity.key}` (dataset.entity.key), the `{entity.name}` entity's id"
    request = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        ids=(
            list[id_type],
            Field(
                min_length=1,
                max_length=MAX_BATCH,
                description=f"The entities to score, 1 to {MAX_BATCH}: each {about} (JSON {kind})",
            ),
        ),
    )
    prediction = create_model(
        "Prediction",
        id=(id_type, Field(description=f"The id asked for: {about}")),
        status=(
            Literal["ok", "unknown_entity"],
            Field(description="`unknown_entity`: the online store holds no features for the id"),
        ),
        score=(
            float | None,
            Field(
                None,
                description=f"The model's probability that `{label.column}` is positive "
                f"({label.positive!r}); null for an unknown entity",
            ),
        ),
        label=(
            int | None,
            Field(
                None, description="1 when score >= the model's threshold, else 0; null if unknown"
            ),
        ),
        detail=(str | None, Field(None, description="Why an id has no score")),
    )
    response = create_model(
        "PredictResponse",
        model_name=(str, Field(description="The registered model")),
        model_version=(str, Field(description="The registry version that scored")),
        predictions=(list[prediction], Field(description="One answer per id, in request order")),
    )
    return ApiModels(request, prediction, response)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def score_rows(
    model: LoadedModel, known: pd.DataFrame, contract: DatasetContract
) -> tuple[dict[Any, dict[str, Any]], list[PredictionRecord]]:
    """The answer for each id with online features, and its prediction-log record."""
    columns = contract.feature_columns
    scores = predict_proba(model.booster, known) if len(known) else np.array([])
    ids = known[contract.entity.key].tolist()
    values = known[columns].to_numpy(dtype="float64").tolist()
    now = dt.datetime.now(dt.UTC).isoformat()
    answers: dict[Any, dict[str, Any]] = {}
    records = []
    for entity_id, row, score in zip(ids, values, scores.tolist(), strict=True):
        label = int(score >= model.threshold)
        answers[entity_id] = {"id": entity_id, "status": "ok", "score": score, "label": label}
        records.append(
            PredictionRecord(
                timestamp=now,
                request_id=str(uuid.uuid4()),
                entity_id=entity_id,
                model_name=model.name,
                model_version=model.version,
                features={c: _finite(v) for c, v in zip(columns, row, strict=True)},
                score=score,
                predicted=label,
            )
        )
    return answers, records


def create_app(
    store: Any, champion: ChampionModel, log_path: Path, contract: DatasetContract
) -> FastAPI:
    """The service over `store` (its feature view checked against `contract`)."""
    from .feature_store import feature_view, freshness, online_features

    feature_view(store, contract)
    models = api_models(contract)
    request_model = models.request
    app = FastAPI(title="{{ cookiecutter.project_name }} prediction service", version="1")
    prediction_log = PredictionLogWriter(log_path)

    def model_or_503() -> LoadedModel:
        try:
            return champion.get()
        except (NoChampionError, FeatureMismatchError) as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc

    @app.post("/predict", response_model=models.response)
    def predict(request: request_model) -> dict[str, Any]:  # type: ignore[valid-type]
        model = model_or_503()
        ids = request.ids  # type: ignore[attr-defined]
        known, unknown = online_features(store, ids, contract)
        by_id = {
            i: {"id": i, "status": "unknown_entity", "detail": UNKNOWN_ENTITY} for i in unknown
        }
        answers, records = score_rows(model, known, contract)
        by_id.update(answers)
        if records:
            prediction_log.append(records)
        return {
            "model_name": model.name,
            "model_version": model.version,
            "predictions": [by_id[i] for i in ids],
        }

    @app.get("/health")
    def health() -> dict[str, Any]:
        try:
            model = champion.get()
        except (NoChampionError, FeatureMismatchError) as exc:
            return {"status": "degraded", "model_loaded": False, "detail": str(exc)}
        return {"status": "ok", "model_loaded": True, "model_version": model.version}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        model = model_or_503()
        return {
            "model_name": model.name,
            "model_version": model.version,
            "model_run_id": model.run_id,
            "threshold": model.threshold,
            "entity": contract.entity.model_dump(),
            "feature_service": FEATURE_SERVICE,
            "features": contract.feature_columns,
            "online_store": store.config.online_store.type,
            "features_fresh_until": freshness(store, contract),
        }

    return app


def serve(p: Params, host: str | None = None, port: int | None = None) -> None:
    """Run the service (uvicorn) on serving.host:serving.port unless told otherwise."""
    import logging

    import uvicorn

    from . import tracking
    from .feature_store import open_store

    tracking.setup_mlflow(p.mlflow)
    champion = ChampionModel(p.mlflow.registered_model, p.dataset, p.serving.refresh_seconds)
    try:  # load before accepting requests, so the first ones are not slow
        champion.get()
    except (NoChampionError, FeatureMismatchError) as exc:
        logging.getLogger(__name__).warning(
            "%s; /predict answers 503 until a usable champion exists", exc
        )
    app = create_app(open_store(), champion, p.paths.prediction_log, p.dataset)
    uvicorn.run(app, host=host or p.serving.host, port=port or p.serving.port, log_level="info")
