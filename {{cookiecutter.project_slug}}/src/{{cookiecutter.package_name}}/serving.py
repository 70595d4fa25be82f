"""HTTP prediction service: features from the Feast online store, model from the
MLflow registry (alias `champion`), every prediction appended to the prediction log
(prediction_log.py: the record the monitor reads back).

Start with `make serve` (binds 127.0.0.1). Endpoints: POST /predict, GET /health,
GET /metadata, GET /metrics (Prometheus); OpenAPI docs at /docs. The request and
response models are built from the dataset contract: ids are the entity key's values,
of its declared type. With API keys (api_keys.py) every endpoint but /health and the
docs asks for `Authorization: Bearer <key>` (401) and meters each key (429 with
Retry-After); a body over serving.max_body_bytes gets 413 before it is parsed.
`serving.rollout` serves the registry's `candidate` beside the champion, in the shadow
or to a canary share of entities (challenger.py). Scores pass through the model's
calibration; `explain: k` in a request adds each id's top-k SHAP contributions (explain.py).
"""

# No `from __future__ import annotations` here: the endpoint's request model is built per
# contract in create_app, and FastAPI reads the annotation as a class at run time.

import datetime as dt
import logging
import math
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Response
from pydantic import (
    BaseModel,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    create_model,
)

from .api_keys import Gatekeeper, check_exposure, load_keys
from .challenger import Challenger, in_canary, shadow_fields
from .champion import UNSERVABLE, ChampionModel, LoadedModel, ModelHolder
from .config import Params, RateLimitConfig
from .contract import DatasetContract
from .explain import ExplainableRequest, Explanation, explain_field, explain_rows
from .feature_store import feature_view
from .features import FEATURE_SERVICE
from .http_guards import DEFAULT_MAX_BODY_BYTES, BodyLimit, caller_dependency, declared_errors
from .model import predict_matrix
from .online_read import OnlineRows, feature_service, read_online
from .prediction_log import PredictionRecord
from .prediction_log_files import RETENTION_DAYS, PredictionLogWriter, check_retention
from .service_metrics import ServiceMetrics, TimedRequests

log = logging.getLogger(__name__)

MAX_BATCH = 1000
# XGBoost threads per request: a request scores 1 to MAX_BATCH rows, too few for threads
# to pay for their synchronisation, and on a busy machine idle-spinning threads cost
# every request tens of milliseconds at p99
PREDICT_THREADS = 1
UNKNOWN_ENTITY = "no features in the online store for this id (unknown, or older than the TTL)"
SCORED_BY = (
    "The registry version that scored this id (the candidate, for a canary rollout's share "
    "of ids); null for an unknown entity"
)
EXPLAINED = "Why this score (SHAP values); only when the request asked for `explain`"
CHAMPION_VERSION = (
    "The champion's registry version: it scored every id but those whose model_version "
    "names another (a canary rollout's candidate)"
)


@dataclass(frozen=True)
class ApiModels:
    """The contract's request and response models (pydantic)."""

    request: type[BaseModel]
    prediction: type[BaseModel]
    response: type[BaseModel]


def api_models(contract: DatasetContract) -> ApiModels:
    """/predict's models for `contract`: ids are strict JSON integers (64-bit) or non-empty
    strings (dataset.entity.dtype); "12" is not the integer 12 and 12 is not the string "12"."""
    entity, label = contract.entity, contract.label
    id_type: Any = (
        Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]  # the online store's INT64
        if entity.dtype == "int"
        else Annotated[StrictStr, StringConstraints(min_length=1)]
    )
    kind = "integer" if entity.dtype == "int" else "string"
    about = f"a value of `{entity.key}` (dataset.entity.key), the `{entity.name}` entity's id"
    request = create_model(
        "PredictRequest",
        __base__=ExplainableRequest,  # extra="forbid", and few ids when explaining
        explain=explain_field(len(contract.feature_columns)),
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
        model_version=(str | None, Field(None, description=SCORED_BY)),
        explanation=(  # absent unless asked for (`explain`): the answer stays as it was
            Explanation | None,
            Field(None, exclude_if=lambda v: v is None, description=EXPLAINED),
        ),
    )
    response = create_model(
        "PredictResponse",
        model_name=(str, Field(description="The registered model")),
        model_version=(str, Field(description=CHAMPION_VERSION)),
        predictions=(list[prediction], Field(description="One answer per id, in request order")),
    )
    return ApiModels(request, prediction, response)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


_THREADS_SET: "weakref.WeakSet[Any]" = weakref.WeakSet()  # boosters given PREDICT_THREADS


def serving_booster(model: LoadedModel) -> Any:
    """The model's booster, set to PREDICT_THREADS threads the first time it scores here:
    the champion, a rollout's candidate and a pinned version alike."""
    booster = model.booster
    if booster not in _THREADS_SET:
        booster.set_param({"nthread": PREDICT_THREADS})
        _THREADS_SET.add(booster)
    return booster


def score_rows(
    model: LoadedModel,
    known: OnlineRows,
    shadow: list[dict[str, Any]] | None = None,
    explain: int = 0,
) -> tuple[dict[Any, dict[str, Any]], list[PredictionRecord]]:
    """The answer for each id with online features, and its prediction-log record (with
    the `shadow` fields of each row, if any, and with `explain` > 0 its explanation)."""
    columns = known.columns
    scores = predict_matrix(serving_booster(model), known.values, columns, model.calibration)
    shadow = shadow or [{}] * len(known.ids)
    ids = known.ids
    values = known.values.tolist()
    now = dt.datetime.now(dt.UTC).isoformat()
    answers: dict[Any, dict[str, Any]] = {}
    records = []
    for entity_id, row, score, more in zip(ids, values, scores.tolist(), shadow, strict=True):
        label = int(score >= model.threshold)
        answers[entity_id] = {
            "id": entity_id,
            "status": "ok",
            "score": score,
            "label": label,
            "model_version": model.version,
        }
        records.append(
            PredictionRecord(
                timestamp=now,
                entity_id=entity_id,
                model_name=model.name,
                model_version=model.version,
                features={c: _finite(v) for c, v in zip(columns, row, strict=True)},
                score=score,
                predicted=label,
                **more,
            )
        )
    if explain:  # only then: SHAP values cost hundreds of times the score
        explained = explain_rows(model.booster, known.values, columns, explain, PREDICT_THREADS)
        for entity_id, explanation in zip(ids, explained, strict=True):
            answers[entity_id]["explanation"] = explanation
        records = [replace(r, explanation=e) for r, e in zip(records, explained, strict=True)]
    return answers, records


def rollout_rows(
    champion: LoadedModel, challenger: Challenger | None, known: OnlineRows, explain: int = 0
) -> tuple[dict[Any, dict[str, Any]], list[PredictionRecord]]:
    """score_rows by serving.rollout: the champion alone, with the candidate's shadow
    fields, or split by the canary hash (the champion answers all if the candidate fails);
    an id's explanation is that of the model that answered."""
    if challenger is None or (candidate := challenger.get(champion.version)) is None:
        return score_rows(champion, known, explain=explain)
    if challenger.mode == "shadow":
        serving_booster(candidate)
        return score_rows(champion, known, shadow_fields(candidate, known), explain)
    routed = in_canary(known.ids, challenger.canary_share)
    try:
        theirs, their_records = score_rows(candidate, known.rows(routed), explain=explain)
    except Exception:  # the challenger never fails a request
        log.exception("canary: candidate version %s failed to score", candidate.version)
        return score_rows(champion, known, explain=explain)
    answers, records = score_rows(champion, known.rows(~routed), explain=explain)
    return {**answers, **theirs}, records + their_records


def model_metadata(model: LoadedModel, store: Any, contract: DatasetContract) -> dict[str, Any]:
    """What /metadata says: the model, its entity and features, how fresh they are."""
    from .feature_store import freshness

    return {
        "model_name": model.name,
        "model_version": model.version,
        "model_run_id": model.run_id,
        "threshold": model.threshold,
        "calibration": model.calibration.method,
        "entity": contract.entity.model_dump(),
        "feature_service": FEATURE_SERVICE,
        "features": contract.feature_columns,
        "online_store": store.config.online_store.type,
        "features_fresh_until": freshness(store, contract),
    }


def model_or_503(champion: ModelHolder) -> LoadedModel:
    try:
        return champion.get()
    except UNSERVABLE as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc


def add_status_routes(
    app: FastAPI,
    champion: ModelHolder,
    store: Any,
    contract: DatasetContract,
    metered: list[Any],
    metrics: ServiceMetrics,
    challenger: Challenger | None = None,
) -> None:
    """GET /health (open to probes), /metadata and /metrics (metered like /predict)."""

    def rollout(version: str | None) -> dict[str, Any]:
        return challenger.status(version) if challenger is not None else {"mode": "champion"}

    @app.get("/health")
    def health() -> dict[str, Any]:
        try:
            model = champion.get()
        except UNSERVABLE as exc:
            return {
                "status": "degraded",
                "model_loaded": False,
                "detail": str(exc),
                "rollout": rollout(None),
            }
        return {
            "status": "ok",
            "model_loaded": True,
            "model_version": model.version,
            "rollout": rollout(model.version),
        }

    @app.get("/metadata", dependencies=metered, responses=declared_errors(401, 429, 503))
    def metadata() -> dict[str, Any]:
        return model_metadata(model_or_503(champion), store, contract)

    @app.get(
        "/metrics",
        dependencies=metered,
        responses={200: {"content": {"text/plain": {}}}, **declared_errors(401, 429)},
        response_class=Response,
    )
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)


def create_app(
    store: Any,
    champion: ModelHolder,
    log_path: Path,
    contract: DatasetContract,
    gate: Gatekeeper | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    log_retention_days: int = RETENTION_DAYS,
    challenger: Challenger | None = None,
) -> FastAPI:
    """The service over `store` (its feature view checked against `contract`); without
    a `gate`, anyone may call it (as on 127.0.0.1 without keys), at the default rate;
    without a `challenger`, the champion answers alone (serving.rollout: champion).
    Predictions go to the log `log_path` (one file per UTC day, kept `log_retention_days`)."""
    feature_view(store, contract)
    service = feature_service(store)  # once: a registry lookup per request costs milliseconds
    models = api_models(contract)
    request_model = models.request
    gate = gate or Gatekeeper({}, RateLimitConfig())
    app = FastAPI(title="{{ cookiecutter.project_name }} prediction service", version="1")
    prediction_log = PredictionLogWriter(log_path, log_retention_days)
    metrics = ServiceMetrics(["/predict", "/health", "/metadata", "/metrics"])
    metered = [caller_dependency(gate)]

    @app.post(
        "/predict",
        response_model=models.response,
        dependencies=metered,
        responses=declared_errors(400, 401, 413, 422, 429, 503),
    )
    async def predict(request: request_model) -> dict[str, Any]:  # type: ignore[valid-type]
        # On the event loop, not handed to a worker thread and back: the hand-off costs
        # more than reading and scoring one id. The online read blocks the loop for its
        # duration (SQLite: a local file; Redis: one round trip); Feast's async read is
        # not used: its Redis client is bound to the first event loop it ran on.
        model = model_or_503(champion)
        ids = request.ids  # type: ignore[attr-defined]
        known = read_online(store, service, ids, contract)
        unknown = known.unknown
        by_id = {
            i: {"id": i, "status": "unknown_entity", "detail": UNKNOWN_ENTITY} for i in unknown
        }
        explain = request.explain  # type: ignore[attr-defined]
        answers, records = rollout_rows(model, challenger, known, explain)
        by_id.update(answers)
        if records:
            prediction_log.append(records)
        metrics.serving(model.name, model.version)
        metrics.observe_predictions([r.score for r in records], len(unknown))
        return {
            "model_name": model.name,
            "model_version": model.version,
            "predictions": [by_id[i] for i in ids],
        }

    add_status_routes(app, champion, store, contract, metered, metrics, challenger)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(TimedRequests, metrics=metrics)
    return app


def serve(p: Params, host: str | None = None, port: int | None = None) -> None:
    """Run the service (uvicorn) on serving.host:serving.port unless told otherwise."""
    import uvicorn

    from . import tracking
    from .feature_store import open_store

    cfg = p.serving
    host = host or cfg.host
    retention = cfg.prediction_log_retention_days
    check_retention(retention, p.monitor.current_days, p.dataset.label.horizon_days)
    keys = load_keys(cfg.api_keys_file)
    check_exposure(host, keys)
    if keys:
        log.info("API keys: %s", ", ".join(sorted(keys.values())))
    else:
        log.warning("no API keys: anyone who can reach %s may call the service", host)
    tracking.setup_mlflow(p.mlflow)
    name = p.mlflow.registered_model
    champion = ChampionModel(name, p.dataset, cfg.refresh_seconds)
    rollout = Challenger(name, p.dataset, cfg.rollout, cfg.refresh_seconds, cfg.canary_share)
    log.info("serving.rollout: %s", cfg.rollout)
    try:  # load before accepting requests, so the first ones are not slow
        rollout.get(champion.get().version)
    except UNSERVABLE as exc:
        log.warning("%s; /predict answers 503 until a usable champion exists", exc)
    gate = Gatekeeper(keys, cfg.rate_limit)
    # The service only reads the Feast registry the pipeline writes (materialize applies
    # the definitions): it may run on a read-only copy of features/ (docker-compose.yml).
    store = open_store(apply=False)
    app = create_app(
        store,
        champion,
        p.paths.prediction_log,
        p.dataset,
        gate,
        cfg.max_body_bytes,
        log_retention_days=retention,
        challenger=rollout,
    )
    uvicorn.run(app, host=host, port=port or cfg.port, log_level="info", access_log=cfg.access_log)
