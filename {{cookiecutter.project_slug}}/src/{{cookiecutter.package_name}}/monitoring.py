"""Monitoring: compare what the model sees now with what it was trained on, and decide.

- reference: the rows the model was trained on (the train split of the training set);
- current: the newest `monitoring.current_days` days of raw batches, plus the newest
  days of the serving prediction log (one JSON object per served prediction).

Checks, each with thresholds in params.yaml (`monitoring:`):

- feature drift: an Evidently drift test per monitored feature and the share of
  drifted features (`drift.max_drift_share`);
- prediction drift: the drift of the model's score distribution;
- model quality: ROC AUC, precision and recall on the current rows whose label has
  arrived, so concept drift (same inputs, new outcome) is seen too;
- data quality: missing values and categories the model never saw.

Drift and quality checks decide `retrain`, each crossed threshold adding a named
reason; data-quality issues are reported but do not retrain (retraining on broken
inputs would learn the breakage). Evidently writes the HTML reports; the verdict
and its numbers go to summary.json (for machines) and metrics.json (DVC metrics).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import MonitoringConfig
from .errors import StageInputError
from .features import (
    ENTITY,
    FEATURE_COLUMNS,
    LABEL,
    NUMERIC,
    TIMESTAMP,
    VOCABULARIES,
    _slug,
    build_features,
)
from .files import write_json

log = logging.getLogger(__name__)

SCORE = "score"
PREDICTION = "prediction"
SOURCE = "source"
UNSEEN = "(unseen)"  # a one-hot group with no category set: a value the model never saw
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.json"
INDEX_FILE = "index.html"
RUNS_DIR = "runs"
DRIFT_REPORT = "drift.html"
QUALITY_REPORT = "quality.html"

# Model features that flag a missing raw value, and the feature whose value they flag:
# monitoring shows the flagged value as missing again, so missing values are visible.
MISSING_FLAGS = {"usage_missing": "usage_gb_30d"}
ONE_HOT = {col: [f"{col}_{_slug(v)}" for v in vocab] for col, vocab in VOCABULARIES.items()}
MONITORED_NUMERIC = [
    c
    for c in FEATURE_COLUMNS
    if c not in MISSING_FLAGS and not any(c in group for group in ONE_HOT.values())
]
MONITORED_CATEGORICAL = list(VOCABULARIES)
MONITORED = [*MONITORED_NUMERIC, *MONITORED_CATEGORICAL]
RAW_REQUIRED = [ENTITY, TIMESTAMP, LABEL, *NUMERIC, *VOCABULARIES]
# Evidently methods that return a distance (drift when score >= threshold); the others
# return a p-value (drift when p < threshold).
DISTANCE_METHODS = {"wasserstein", "psi", "jensenshannon", "kl_div", "hellinger", "ed"}
LOG_REQUIRED = ("timestamp", "features", "score")
MALFORMED_EXAMPLES = 5


# --------------------------------------------------------------------------- inputs


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


@dataclass
class PredictionLog:
    """Served predictions read from the JSON-lines log, with what could not be read."""

    path: Path
    frame: pd.DataFrame
    lines: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)

    def issue(self) -> str | None:
        if not self.malformed:
            return None
        shown = "; ".join(f"line {n}: {why}" for n, why in self.malformed[:MALFORMED_EXAMPLES])
        return (
            f"prediction log {self.path}: {len(self.malformed)} of {self.lines} lines malformed "
            f"and skipped ({shown})"
        )


NUMBER = (int, float)  # JSON numbers; bool is excluded on purpose (type(True) is bool)


def _log_row(line: str) -> tuple[str, list[Any], float, int | None, int | None, str]:
    """One log line's fields; ValueError says why the line is unusable.

    The timestamp is returned as text and parsed for all lines at once (vectorised).
    """
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    absent = [k for k in LOG_REQUIRED if k not in entry]
    if absent:
        raise ValueError(f"missing {', '.join(absent)}")
    features = entry["features"]
    if not isinstance(features, dict):
        raise ValueError("'features' is not an object")
    try:
        values = [features[c] for c in FEATURE_COLUMNS]
    except KeyError:
        absent = [c for c in FEATURE_COLUMNS if c not in features]
        more = f" (+{len(absent) - 3} more)" if len(absent) > 3 else ""
        raise ValueError(f"features lack {', '.join(absent[:3])}{more}") from None
    for column, value in zip(FEATURE_COLUMNS, values, strict=True):
        if value is not None and type(value) not in NUMBER:
            raise ValueError(f"feature {column} is not a number ({value!r})")
    score = entry["score"]
    if type(score) not in NUMBER or not 0.0 <= score <= 1.0:
        raise ValueError(f"score is not a probability ({score!r})")
    stamp = entry["timestamp"]
    if not isinstance(stamp, str) or not stamp:
        raise ValueError(f"timestamp is not ISO-8601 ({stamp!r})")
    predicted = entry.get("predicted")
    customer = entry.get("customer_id")
    return (
        stamp,
        values,
        float(score),
        predicted if predicted in (0, 1) and type(predicted) is int else None,
        customer if type(customer) is int else None,
        str(entry.get("model_version", "")),
    )


def read_prediction_log(path: Path) -> PredictionLog | None:
    """The served predictions in `path` (None when there is no log yet).

    A line that is not a valid prediction record is skipped and reported, never fatal:
    one bad write must not stop monitoring, nor make it decide anything.
    """
    if not path.is_file():
        return None
    numbers, rows, malformed, count = [], [], [], 0
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                count += 1
                try:
                    rows.append(_log_row(line))
                    numbers.append(number)
                except ValueError as exc:
                    malformed.append((number, str(exc)))
    except OSError as exc:
        raise StageInputError(f"cannot read the prediction log {path}: {exc}") from None
    stamps, values, scores, predicted, customers, versions = (
        (list(column) for column in zip(*rows, strict=True)) if rows else ([], [], [], [], [], [])
    )
    frame = pd.DataFrame(
        np.array(values, dtype="float64").reshape(-1, len(FEATURE_COLUMNS)), columns=FEATURE_COLUMNS
    )
    parsed = pd.to_datetime(
        pd.Series(stamps, dtype=object), utc=True, format="ISO8601", errors="coerce"
    )
    frame.insert(0, TIMESTAMP, parsed)
    frame.insert(1, ENTITY, pd.array(customers, dtype="Int64"))
    frame.insert(2, "model_version", versions)
    frame[SCORE] = np.array(scores, dtype="float64")
    frame[PREDICTION] = pd.array(predicted, dtype="Int64")
    unparsed = frame[TIMESTAMP].isna().to_numpy()
    if unparsed.any():
        for index in np.flatnonzero(unparsed):
            malformed.append((numbers[index], f"timestamp is not ISO-8601 ({stamps[index]!r})"))
        malformed.sort()
        frame = frame.loc[~unparsed].reset_index(drop=True)
    return PredictionLog(path=path, frame=frame, lines=count, malformed=malformed)


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


@dataclass
class MonitorData:
    """Reference and current rows in the monitored shape, plus where they came from."""

    reference: pd.DataFrame  # MONITORED + SCORE + PREDICTION + LABEL
    current: pd.DataFrame  # the same + SOURCE + TIMESTAMP; LABEL is NaN until it arrives
    quality_reference: pd.DataFrame | None  # LABEL, SCORE, PREDICTION of the evaluated test days
    threshold: float
    window: dict[str, Any]
    issues: list[str] = field(default_factory=list)


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
    from .train import predict_proba

    require_columns(raw, RAW_REQUIRED, "the raw batches")
    require_columns(reference, [*FEATURE_COLUMNS, LABEL], "the training set")
    issues: list[str] = []

    ref = sample(reference, cfg.sample_rows, cfg.seed)
    ref_scores = predict_proba(booster, ref) if len(ref) else np.zeros(0)
    reference_view = monitoring_view(ref).assign(
        **{
            SCORE: ref_scores.astype("float64"),
            PREDICTION: (ref_scores >= threshold).astype("int64"),
            LABEL: ref[LABEL].to_numpy(dtype="float64"),
        }
    )

    batches = newest_days(raw, cfg.current_days)
    parts = []
    if len(batches):
        batch_features = build_features(batches)
        scores = predict_proba(booster, batch_features)
        parts.append(
            monitoring_view(batch_features, raw=batches).assign(
                **{
                    SCORE: scores.astype("float64"),
                    PREDICTION: (scores >= threshold).astype("int64"),
                    LABEL: batches[LABEL].to_numpy(dtype="float64"),
                    SOURCE: "batch",
                    TIMESTAMP: batches[TIMESTAMP].array,
                }
            )
        )
    window: dict[str, Any] = {
        "current_days": cfg.current_days,
        "batch_rows": len(batches),
        "batch_first_day": _day(batches, TIMESTAMP, "min"),
        "batch_last_day": _day(batches, TIMESTAMP, "max"),
        "reference_rows": len(reference),
        "prediction_log": None,
    }
    if prediction_log is not None:
        served = newest_days(prediction_log.frame, cfg.current_days)
        if len(served):
            labels = attach_labels(served, raw)
            predicted = served[PREDICTION].astype("float64")
            predicted = predicted.where(predicted.notna(), (served[SCORE] >= threshold) * 1.0)
            parts.append(
                monitoring_view(served).assign(
                    **{
                        SCORE: served[SCORE].to_numpy(dtype="float64"),
                        PREDICTION: predicted.to_numpy(dtype="int64"),
                        LABEL: labels.to_numpy(),
                        SOURCE: "serving",
                        TIMESTAMP: served[TIMESTAMP].array,
                    }
                )
            )
        window["prediction_log"] = {
            "path": str(prediction_log.path),
            "lines": prediction_log.lines,
            "malformed_lines": len(prediction_log.malformed),
            "rows": len(served),
            "labelled_rows": int(labels.notna().sum()) if len(served) else 0,
            "first_day": _day(served, TIMESTAMP, "min"),
            "last_day": _day(served, TIMESTAMP, "max"),
            "model_versions": sorted(set(served["model_version"])) if len(served) else [],
        }
        if issue := prediction_log.issue():
            issues.append(issue)

    columns = [*MONITORED, SCORE, PREDICTION, LABEL, SOURCE, TIMESTAMP]
    current = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    ).reindex(columns=columns)
    window["current_rows"] = len(current)

    quality_reference = None
    if test_predictions is not None and len(test_predictions):
        require_columns(test_predictions, [LABEL, SCORE], "the test predictions")
        quality_reference = pd.DataFrame(
            {
                LABEL: test_predictions[LABEL].to_numpy(dtype="int64"),
                SCORE: test_predictions[SCORE].to_numpy(dtype="float64"),
                PREDICTION: (test_predictions[SCORE].to_numpy() >= threshold).astype("int64"),
            }
        )
    return MonitorData(
        reference=reference_view,
        current=current,
        quality_reference=quality_reference,
        threshold=threshold,
        window=window,
        issues=issues,
    )


def _day(frame: pd.DataFrame, column: str, pick: str) -> str | None:
    """The first or last calendar day in `column` (vectorised: no per-row Timestamps)."""
    if frame.empty:
        return None
    return getattr(frame[column], pick)().date().isoformat()


# --------------------------------------------------------------------------- checks


@dataclass
class MonitorResult:
    summary: dict[str, Any]
    drift_report: Any = None  # evidently Snapshot
    quality_report: Any = None  # evidently Snapshot

    @property
    def retrain(self) -> bool:
        return bool(self.summary["retrain"])

    @property
    def reasons(self) -> list[str]:
        return list(self.summary["reasons"])


def data_quality(current: pd.DataFrame, reference: pd.DataFrame, cfg: MonitoringConfig) -> dict:
    """Missing values and unseen categories over the whole current window (never sampled:
    a rare new category must not slip through a sample)."""
    limits = cfg.data_quality
    missing, new_categories, issues = {}, {}, []
    rows = len(current)
    for col in MONITORED:
        cur = float(current[col].isna().mean()) if rows else 0.0
        ref = float(reference[col].isna().mean()) if len(reference) else 0.0
        missing[col] = {"current": cur, "reference": ref}
        if rows and cur >= 1.0:
            issues.append(f"{col} has no values in the current window ({rows} rows)")
        elif cur > ref + limits.max_missing_share_increase:
            issues.append(
                f"missing values in {col}: {cur:.1%} of current rows (reference {ref:.1%}, "
                f"allowed +{limits.max_missing_share_increase:.1%})"
            )
    for col in MONITORED_CATEGORICAL:
        known = set(reference[col].dropna().unique())
        values = current[col].dropna()
        unseen = values[~values.isin(known)]
        share = len(unseen) / rows if rows else 0.0
        counts = unseen.value_counts()
        new_categories[col] = {
            "rows": len(unseen),
            "share": share,
            "values": {str(k): int(v) for k, v in counts.head(20).items()},
        }
        if len(unseen) and share > limits.max_new_category_share:
            named = ", ".join(f"{k!r} ({v})" for k, v in counts.head(5).items())
            issues.append(
                f"new categories in {col}: {named}; {share:.1%} of current rows "
                f"(allowed {limits.max_new_category_share:.1%})"
            )
    return {"missing_share": missing, "new_categories": new_categories, "issues": issues}


def _is_distance(method: str | None) -> bool:
    return method in DISTANCE_METHODS


def _crossing(method: str | None, score: float, threshold: float) -> str:
    if _is_distance(method):
        return f"{method} {score:.3f} >= {threshold:.3f}"
    return f"{method} p-value {score:.3g} < {threshold:.3g}"


def drift_report(
    current: pd.DataFrame, reference: pd.DataFrame, columns: list[str], cfg: MonitoringConfig
) -> Any:
    """Evidently drift report: the drift table of `columns`, the score's drift, missing values."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MissingValueCount, ValueDrift
    from evidently.presets import DataDriftPreset
    from evidently.tests import lte

    drift = cfg.drift
    unknown = sorted(set(drift.per_feature) - set(MONITORED))
    if unknown:
        raise ValueError(
            f"monitoring.drift.per_feature names unknown feature(s) {', '.join(unknown)}; "
            f"monitored features: {', '.join(MONITORED)}"
        )
    per_method = {
        c: o.stattest for c, o in drift.per_feature.items() if o.stattest and c in columns
    }
    per_threshold = {
        c: o.threshold for c, o in drift.per_feature.items() if o.threshold and c in columns
    }
    numeric = [c for c in columns if c in MONITORED_NUMERIC]
    definition = DataDefinition(
        numerical_columns=[*numeric, SCORE],
        categorical_columns=[c for c in columns if c in MONITORED_CATEGORICAL],
    )
    allowed = cfg.data_quality.max_missing_share_increase
    metrics = [
        DataDriftPreset(
            columns=columns,
            drift_share=drift.max_drift_share,
            num_method=drift.num_stattest,
            cat_method=drift.cat_stattest,
            num_threshold=drift.num_threshold,
            cat_threshold=drift.cat_threshold,
            per_column_method=per_method or None,
            per_column_threshold=per_threshold or None,
        ),
        ValueDrift(column=SCORE, method=drift.score_stattest, threshold=drift.score_threshold),
        *[
            MissingValueCount(
                column=c,
                share_tests=[lte(min(1.0, float(reference[c].isna().mean()) + allowed))],
            )
            for c in columns
        ],
    ]
    keep = [*columns, SCORE]
    return Report(metrics, include_tests=True).run(
        Dataset.from_pandas(current[keep].reset_index(drop=True), data_definition=definition),
        Dataset.from_pandas(reference[keep].reset_index(drop=True), data_definition=definition),
        name="drift",
    )


def read_drift(snapshot: Any) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per-column drift (score, method, threshold, drifted) and the drifted-share metric,
    read from Evidently's own results and test statuses."""
    data = snapshot.dict()
    status = {
        test["metric_config"]["metric_id"]: test["status"]
        for test in data["tests"]
        if test["metric_config"]["params"]["type"].endswith(":ValueDrift")
    }
    columns: dict[str, dict[str, Any]] = {}
    share: dict[str, Any] = {}
    for metric in data["metrics"]:
        kind = metric["config"]["type"]
        if kind.endswith(":ValueDrift"):
            columns[metric["config"]["column"]] = {
                "stattest": metric["config"].get("method"),
                "threshold": metric["config"].get("threshold"),
                "score": float(metric["value"]),
                "drifted": status.get(metric["id"]) == "FAIL",
            }
        elif kind.endswith(":DriftedColumnsCount"):
            share = {k: float(v) for k, v in metric["value"].items()}
    return columns, share


def quality_report(
    current: pd.DataFrame,
    reference: pd.DataFrame | None,
    threshold: float,
    floors: dict[str, float],
) -> Any:
    """Evidently classification quality of the labelled current rows, against the test days."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationQuality
    from evidently.tests import gte

    definition = DataDefinition(
        numerical_columns=[SCORE],
        categorical_columns=[LABEL, PREDICTION],
        classification=[
            BinaryClassification(
                target=LABEL, prediction_labels=PREDICTION, prediction_probas=SCORE, pos_label=1
            )
        ],
    )
    preset = ClassificationQuality(
        probas_threshold=threshold,
        conf_matrix=True,
        pr_curve=True,
        rocauc_tests=[gte(floors["roc_auc"])],
        precision_tests=[gte(floors["precision"])],
        recall_tests=[gte(floors["recall"])],
        include_tests=False,
    )

    def dataset(frame: pd.DataFrame) -> Any:
        shaped = frame[[LABEL, PREDICTION, SCORE]].astype(
            {LABEL: "int64", PREDICTION: "int64", SCORE: "float64"}
        )
        return Dataset.from_pandas(shaped.reset_index(drop=True), data_definition=definition)

    return Report([preset], include_tests=True).run(
        dataset(current), dataset(reference) if reference is not None else None, name="quality"
    )


QUALITY_METRICS = {
    "RocAuc": "roc_auc",
    "Precision": "precision",
    "Recall": "recall",
    "F1Score": "f1",
}


def read_quality(snapshot: Any) -> tuple[dict[str, float], dict[str, float]]:
    """Current and reference (test days) values of the quality metrics."""
    current, reference = {}, {}
    for metric in snapshot.dict()["metrics"]:
        name = QUALITY_METRICS.get(metric["config"]["type"].rsplit(":", 1)[-1])
        if name is None:
            continue
        current[name] = float(metric["value"])
        if snapshot.context.has_reference:
            reference[name] = float(
                snapshot.context.get_reference_metric_result(metric["id"]).value
            )
    return current, reference


def run_checks(data: MonitorData, cfg: MonitoringConfig) -> MonitorResult:
    """Run every check and decide. Never raises because of what the data shows."""
    started = time.perf_counter()
    warnings: list[str] = []
    current, reference = data.current, data.reference
    dq = data_quality(current, reference, cfg)
    issues = [*data.issues, *dq.pop("issues")]

    current_sample = sample(current, cfg.sample_rows, cfg.seed)
    feature_drift: dict[str, Any] = {"status": "skipped"}
    prediction_drift: dict[str, Any] = {"status": "skipped"}
    drift_snapshot = None
    if len(current) < cfg.min_rows or len(reference) < cfg.min_rows:
        why = (
            f"current window holds {len(current)} rows and the reference {len(reference)}; "
            f"drift is judged from monitoring.min_rows={cfg.min_rows} rows on"
        )
        if len(current) == 0:
            why = (
                f"current window is empty: no batch rows in the newest {cfg.current_days} days "
                "and no served predictions; nothing to compare"
            )
        feature_drift["reason"] = prediction_drift["reason"] = why
        warnings.append(why)
    else:
        columns = [c for c in MONITORED if current_sample[c].notna().any()]
        report_started = time.perf_counter()
        drift_snapshot = drift_report(current_sample, reference, columns, cfg)
        per_column, share = read_drift(drift_snapshot)
        score = per_column.pop(SCORE)
        drifted = [c for c in columns if per_column[c]["drifted"]]
        feature_drift = {
            "status": "checked",
            "features": per_column,
            "not_checked": [c for c in MONITORED if c not in columns],
            "drifted": drifted,
            "drifted_count": len(drifted),
            "share": share.get("share", len(drifted) / len(columns)),
            "max_share": cfg.drift.max_drift_share,
            "seconds": time.perf_counter() - report_started,
        }
        prediction_drift = {
            "status": "checked",
            **score,
            "mean_score": {
                "current": float(current_sample[SCORE].mean()),
                "reference": float(reference[SCORE].mean()),
            },
        }

    model_quality = quality_check(current_sample, data, cfg)
    quality_snapshot = model_quality.pop("_snapshot", None)
    retrain, reasons = verdict(feature_drift, prediction_drift, model_quality)
    if not retrain and issues:
        warnings.append("data-quality issues found: they do not trigger retraining (see issues)")

    checked = any(
        part.get("status") == "checked" for part in (feature_drift, prediction_drift, model_quality)
    )
    summary = {
        "retrain": retrain,
        "reasons": reasons,
        "status": "checked" if checked else "insufficient_data",
        "issues": issues,
        "warnings": warnings,
        "window": {
            **data.window,
            "sampled_current_rows": len(current_sample),
            "sampled_reference_rows": len(reference),
            "labelled_rows": int(current[LABEL].notna().sum()),
        },
        "feature_drift": feature_drift,
        "prediction_drift": prediction_drift,
        "model_quality": model_quality,
        "data_quality": dq,
        "model_threshold": data.threshold,
        "seconds": time.perf_counter() - started,
    }
    return MonitorResult(
        summary=_clean(summary), drift_report=drift_snapshot, quality_report=quality_snapshot
    )


def quality_check(current: pd.DataFrame, data: MonitorData, cfg: MonitoringConfig) -> dict:
    limits = cfg.quality
    labelled = current.loc[current[LABEL].notna()]
    out: dict[str, Any] = {"status": "skipped", "labelled_rows": len(labelled)}
    if len(labelled) < limits.min_labelled_rows:
        out["reason"] = (
            f"{len(labelled)} labelled rows in the current window; quality is judged from "
            f"monitoring.quality.min_labelled_rows={limits.min_labelled_rows} on"
        )
        return out
    if labelled[LABEL].nunique() < 2:
        out["reason"] = "the labelled rows hold a single class: ROC AUC is undefined"
        return out
    floors = {
        "roc_auc": limits.min_roc_auc,
        "precision": limits.min_precision,
        "recall": limits.min_recall,
    }
    reference = data.quality_reference
    if (
        reference is not None
        and limits.max_roc_auc_drop is not None
        and reference[LABEL].nunique() == 2
    ):
        from sklearn.metrics import roc_auc_score

        evaluated = float(roc_auc_score(reference[LABEL], reference[SCORE]))
        floors["roc_auc"] = max(floors["roc_auc"], evaluated - limits.max_roc_auc_drop)
    started = time.perf_counter()
    snapshot = quality_report(labelled, reference, data.threshold, floors)
    values, evaluated_values = read_quality(snapshot)
    failed = [name for name, floor in floors.items() if values[name] < floor]
    out.update(
        {
            "status": "checked",
            "current": {**values, "positive_rate": float(labelled[LABEL].mean())},
            "reference": evaluated_values,
            "thresholds": floors,
            "failed": failed,
            "seconds": time.perf_counter() - started,
            "_snapshot": snapshot,
        }
    )
    return out


def verdict(
    feature_drift: dict[str, Any], prediction_drift: dict[str, Any], model_quality: dict[str, Any]
) -> tuple[bool, list[str]]:
    """Retrain or not, and a named reason for every threshold crossed."""
    reasons = []
    if feature_drift.get("status") == "checked":
        share, limit = feature_drift["share"], feature_drift["max_share"]
        if share >= limit:
            drifted = feature_drift["drifted"]
            total = len(feature_drift["features"])
            reasons.append(
                f"drift share {share:.2f} >= {limit:.2f} ({len(drifted)} of {total} features "
                f"drifted: {', '.join(drifted)})"
            )
    if prediction_drift.get("status") == "checked" and prediction_drift["drifted"]:
        crossed = _crossing(
            prediction_drift["stattest"], prediction_drift["score"], prediction_drift["threshold"]
        )
        reasons.append(f"prediction drift: score {crossed}")
    if model_quality.get("status") == "checked":
        for name in model_quality["failed"]:
            value = model_quality["current"][name]
            floor = model_quality["thresholds"][name]
            reasons.append(f"{name} {value:.3f} < {floor:.3f}")
    return bool(reasons), reasons


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def flat_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The numbers `dvc metrics diff` compares run to run (absent when a check was skipped)."""
    window = summary["window"]
    metrics: dict[str, Any] = {
        "retrain": int(summary["retrain"]),
        "current_rows": window["current_rows"],
        "labelled_rows": window["labelled_rows"],
        "data_quality_issues": len(summary["issues"]),
        "new_category_rows": sum(
            v["rows"] for v in summary["data_quality"]["new_categories"].values()
        ),
    }
    if window.get("prediction_log"):
        metrics["served_rows"] = window["prediction_log"]["rows"]
        metrics["malformed_log_lines"] = window["prediction_log"]["malformed_lines"]
    drift = summary["feature_drift"]
    if drift["status"] == "checked":
        metrics["drift_share"] = drift["share"]
        metrics["drifted_features"] = drift["drifted_count"]
        metrics["feature_drift"] = {c: v["score"] for c, v in drift["features"].items()}
    if summary["prediction_drift"]["status"] == "checked":
        metrics["prediction_drift"] = summary["prediction_drift"]["score"]
    quality = summary["model_quality"]
    if quality["status"] == "checked":
        metrics.update({k: v for k, v in quality["current"].items()})
    return metrics


# --------------------------------------------------------------------------- outputs


def write_outputs(
    result: MonitorResult, out_dir: Path, keep_runs: int, now: dt.datetime | None = None
) -> Path:
    """Write this run under runs/<UTC time>/ (reports + summary), the latest summary.json
    and metrics.json, and the index page of every kept run. Returns the run folder."""
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    runs = out_dir / RUNS_DIR
    run_dir = runs / stamp
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = runs / f"{stamp}-{suffix}"
    run_dir.mkdir(parents=True)
    summary = dict(result.summary)
    summary["run"] = run_dir.name
    summary["generated_at"] = now.isoformat(timespec="seconds")
    reports = {}
    for name, snapshot in (
        (DRIFT_REPORT, result.drift_report),
        (QUALITY_REPORT, result.quality_report),
    ):
        if snapshot is not None:
            snapshot.save_html(str(run_dir / name))
            reports[name.removesuffix(".html")] = f"{RUNS_DIR}/{run_dir.name}/{name}"
    summary["reports"] = reports
    result.summary = summary
    write_json(summary, run_dir / SUMMARY_FILE)
    write_json(summary, out_dir / SUMMARY_FILE)
    write_json(flat_metrics(summary), out_dir / METRICS_FILE)
    prune_runs(runs, keep_runs)
    write_index(out_dir)
    return run_dir


def prune_runs(runs: Path, keep: int) -> None:
    for old in sorted(p for p in runs.iterdir() if p.is_dir())[:-keep]:
        shutil.rmtree(old)


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


INDEX_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Monitoring reports</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .3em .6em; vertical-align: top; }
th { background: #f4f4f4; }
.bad { color: #b00020; } .ok { color: #1b7f3b; } .skip { color: #777; }
</style></head><body>
<h1>Monitoring reports</h1>
<p>One row per monitoring run, newest first: the verdict, why, and links to Evidently's
reports (drift: current window against the training reference; quality: labelled current
rows against the evaluated test days). Thresholds live in params.yaml, section
<code>monitoring</code>.</p>
<table><thead><tr><th>run (UTC)</th><th>verdict</th><th>drift share</th><th>score drift</th>
<th>ROC AUC</th><th>current rows</th><th>reasons and issues</th><th>reports</th></tr></thead>
<tbody>
<!-- rows -->
</tbody></table></body></html>
"""


def write_index(out_dir: Path) -> Path:
    """reports/monitoring/index.html: every kept run, newest first, linking its reports."""
    rows = []
    for summary_path in sorted((out_dir / RUNS_DIR).glob(f"*/{SUMMARY_FILE}"), reverse=True):
        try:
            s = json.loads(summary_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        run = summary_path.parent.name
        if s.get("retrain"):
            verdict_cell = '<b class="bad">RETRAIN</b>'
        elif s.get("status") == "checked":
            verdict_cell = '<span class="ok">ok</span>'
        else:
            verdict_cell = '<span class="skip">not enough data</span>'
        drift = s.get("feature_drift", {})
        quality = s.get("model_quality", {})
        window = s.get("window", {})
        links = " ".join(
            f'<a href="{html.escape(path)}">{html.escape(name)}</a>'
            for name, path in s.get("reports", {}).items()
        )
        links += f' <a href="{RUNS_DIR}/{html.escape(run)}/{SUMMARY_FILE}">summary</a>'
        notes = [*s.get("reasons", []), *s.get("issues", [])]
        rows.append(
            "<tr>"
            f"<td>{html.escape(s.get('generated_at', run))}</td>"
            f"<td>{verdict_cell}</td>"
            f"<td>{_fmt(drift.get('share'), 2)}</td>"
            f"<td>{_fmt(s.get('prediction_drift', {}).get('score'))}</td>"
            f"<td>{_fmt(quality.get('current', {}).get('roc_auc'))}</td>"
            f"<td>{window.get('current_rows', '')}</td>"
            f"<td>{'<br>'.join(html.escape(n) for n in notes)}</td>"
            f"<td>{links}</td>"
            "</tr>"
        )
    page = INDEX_PAGE.replace("<!-- rows -->", "\n".join(rows))
    path = out_dir / INDEX_FILE
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def log_to_mlflow(
    result: MonitorResult, run_dir: Path, model_run_id: str | None, tags: dict[str, str]
) -> str:
    """A `monitor` run in the project's experiment (MLflow already set up): the verdict's
    numbers as metrics, the reasons as tags, the reports and summary as artifacts."""
    import mlflow

    from .tracking import flatten

    summary = result.summary
    numeric = {
        k: float(v)
        for k, v in flatten("", flat_metrics(summary)).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    run_tags = {
        **tags,
        "stage": "monitor",
        "retrain": str(result.retrain).lower(),
        "reasons": "; ".join(result.reasons)[:4900] or "none",
        "model_run_id": model_run_id or "unknown",
    }
    with mlflow.start_run(run_name="monitor") as run:
        mlflow.set_tags(run_tags)
        mlflow.log_metrics(numeric)
        for path in sorted(run_dir.iterdir()):
            mlflow.log_artifact(str(path), artifact_path="monitoring")
        return run.info.run_id


def describe(result: MonitorResult) -> str:
    """One paragraph for the console: the verdict and why."""
    s = result.summary
    if s["status"] != "checked":
        head = "monitor: not enough data to judge; no retraining triggered"
    elif result.retrain:
        head = "monitor: RETRAIN - " + "; ".join(result.reasons)
    else:
        drift = s["feature_drift"]
        share = f"drift share {drift['share']:.2f}" if drift["status"] == "checked" else ""
        head = f"monitor: no retraining needed ({share or 'drift not judged'})"
    lines = [head]
    lines += [f"  issue: {i}" for i in s["issues"]]
    lines += [f"  warning: {w}" for w in s["warnings"]]
    return "\n".join(lines)
