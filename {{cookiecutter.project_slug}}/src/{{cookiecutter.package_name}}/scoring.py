"""Batch scoring: Feast historical features for a file of entities, the champion model,
then the predictions gate on the result (`python -m {{ cookiecutter.package_name }} score`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from . import tracking
from .champion import ChampionModel
from .config import Params
from .errors import StageInputError
from .feature_store import freshness, historical_features, open_store
from .features import ENTITY, TIMESTAMP
from .files import write_parquet
from .gates import GateReport, run_gate
from .model import predict_proba

log = logging.getLogger(__name__)


def read_entities(path: Path) -> pd.DataFrame:
    """The entities to score (CSV or parquet), with the entity column and maybe a timestamp."""
    if not path.is_file():
        raise StageInputError(f"entities file {path} not found: give a CSV or parquet file")
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    if ENTITY not in frame.columns:
        raise StageInputError(f"{path} has no {ENTITY} column (columns: {list(frame.columns)})")
    return frame


def score_file(p: Params, entities: Path, out: Path, at: str | None = None) -> GateReport:
    """Score every entity of `entities` as of its timestamp (or `at`, or the online store's
    freshness), write `out`, and gate the scores like the test-day predictions."""
    frame = read_entities(entities)
    store = open_store()
    if TIMESTAMP not in frame.columns:
        frame[TIMESTAMP] = pd.Timestamp(at or freshness(store) or pd.Timestamp.now(tz="UTC"))
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True)
    tracking.setup_mlflow(p.mlflow)
    model = ChampionModel(p.mlflow.registered_model).get()
    features = historical_features(store, frame[[ENTITY, TIMESTAMP]])
    scores = predict_proba(model.booster, features)
    result = features[[ENTITY, TIMESTAMP]].assign(
        score=scores,
        predicted=(scores >= model.threshold).astype("int64"),
        model_version=model.version,
    )
    write_parquet(result, out)
    log.info(
        "scored %d entities with %s v%s -> %s (%d without features)",
        len(result),
        model.name,
        model.version,
        out,
        len(frame) - len(result),
    )
    return run_gate(result, p.paths, "predictions", report="batch_scores")
