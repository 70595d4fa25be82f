"""Monitor inputs: the reference and current rows, in the monitored shape.

The monitored columns are the ones people read: the numeric model features (a value
flagged missing shows as missing again) and the raw categories (each one-hot group
decoded back). `build_monitor_data` assembles the reference (the train split, scored
by the model) and the current window (the newest batches and served predictions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..config import MonitoringConfig
from ..errors import StageInputError
from ..features import (
    ENTITY,
    FEATURE_COLUMNS,
    LABEL,
    MISSING_FLAGS,
    NUMERIC,
    TIMESTAMP,
    VOCABULARIES,
    build_features,
    one_hot_columns,
)
from ..prediction_log import PREDICTION, SCORE, PredictionLog

SOURCE = "source"
UNSEEN = "(unseen)"  # a one-hot group with no category set: a value the model never saw
ONE_HOT = {col: one_hot_columns(col) for col in VOCABULARIES}
MONITORED_NUMERIC = [
    c
    for c in FEATURE_COLUMNS
    if c not in MISSING_FLAGS and not any(c in group for group in ONE_HOT.values())
]
MONITORED_CATEGORICAL = list(VOCABULARIES)
MONITORED = [*MONITORED_NUMERIC, *MONITORED_CATEGORICAL]
RAW_REQUIRED = [ENTITY, TIMESTAMP, LABEL, *NUMERIC, *VOCABULARIES]
CURRENT_COLUMNS = [*MONITORED, SCORE, PREDICTION, LABEL, SOURCE, TIMESTAMP]


@dataclass
class MonitorData:
    """Reference and current rows in the monitored shape, plus where they came from."""

    reference: pd.DataFrame  # MONITORED + SCORE + PREDICTION + LABEL
    current: pd.DataFrame  # the same + SOURCE + TIMESTAMP; LABEL is NaN until it arrives
    quality_reference: pd.DataFrame | None  # LABEL, SCORE, PREDICTION of the evaluated test days
    threshold: float
    window: dict[str, Any]
    issues: list[str] = field(default_factory=list)


def monitoring_view(features: pd.DataFrame, raw: pd.DataFrame | None = None) -> pd.DataFrame:
    """The monitored columns, as people read them, from model-feature rows.

    Numeric model features are kept (a value flagged missing becomes NaN again), and
    each one-hot group is decoded back to its category; a group with no category set
    (a value outside the vocabulary at serving time) reads UNSEEN. When the raw rows
    the features were built from are given, their categories are used as they are,
    so a new category keeps its name.
    """
    out = pd.DataFrame(
        {c: features[c].to_numpy(dtype="float64") for c in MONITORED_NUMERIC},
        index=range(len(features)),
    )
    for flag, column in MISSING_FLAGS.items():
        out.loc[features[flag].to_numpy() == 1, column] = np.nan
    for col, vocab in VOCABULARIES.items():
        if raw is not None:
            out[col] = raw[col].astype(object).where(raw[col].notna(), None).to_numpy()
            continue
        hot = features[ONE_HOT[col]].to_numpy(dtype="float64")
        missing = np.isnan(hot).any(axis=1)
        filled = np.nan_to_num(hot, nan=0.0)
        values = np.asarray(vocab, dtype=object)[filled.argmax(axis=1)]
        values[filled.max(axis=1) < 0.5] = UNSEEN
        values[missing] = None
        out[col] = values
    return out


def require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StageInputError(
            f"column(s) {', '.join(missing)} missing from {what}: monitoring needs "
            f"{', '.join(columns)}. Fix the source (or features.py) so the columns are there."
        )


def newest_days(frame: pd.DataFrame, days: int, column: str = TIMESTAMP) -> pd.DataFrame:
    """Rows of the newest `days` calendar days (UTC) present in `frame`."""
    if frame.empty:
        return frame
    day = frame[column].dt.floor("D")
    start = day.max() - pd.Timedelta(days=days - 1)
    return frame.loc[day >= start].reset_index(drop=True)


def sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most `rows` rows drawn uniformly (0: all rows)."""
    if rows and len(frame) > rows:
        return frame.sample(rows, random_state=seed).reset_index(drop=True)
    return frame.reset_index(drop=True)


def attach_labels(served: pd.DataFrame, raw: pd.DataFrame) -> pd.Series:
    """Labels that have arrived for served predictions: the label the batches hold for
    the same customer on the same (UTC) day; NaN where none has arrived."""
    if served.empty:
        return pd.Series(np.nan, index=served.index, dtype="float64")
    labels = pd.DataFrame(
        {
            ENTITY: raw[ENTITY].astype("int64").to_numpy(),
            "day": raw[TIMESTAMP].dt.floor("D").array,
            LABEL: raw[LABEL].astype("float64").to_numpy(),
        }
    ).drop_duplicates([ENTITY, "day"], keep="last")
    keys = pd.DataFrame({ENTITY: served[ENTITY], "day": served[TIMESTAMP].dt.floor("D")})
    keys[ENTITY] = keys[ENTITY].astype("float64")
    labels[ENTITY] = labels[ENTITY].astype("float64")
    merged = keys.merge(labels, on=[ENTITY, "day"], how="left")
    return pd.Series(merged[LABEL].to_numpy(), index=served.index, dtype="float64")


def _day(frame: pd.DataFrame, column: str, pick: str) -> str | None:
    """The first or last calendar day in `column` (vectorised: no per-row Timestamps)."""
    if frame.empty:
        return None
    return getattr(frame[column], pick)().date().isoformat()


def _reference_view(
    reference: pd.DataFrame, booster: Any, threshold: float, cfg: MonitoringConfig
) -> pd.DataFrame:
    """The (sampled) train split, scored by the model, in the monitored shape."""
    from ..model import predict_proba

    ref = sample(reference, cfg.sample_rows, cfg.seed)
    scores = predict_proba(booster, ref) if len(ref) else np.zeros(0)
    return monitoring_view(ref).assign(
        **{
            SCORE: scores.astype("float64"),
            PREDICTION: (scores >= threshold).astype("int64"),
            LABEL: ref[LABEL].to_numpy(dtype="float64"),
        }
    )


def _batch_view(batches: pd.DataFrame, booster: Any, threshold: float) -> pd.DataFrame:
    """The newest raw batches, featurized and scored, in the monitored shape."""
    from ..model import predict_proba

    features = build_features(batches)
    scores = predict_proba(booster, features)
    return monitoring_view(features, raw=batches).assign(
        **{
            SCORE: scores.astype("float64"),
            PREDICTION: (scores >= threshold).astype("int64"),
            LABEL: batches[LABEL].to_numpy(dtype="float64"),
            SOURCE: "batch",
            TIMESTAMP: batches[TIMESTAMP].array,
        }
    )


def _served_view(
    log: PredictionLog, raw: pd.DataFrame, threshold: float, days: int
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """The newest served predictions in the monitored shape (None when there are none),
    with labels joined from the batches, and what the window reports about the log."""
    served = newest_days(log.frame, days)
    view, labelled = None, 0
    if len(served):
        labels = attach_labels(served, raw)
        labelled = int(labels.notna().sum())
        predicted = served[PREDICTION].astype("float64")
        predicted = predicted.where(predicted.notna(), (served[SCORE] >= threshold) * 1.0)
        view = monitoring_view(served).assign(
            **{
                SCORE: served[SCORE].to_numpy(dtype="float64"),
                PREDICTION: predicted.to_numpy(dtype="int64"),
                LABEL: labels.to_numpy(),
                SOURCE: "serving",
                TIMESTAMP: served[TIMESTAMP].array,
            }
        )
    info = {
        "path": str(log.path),
        "lines": log.lines,
        "malformed_lines": len(log.malformed),
        "rows": len(served),
        "labelled_rows": labelled,
        "first_day": _day(served, TIMESTAMP, "min"),
        "last_day": _day(served, TIMESTAMP, "max"),
        "model_versions": sorted(set(served["model_version"])) if len(served) else [],
    }
    return view, info


def _quality_reference(
    test_predictions: pd.DataFrame | None, threshold: float
) -> pd.DataFrame | None:
    """LABEL, SCORE, PREDICTION of the evaluated test days (None when there are none)."""
    if test_predictions is None or not len(test_predictions):
        return None
    require_columns(test_predictions, [LABEL, SCORE], "the test predictions")
    return pd.DataFrame(
        {
            LABEL: test_predictions[LABEL].to_numpy(dtype="int64"),
            SCORE: test_predictions[SCORE].to_numpy(dtype="float64"),
            PREDICTION: (test_predictions[SCORE].to_numpy() >= threshold).astype("int64"),
        }
    )


def build_monitor_data(
    *,
    raw: pd.DataFrame,
    reference: pd.DataFrame,
    booster: Any,
    threshold: float,
    cfg: MonitoringConfig,
    prediction_log: PredictionLog | None = None,
    test_predictions: pd.DataFrame | None = None,
) -> MonitorData:
    """Assemble reference (the train split) and current (newest batches + served predictions).

    `raw` holds the ingested batches, `reference` the rows the model was trained on
    (model features and label), `test_predictions` the evaluated test days (label, score).
    """
    require_columns(raw, RAW_REQUIRED, "the raw batches")
    require_columns(reference, [*FEATURE_COLUMNS, LABEL], "the training set")
    issues: list[str] = []
    reference_view = _reference_view(reference, booster, threshold, cfg)

    batches = newest_days(raw, cfg.current_days)
    parts = [_batch_view(batches, booster, threshold)] if len(batches) else []
    window: dict[str, Any] = {
        "current_days": cfg.current_days,
        "batch_rows": len(batches),
        "batch_first_day": _day(batches, TIMESTAMP, "min"),
        "batch_last_day": _day(batches, TIMESTAMP, "max"),
        "reference_rows": len(reference),
        "prediction_log": None,
    }
    if prediction_log is not None:
        served, window["prediction_log"] = _served_view(
            prediction_log, raw, threshold, cfg.current_days
        )
        if served is not None:
            parts.append(served)
        if issue := prediction_log.issue():
            issues.append(issue)

    current = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CURRENT_COLUMNS)
    ).reindex(columns=CURRENT_COLUMNS)
    window["current_rows"] = len(current)
    return MonitorData(
        reference=reference_view,
        current=current,
        quality_reference=_quality_reference(test_predictions, threshold),
        threshold=threshold,
        window=window,
        issues=issues,
    )
