"""Evidently reports: building them, and reading their results back.

`drift_report` compares the current window with the training reference (a drift
test per monitored column, the score's drift, missing values); `quality_report`
scores the labelled current rows against the evaluated test days. The snapshots
they return are saved as the run's HTML pages (reports.py). `score_drift` is the score's
drift test alone, for one model version's scores (versions.py).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..config import MonitoringConfig, MonitoringDriftConfig
from ..prediction_log import PREDICTION, SCORE
from .columns import MonitoredColumns


def drift_report(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    columns: list[str],
    cfg: MonitoringConfig,
    monitored: MonitoredColumns,
) -> Any:
    """Evidently drift report: the drift table of `columns`, the score's drift, missing values."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MissingValueCount, ValueDrift
    from evidently.presets import DataDriftPreset
    from evidently.tests import lte

    drift = cfg.drift
    per_method = {
        c: o.stattest for c, o in drift.per_feature.items() if o.stattest and c in columns
    }
    per_threshold = {
        c: o.threshold for c, o in drift.per_feature.items() if o.threshold and c in columns
    }
    numeric = [c for c in columns if c in monitored.numeric]
    definition = DataDefinition(
        numerical_columns=[*numeric, SCORE],
        categorical_columns=[c for c in columns if c in monitored.categorical],
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


def score_drift(current: pd.Series, reference: pd.Series, drift: MonitoringDriftConfig) -> dict:
    """The drift of one model version's scores from the reference's (the score's drift
    test of `drift_report`, alone): stattest, threshold, score, drifted."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    definition = DataDefinition(numerical_columns=[SCORE])

    def dataset(scores: pd.Series) -> Any:
        frame = pd.DataFrame({SCORE: scores.to_numpy(dtype="float64")})
        return Dataset.from_pandas(frame, data_definition=definition)

    metric = ValueDrift(column=SCORE, method=drift.score_stattest, threshold=drift.score_threshold)
    snapshot = Report([metric], include_tests=True).run(dataset(current), dataset(reference))
    return read_drift(snapshot)[0][SCORE]


def quality_report(
    current: pd.DataFrame,
    reference: pd.DataFrame | None,
    threshold: float,
    floors: dict[str, float],
    label: str,
) -> Any:
    """Evidently classification quality of the labelled rows (0/1 in the contract's label
    column `label`), against the test days."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationQuality
    from evidently.tests import gte

    definition = DataDefinition(
        numerical_columns=[SCORE],
        categorical_columns=[label, PREDICTION],
        classification=[
            BinaryClassification(
                target=label, prediction_labels=PREDICTION, prediction_probas=SCORE, pos_label=1
            )
        ],
    )
    preset = ClassificationQuality(
        probas_threshold=threshold,
        conf_matrix=True,
        pr_curve=True,
        rocauc_tests=[gte(floors["roc_auc"])],
        precision_tests=[gte(floors["precision"])] if "precision" in floors else None,
        recall_tests=[gte(floors["recall"])],
        include_tests=False,
    )

    def dataset(frame: pd.DataFrame) -> Any:
        shaped = frame[[label, PREDICTION, SCORE]].astype(
            {label: "int64", PREDICTION: "int64", SCORE: "float64"}
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
