"""Batch scoring: Feast historical features for a file of entities, the champion model
(through its calibration), then the predictions gate on the result (`python -m
{{ cookiecutter.package_name }} score`); with `--explain k`, each row's top-k SHAP
contributions too (explain.py), as the JSON /predict returns."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from . import tracking
from .champion import ChampionModel, LoadedModel
from .config import Params
from .contract import DatasetContract
from .errors import StageInputError
from .explain import explain_rows
from .feature_store import check_entity_keys, freshness, historical_features, open_store
from .files import write_parquet
from .gates import GateReport, run_gate
from .model import predict_proba

log = logging.getLogger(__name__)


def read_entities(path: Path, contract: DatasetContract) -> pd.DataFrame:
    """The entities to score (CSV or parquet): the entity key column (dataset.entity.key,
    of its declared type) and maybe the timestamp column (dataset.timestamp)."""
    if not path.is_file():
        raise StageInputError(f"entities file {path} not found: give a CSV or parquet file")
    key = contract.entity.key
    if path.suffix == ".csv":  # string ids stay text ("007" is not 7)
        text_key = {key: str} if contract.entity.dtype == "string" else None
        frame = pd.read_csv(path, dtype=text_key)
    else:
        frame = pd.read_parquet(path)
    check_entity_keys(frame, contract, f"entities file {path}")
    return frame


def score_features(
    model: LoadedModel, features: pd.DataFrame, contract: DatasetContract, explain: int = 0
) -> pd.DataFrame:
    """The entity key, timestamp, score (through the model's calibration), predicted label
    and model version of each row of `features`; with `explain` > 0 an `explanation`
    column too: each row's top-`explain` SHAP contributions, as JSON text."""
    key, stamp, columns = contract.entity.key, contract.timestamp, contract.feature_columns
    if not 0 <= explain <= len(columns):
        raise StageInputError(f"--explain must be 0 to {len(columns)} (the model's features)")
    scores = predict_proba(model.booster, features, model.calibration)
    result = features[[key, stamp]].assign(
        score=scores,
        predicted=(scores >= model.threshold).astype("int64"),
        model_version=model.version,
    )
    if explain:
        matrix = features[columns].to_numpy(dtype="float64")
        explained = explain_rows(model.booster, matrix, columns, explain)
        result["explanation"] = [json.dumps(e, separators=(",", ":")) for e in explained]
    return result


def score_file(
    p: Params, entities: Path, out: Path, at: str | None = None, explain: int = 0
) -> GateReport:
    """Score every entity of `entities` as of its timestamp (or `at`, or the online store's
    freshness), write `out`, and gate the scores like the test-day predictions; with
    `explain` > 0, each row's top-`explain` SHAP contributions too."""
    contract = p.dataset
    key, stamp = contract.entity.key, contract.timestamp
    frame = read_entities(entities, contract)
    store = open_store()
    try:
        if stamp not in frame.columns:
            when = at or freshness(store, contract) or pd.Timestamp.now(tz="UTC")
            frame[stamp] = pd.Timestamp(when)
        frame[stamp] = pd.to_datetime(frame[stamp], utc=True)
    except (ValueError, TypeError) as exc:
        raise StageInputError(
            f"entities file {entities}: {stamp} (dataset.timestamp) or --at is not a time: {exc}"
        ) from exc
    tracking.setup_mlflow(p.mlflow)
    model = ChampionModel(p.mlflow.registered_model, contract).get()
    features = historical_features(store, frame[[key, stamp]], contract)
    result = score_features(model, features, contract, explain)
    write_parquet(result, out)
    log.info(
        "scored %d entities with %s v%s -> %s (%d without features)",
        len(result),
        model.name,
        model.version,
        out,
        len(frame) - len(result),
    )
    gated = result.drop(columns="explanation", errors="ignore")  # the gate checks the scores
    return run_gate(gated, p.paths, "predictions", report="batch_scores")
