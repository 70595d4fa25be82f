"""HTTP prediction service: features from the Feast online store, model from the
MLflow registry (alias `champion`), every prediction appended to the prediction log
(prediction_log.py: the record the monitor reads back).

Start with `make serve` (binds 127.0.0.1). Endpoints: POST /predict, GET /health,
GET /metadata; OpenAPI docs at /docs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from .champion import ChampionModel, LoadedModel, NoChampionError
from .config import Params
from .features import ENTITY, FEATURE_COLUMNS, FEATURE_SERVICE
from .model import predict_proba
from .prediction_log import PredictionLogWriter, PredictionRecord

MAX_BATCH = 1000


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_ids: list[int] = Field(min_length=1, max_length=MAX_BATCH, description="Entity ids")


class Prediction(BaseModel):
    customer_id: int
    status: Literal["ok", "unknown_entity"]
    score: float | None = None
    label: int | None = None
    detail: str | None = None


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    predictions: list[Prediction]


UNKNOWN_ENTITY = (
    "no features in the online store for this customer (unknown id, or older than the TTL)"
)


def score_rows(
    model: LoadedModel, known: pd.DataFrame
) -> tuple[dict[int, Prediction], list[PredictionRecord]]:
    """The answer for each customer with online features, and its prediction-log record."""
    scores = predict_proba(model.booster, known) if len(known) else np.array([])
    now = dt.datetime.now(dt.UTC).isoformat()
    answers: dict[int, Prediction] = {}
    records = []
    for row, score in zip(known.itertuples(index=False), scores, strict=True):
        customer = int(getattr(row, ENTITY))
        label = int(score >= model.threshold)
        answers[customer] = Prediction(
            customer_id=customer, status="ok", score=float(score), label=label
        )
        records.append(
            PredictionRecord(
                timestamp=now,
                request_id=str(uuid.uuid4()),
                customer_id=customer,
                model_name=model.name,
                model_version=model.version,
                features={c: float(getattr(row, c)) for c in FEATURE_COLUMNS},
                score=float(score),
                predicted=label,
            )
        )
    return answers, records


def create_app(store: Any, champion: ChampionModel, log_path: Path) -> FastAPI:
    from .feature_store import freshness, online_features

    app = FastAPI(title="{{ cookiecutter.project_name }} prediction service", version="1")
    prediction_log = PredictionLogWriter(log_path)

    def model_or_503() -> LoadedModel:
        try:
            return champion.get()
        except NoChampionError as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc

    @app.post("/predict", response_model=PredictResponse)
    def predict(request: PredictRequest) -> PredictResponse:
        model = model_or_503()
        known, unknown = online_features(store, request.customer_ids)
        by_id = {
            i: Prediction(customer_id=i, status="unknown_entity", detail=UNKNOWN_ENTITY)
            for i in unknown
        }
        answers, records = score_rows(model, known)
        by_id.update(answers)
        if records:
            prediction_log.append(records)
        return PredictResponse(
            model_name=model.name,
            model_version=model.version,
            predictions=[by_id[i] for i in request.customer_ids],
        )

    @app.get("/health")
    def health() -> dict[str, Any]:
        try:
            model = champion.get()
        except NoChampionError as exc:
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
            "feature_service": FEATURE_SERVICE,
            "features": FEATURE_COLUMNS,
            "online_store": store.config.online_store.type,
            "features_fresh_until": freshness(store),
        }

    return app


def serve(p: Params, host: str | None = None, port: int | None = None) -> None:
    """Run the service (uvicorn) on serving.host:serving.port unless told otherwise."""
    import logging

    import uvicorn

    from . import tracking
    from .feature_store import open_store

    tracking.setup_mlflow(p.mlflow)
    champion = ChampionModel(p.mlflow.registered_model, p.serving.refresh_seconds)
    try:  # load before accepting requests, so the first ones are not slow
        champion.get()
    except NoChampionError as exc:
        logging.getLogger(__name__).warning("%s; /predict answers 503 until one exists", exc)
    app = create_app(open_store(), champion, p.paths.prediction_log)
    uvicorn.run(app, host=host or p.serving.host, port=port or p.serving.port, log_level="info")
