"""Monitor inputs: the reference, current and labelled rows, in the monitored shape.

`build_monitor_data` assembles the reference (the train split, scored by the model
through its calibration, as serving scores),
the current window (the newest `monitor.current_days` days of raw batches and of
served predictions: drift is judged on it) and the labelled rows model quality is
judged on: the newest `current_days` days whose labels have matured by the end of
the window (an outcome is known `dataset.label.horizon_days` after its event).
Every column name comes from the contract (columns.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..calibration import Calibration
from ..config import MonitoringConfig
from ..contract import DatasetContract
from ..features import build_features
from ..prediction_log import PREDICTION, SCORE, PredictionLog
from .columns import SOURCE, MonitoredColumns, require_columns
from .versions import version_rows
from .windows import Windows, draw_sizes, raw_view, sample, split_raw

UNSEEN = "(unseen)"  # a one-hot group with no category set: a value the model never saw


@dataclass
class MonitorData:
    """Reference, current and labelled rows in the monitored shape, and where they came from."""

    reference: pd.DataFrame  # monitored columns + SCORE + PREDICTION + label
    current: pd.DataFrame  # columns.current; the label is NaN until it is known
    labelled: pd.DataFrame  # columns.current: rows of the matured window that have a label
    quality_reference: pd.DataFrame | None  # label, SCORE, PREDICTION of the evaluated test days
    threshold: float
    window: dict[str, Any]
    columns: MonitoredColumns
    issues: list[str] = field(default_factory=list)
    versions: pd.DataFrame | None = None  # served and shadow scores by version (versions.py)
    # the monitored columns of every current row, when `current` holds a sample of the batch
    # rows (sampling.py): data quality reads them all
    window_rows: pd.DataFrame | None = None


def monitoring_view(
    features: pd.DataFrame, columns: MonitoredColumns, raw: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The monitored columns, as people read them, from model-feature rows.

    Numeric model features are kept (a value flagged missing becomes NaN again), and
    each one-hot group is decoded back to its category; a group with no category set
    reads UNSEEN (a value outside the vocabulary), or missing for a nullable column
    (null and unseen encode alike). When the raw rows the features were built from
    are given, their categories are used as they are, so a new category keeps its name.
    """
    require_columns(features, columns.features, "the model-feature rows", columns.origins)
    out = pd.DataFrame(
        {c: features[c].to_numpy(dtype="float64") for c in columns.numeric},
        index=range(len(features)),
    )
    for flag, column in columns.missing_flags.items():
        out.loc[features[flag].to_numpy() == 1, column] = np.nan
    for col, vocab in columns.vocabularies.items():
        if raw is not None:
            out[col] = raw[col].astype(object).where(raw[col].notna(), None).to_numpy()
            continue
        hot = features[columns.one_hot[col]].to_numpy(dtype="float64")
        missing = np.isnan(hot).any(axis=1)
        filled = np.nan_to_num(hot, nan=0.0)
        values = np.asarray(vocab, dtype=object)[filled.argmax(axis=1)]
        values[filled.max(axis=1) < 0.5] = None if col in columns.nullable_categorical else UNSEEN
        values[missing] = None
        out[col] = values
    return out


def attach_labels(served: pd.DataFrame, raw: pd.DataFrame, columns: MonitoredColumns) -> pd.Series:
    """Labels that have arrived for served predictions: the label the batches hold for
    the same entity on the same (UTC) day; NaN where none has arrived."""
    if served.empty:
        return pd.Series(np.nan, index=served.index, dtype="float64")
    key, ts = columns.entity, columns.timestamp
    labels = pd.DataFrame(
        {
            "key": raw[key].astype("string").array,  # int or string ids join alike as text
            "day": raw[ts].dt.floor("D").array,
            "label": raw[columns.label].astype("float64").to_numpy(),
        }
    ).drop_duplicates(["key", "day"], keep="last")
    keys = pd.DataFrame(
        {"key": served[key].astype("string").array, "day": served[ts].dt.floor("D").array}
    )
    merged = keys.merge(labels.dropna(subset=["key"]), on=["key", "day"], how="left")
    return pd.Series(merged["label"].to_numpy(), index=served.index, dtype="float64")


def _day(frame: pd.DataFrame, column: str, pick: str) -> str | None:
    """The first or last calendar day in `column` (vectorised: no per-row Timestamps)."""
    if frame.empty:
        return None
    return getattr(frame[column], pick)().date().isoformat()


def _days(rows: pd.DataFrame, column: str, what: str) -> dict[str, Any]:
    """The rows' count, first and last day, as the window reports them."""
    return {
        f"{what}_rows": len(rows),
        f"{what}_first_day": _day(rows, column, "min"),
        f"{what}_last_day": _day(rows, column, "max"),
    }


def _scores(booster: Any, features: pd.DataFrame, calibration: Calibration | None) -> np.ndarray:
    from ..model import predict_proba

    return predict_proba(booster, features, calibration) if len(features) else np.zeros(0)


def _reference_view(
    reference: pd.DataFrame,
    booster: Any,
    threshold: float,
    cfg: MonitoringConfig,
    columns: MonitoredColumns,
    calibration: Calibration | None = None,
) -> pd.DataFrame:
    """The (sampled) train split, scored by the model, in the monitored shape."""
    ref = sample(reference, cfg.sample_rows, cfg.seed)
    scores = _scores(booster, ref, calibration)
    return monitoring_view(ref, columns).assign(
        **{
            SCORE: scores.astype("float64"),
            PREDICTION: (scores >= threshold).astype("int64"),
            columns.label: ref[columns.label].to_numpy(dtype="float64"),
        }
    )


def _batch_view(
    batches: pd.DataFrame,
    booster: Any,
    threshold: float,
    columns: MonitoredColumns,
    calibration: Calibration | None = None,
) -> pd.DataFrame:
    """Raw batch rows, featurized and scored, in the monitored shape."""
    features = build_features(batches, columns.contract)
    scores = _scores(booster, features, calibration)
    return monitoring_view(features, columns, raw=batches).assign(
        **{
            SCORE: scores.astype("float64"),
            PREDICTION: (scores >= threshold).astype("int64"),
            columns.label: batches[columns.label].to_numpy(dtype="float64"),
            SOURCE: "batch",
            columns.timestamp: batches[columns.timestamp].array,
        }
    )


def _served_view(
    served: pd.DataFrame, raw: pd.DataFrame, threshold: float, columns: MonitoredColumns
) -> pd.DataFrame:
    """Served predictions in the monitored shape, with labels joined from the batches."""
    predicted = served[PREDICTION].astype("float64")
    predicted = predicted.where(predicted.notna(), (served[SCORE] >= threshold) * 1.0)
    return monitoring_view(served, columns).assign(
        **{
            SCORE: served[SCORE].to_numpy(dtype="float64"),
            PREDICTION: predicted.to_numpy(dtype="int64"),
            columns.label: attach_labels(served, raw, columns).to_numpy(),
            SOURCE: "serving",
            columns.timestamp: served[columns.timestamp].array,
        }
    )


def quality_reference(
    test_predictions: pd.DataFrame | None, threshold: float, columns: MonitoredColumns
) -> pd.DataFrame | None:
    """Label, SCORE, PREDICTION of the evaluated test days (None when there are none)."""
    if test_predictions is None or not len(test_predictions):
        return None
    label = columns.label
    require_columns(test_predictions, [label, SCORE], "the test predictions", columns.origins)
    return pd.DataFrame(
        {
            label: test_predictions[label].to_numpy(dtype="int64"),
            SCORE: test_predictions[SCORE].to_numpy(dtype="float64"),
            PREDICTION: (test_predictions[SCORE].to_numpy() >= threshold).astype("int64"),
        }
    )


def _frame(parts: list[pd.DataFrame], columns: MonitoredColumns) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns.current)
    return frame.reindex(columns=columns.current)


def _batch_rows(
    raw: pd.DataFrame,
    booster: Any,
    threshold: float,
    columns: MonitoredColumns,
    windows: Windows,
    calibration: Calibration | None,
    draws: tuple[int, int, int] | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The raw batch rows of the drift window and of the matured window, scored, and the
    drift window's raw rows. `draws`: how many current and labelled rows to draw before
    scoring, and the seed (sampling.py; None: score them all)."""
    scoped = windows.scope(raw, columns.timestamp)
    if not len(scoped):
        empty = pd.DataFrame(columns=columns.current)
        return empty, empty, scoped
    drift, matured = split_raw(scoped, columns, windows)
    if draws is None:
        view = _batch_view(scoped, booster, threshold, columns, calibration)
        return (*windows.split(view, columns), drift)
    parts = [sample(drift, draws[0], draws[2]), sample(matured, draws[1], draws[2] + 1)]
    current = _batch_view(parts[0], booster, threshold, columns, calibration)
    labelled = _batch_view(parts[1], booster, threshold, columns, calibration)
    return windows.split(current, columns)[0], windows.split(labelled, columns)[1], drift


def _served_rows(
    log: PredictionLog,
    raw: pd.DataFrame,
    threshold: float,
    columns: MonitoredColumns,
    windows: Windows,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], pd.DataFrame | None]:
    """The served predictions of the drift window and of the matured window, what the
    window reports about the log, and the scores by model version (versions.py)."""
    ts = columns.timestamp
    scoped = windows.scope(log.frame, ts)
    current = labelled = pd.DataFrame(columns=columns.current)
    by_version = None
    if len(scoped):
        view = _served_view(scoped, raw, threshold, columns)
        current, labelled = windows.split(view, columns)
        quality = (windows.quality_start, windows.known_before)
        labels = view[columns.label].to_numpy(dtype="float64")
        by_version = version_rows(scoped, labels, ts, windows.drift_start, quality)
    versions = (
        scoped.loc[scoped[ts] >= windows.drift_start, "model_version"] if len(current) else []
    )
    info = {
        "path": str(log.path),
        "lines": log.lines,
        "malformed_lines": len(log.malformed),
        "rows": len(current),
        "labelled_rows": len(labelled),  # in the matured window
        "first_day": _day(current, ts, "min"),
        "last_day": _day(current, ts, "max"),
        "model_versions": sorted(set(versions)),
    }
    return current, labelled, info, by_version


def _quality_info(
    contract: DatasetContract, end_date: dt.date | None, windows: Windows, labelled: pd.DataFrame
) -> dict[str, Any]:
    """Which days model quality is judged on, and why those."""
    start, known_before = windows.quality_start, windows.known_before
    return {
        "end_date": end_date.isoformat() if end_date else None,
        "label_horizon_days": contract.label.horizon_days,
        "labels_known_before": known_before.isoformat() if known_before is not None else None,
        "first_day": start.date().isoformat() if start is not None else None,
        "last_day": (
            (known_before - pd.Timedelta(days=1)).date().isoformat()
            if known_before is not None
            else None
        ),
        "rows": len(labelled),
    }


def build_monitor_data(
    *,
    raw: pd.DataFrame,
    reference: pd.DataFrame,
    booster: Any,
    threshold: float,
    cfg: MonitoringConfig,
    contract: DatasetContract,
    prediction_log: PredictionLog | None = None,
    test_predictions: pd.DataFrame | None = None,
    end_date: dt.date | None = None,
    calibration: Calibration | None = None,
    reference_rows: int | None = None,
) -> MonitorData:
    """The reference (`reference`: the train split's features and label, or its sample
    drawn by windows.sample_positions with the split's size as `reference_rows`), the
    current window (the newest batches of `raw`, which may start at windows.
    raw_needed_from, and served predictions) and the labelled rows of the matured window;
    `test_predictions`: the evaluated test days (label, score); `end_date`: the window's
    last day (default: the newest batch's day); `calibration`: the model's."""
    columns = MonitoredColumns.of(contract)
    require_columns(raw, columns.raw_required, "the raw batches", columns.origins)
    require_columns(
        reference, [*columns.features, columns.label], "the training set", columns.origins
    )
    ts = columns.timestamp
    end_date = end_date or (raw[ts].max().date() if len(raw) else None)
    windows = Windows.of(raw, contract, cfg.current_days, end_date)
    window: dict[str, Any] = {"current_days": cfg.current_days, "prediction_log": None}
    served = labelled_served = pd.DataFrame(columns=columns.current)
    by_version = None
    if prediction_log is not None:
        drift_from = windows.with_drift_from(prediction_log.frame, ts, cfg.current_days)
        served, labelled_served, window["prediction_log"], by_version = _served_rows(
            prediction_log, raw, threshold, columns, drift_from
        )
    draws = draw_sizes(raw, windows, columns, cfg, (len(served), len(labelled_served)))
    batches, labelled_batches, drift_raw = _batch_rows(
        raw, booster, threshold, columns, windows, calibration, draws
    )
    window |= {**_days(drift_raw, ts, "batch"), "reference_rows": reference_rows or len(reference)}
    current_rows = _frame([batches, served], columns)
    labelled_rows = _frame([labelled_batches, labelled_served], columns)
    window_rows = None
    if draws is not None:  # `current` holds a sample of the batch rows
        window_rows = _frame([raw_view(drift_raw, columns), served], columns)[columns.monitored]
    window["current_rows"] = len(drift_raw) + len(served)
    window["quality"] = _quality_info(contract, end_date, windows, labelled_rows)
    return MonitorData(
        reference=_reference_view(reference, booster, threshold, cfg, columns, calibration),
        current=current_rows,
        labelled=labelled_rows,
        quality_reference=quality_reference(test_predictions, threshold, columns),
        threshold=threshold,
        window=window,
        columns=columns,
        issues=[i for i in [prediction_log and prediction_log.issue()] if i],
        versions=by_version,
        window_rows=window_rows,
    )
