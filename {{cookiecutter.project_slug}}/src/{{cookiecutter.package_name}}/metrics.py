"""Evaluate stage: metrics, curves and per-slice metrics on the held-out test days.

Slices are the values of the columns `dataset.slices` lists. A slice is named by
its value when one column is listed (`north`) and by `column=value` when there
are several (`region=north`); a missing value is the slice `(missing)`. With
`slices: []` there are no per-slice metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from .config import LiftMetric
from .contract import DatasetContract
from .errors import StageInputError
from .files import write_json

SLICE_METRICS = ("rows", "positive_rate", "roc_auc", "pr_auc", "recall", "precision")
# The metrics whose chance level is the positive rate of the rows they are measured on:
# a score without skill (evaluate's trivial baseline, one constant score for every row)
# has PR AUC = positive rate (metrics.json: baseline.pr_auc), and flagging rows at random
# has precision = positive rate. The gates' lifts (promote.minimum_lifts,
# monitor.quality.min_precision_lift) are multiples of it; ROC AUC's chance level is 0.5
# on any data, so its floors stay absolute.
LIFT_METRICS: tuple[str, ...] = get_args(LiftMetric)
MISSING_SLICE = "(missing)"


def lift_floor(lift: float, positive_rate: float) -> float:
    """The floor `lift` x the chance level (`positive_rate`) of a LIFT_METRICS metric."""
    return lift * positive_rate


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float | dict[str, float]]
    slices: dict[str, dict[str, float]]
    roc: pd.DataFrame
    pr: pd.DataFrame
    confusion: pd.DataFrame
    importance: pd.DataFrame


def classification_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold-free (ROC/PR AUC, log loss) and thresholded (precision, recall, F1) metrics."""
    predicted = (scores >= threshold).astype(int)
    two_classes = len(np.unique(y)) == 2
    return {
        "rows": float(len(y)),
        "positive_rate": float(np.mean(y)) if len(y) else 0.0,
        "roc_auc": float(skm.roc_auc_score(y, scores)) if two_classes else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, scores)) if two_classes else float("nan"),
        "log_loss": float(skm.log_loss(y, np.clip(scores, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "precision": float(skm.precision_score(y, predicted, zero_division=0)),
        "recall": float(skm.recall_score(y, predicted, zero_division=0)),
        "f1": float(skm.f1_score(y, predicted, zero_division=0)),
        "threshold": float(threshold),
    }


def _slice_value(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING_SLICE
    if isinstance(value, float) and value.is_integer():  # integer codes read back as float
        return str(int(value))
    return str(value)


def slice_indices(frame: pd.DataFrame, columns: list[str]) -> dict[str, np.ndarray]:
    """Row positions of every slice of `frame` (see the module docstring for the names)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StageInputError(
            f"slice columns {missing} (params.yaml: dataset.slices) are not in the rows: "
            "re-run the training_set stage, or fix dataset.slices"
        )
    out: dict[str, np.ndarray] = {}
    for column in columns:
        names = frame[column].astype(object).map(_slice_value)
        for value, idx in names.groupby(names, sort=True).indices.items():
            out[value if len(columns) == 1 else f"{column}={value}"] = idx
    return out


def slice_metrics(
    y: np.ndarray, scores: np.ndarray, threshold: float, indices: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """SLICE_METRICS of every slice (`indices`: slice_indices of the rows)."""
    return {
        name: {
            k: v
            for k, v in classification_metrics(y[idx], scores[idx], threshold).items()
            if k in SLICE_METRICS
        }
        for name, idx in indices.items()
    }


def _thin(frame: pd.DataFrame, points: int) -> pd.DataFrame:
    if len(frame) <= points:
        return frame.reset_index(drop=True)
    idx = np.unique(np.linspace(0, len(frame) - 1, points).round().astype(int))
    return frame.iloc[idx].reset_index(drop=True)


def evaluate(
    test: pd.DataFrame,
    scores: np.ndarray,
    threshold: float,
    train_positive_rate: float,
    importance: dict[str, float],
    contract: DatasetContract,
    plot_points: int = 200,
) -> Evaluation:
    """Metrics of `scores` on the test rows (label contract.label.column, 0/1), against
    the trivial baseline, per slice (contract.slices), with curves and importances."""
    y = test[contract.label.column].to_numpy()
    model_metrics = classification_metrics(y, scores, threshold)
    # Trivial baseline: predict the training prior for everyone.
    prior = np.full(len(y), train_positive_rate)
    baseline = classification_metrics(y, prior, threshold=threshold)
    all_metrics: dict[str, float | dict[str, float]] = {
        **model_metrics,
        "baseline": {k: baseline[k] for k in ("roc_auc", "pr_auc", "log_loss")},
        "pr_auc_lift_over_baseline": model_metrics["pr_auc"] / max(baseline["pr_auc"], 1e-12),
    }

    slices = slice_metrics(y, scores, threshold, slice_indices(test, contract.slices))

    fpr, tpr, _ = skm.roc_curve(y, scores)
    precision, recall, _ = skm.precision_recall_curve(y, scores)
    predicted = (scores >= threshold).astype(int)
    return Evaluation(
        metrics=all_metrics,
        slices=slices,
        roc=_thin(pd.DataFrame({"fpr": fpr, "tpr": tpr}), plot_points),
        pr=_thin(pd.DataFrame({"recall": recall, "precision": precision}), plot_points),
        confusion=pd.DataFrame({"actual": y, "predicted": predicted}),
        importance=pd.DataFrame(
            sorted(importance.items(), key=lambda kv: kv[1], reverse=True),
            columns=["feature", "gain"],
        ),
    )


def write_reports(evaluation: Evaluation, reports_dir: Path) -> dict[str, Path]:
    """metrics.json and slice_metrics.json for `dvc metrics`, CSVs for `dvc plots`."""
    plots = reports_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": reports_dir / "metrics.json",
        "slices": reports_dir / "slice_metrics.json",
        "roc": plots / "roc.csv",
        "pr": plots / "precision_recall.csv",
        "confusion": plots / "confusion.csv",
        "importance": plots / "feature_importance.csv",
    }
    write_json(evaluation.metrics, paths["metrics"])
    write_json(evaluation.slices, paths["slices"])
    evaluation.roc.to_csv(paths["roc"], index=False)
    evaluation.pr.to_csv(paths["pr"], index=False)
    evaluation.confusion.to_csv(paths["confusion"], index=False)
    evaluation.importance.to_csv(paths["importance"], index=False)
    return paths
