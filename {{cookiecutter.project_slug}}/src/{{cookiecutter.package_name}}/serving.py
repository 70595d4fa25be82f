"""HTTP prediction service: features from the Feast online store, model from the
MLflow registry (alias `champion`), every prediction appended to a JSON-lines log.

Start with `make serve` (binds 127.0.0.1). Endpoints: POST /predict, GET /health,
GET /metadata; OpenAPI docs at /docs.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from .features import ENTITY, FEATURE_COLUMNS, FEATURE_SERVICE
from .registry import ChampionModel, NoChampionError
from .train import predict_proba

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


class PredictionLog:
    """Append-only JSON lines; one line per prediction; safe across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, records: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        with self._lock, self.path.open("a") as handle:
            handle.write(lines)


def create_app(store: Any, champion: ChampionModel, log_path: Path) -> FastAPI:
    from .feature_store import freshness, online_features

    app = FastAPI(title="{{ cookiecutter.project_name }} prediction service", version="1")
    prediction_log = PredictionLog(log_path)

    def model_or_503() -> Any:
        try:
            return champion.get()
        except NoChampionError as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc

    @app.post("/predict", response_model=PredictResponse)
    def predict(request: PredictRequest) -> PredictResponse:
        model = model_or_503()
        known, unknown = online_features(store, request.customer_ids)
        scores = predict_proba(model.booster, known) if len(known) else np.array([])
        by_id: dict[int, Prediction] = {
            i: Prediction(
                customer_id=i,
                status="unknown_entity",
                detail="no features in the online store for this customer (unknown id, or older than the TTL)",
            )
            for i in unknown
        }
        now = dt.datetime.now(dt.UTC).isoformat()
        records = []
        for row, score in zip(known.itertuples(index=False), scores, strict=True):
            customer = int(getattr(row, ENTITY))
            label = int(score >= model.threshold)
            by_id[customer] = Prediction(
                customer_id=customer, status="ok", score=float(score), label=label
            )
            records.append(
                {
                    "timestamp": now,
                    "request_id": str(uuid.uuid4()),
                    "customer_id": customer,
                    "model_name": model.name,
                    "model_version": model.version,
                    "features": {c: float(getattr(row, c)) for c in FEATURE_COLUMNS},
                    "score": float(score),
                    "predicted": label,
                }
            )
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
