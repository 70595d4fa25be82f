"""Evaluate stage: metrics, curves and per-slice metrics on the held-out test days.

Calibration (are the scores frequencies?): the Brier score (mean squared error of the
score against the 0/1 label: 0 is perfect, the baseline's is about positive rate x (1 -
positive rate)), the expected calibration error (ECE: the rows' share-weighted mean
|observed positive rate - mean score| over equal-width score bins) and the reliability
curve they come from (observed positive rate against mean score, per bin: the diagonal
is perfect calibration).

Slices (slices.py) are the groups the dataset contract declares: values of
`dataset.slices` columns, quantile bins of `dataset.slice_bins` columns and crosses of
two (`dataset.slice_crosses`); each gets its own metrics (reports/slice_metrics.json),
and the largest recall and false-positive-rate gaps between slices of one dimension
(among slices of evaluate.min_slice_rows rows or more) are metrics too
(`slice_recall_gap`, `slice_fpr_gap`; null when no dimension has two such slices).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from .config import LiftMetric
from .contract import DatasetContract
from .files import write_json
from .slices import json_ready, slice_gaps, slice_metrics, slice_rows

# The metrics whose chance level is the positive rate of the rows they are measured on:
# a score without skill (evaluate's trivial baseline, one constant score for every row)
# has PR AUC = positive rate (metrics.json: baseline.pr_auc), and flagging rows at random
# has precision = positive rate. The gates' lifts (promote.minimum_lifts,
# monitor.quality.min_precision_lift) are multiples of it; ROC AUC's chance level is 0.5
# on any data, so its floors stay absolute.
LIFT_METRICS: tuple[str, ...] = get_args(LiftMetric)


def lift_floor(lift: float, positive_rate: float) -> float:
    """The floor `lift` x the chance level (`positive_rate`) of a LIFT_METRICS metric."""
    return lift * positive_rate


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]
    slices: dict[str, dict[str, float | None]]  # slices.SLICE_METRICS per slice
    roc: pd.DataFrame
    pr: pd.DataFrame
    confusion: pd.DataFrame
    importance: pd.DataFrame
    reliability: pd.DataFrame  # reliability_curve of the scores
    shap: pd.DataFrame  # feature, mean_abs_shap (largest first)
    slice_dimensions: dict[str, list[str]] = field(default_factory=dict)
    slice_gaps: dict[str, Any] = field(default_factory=dict)  # slices.slice_gaps
    min_slice_rows: int = 1  # the gaps' slices have this many rows or more


def classification_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold-free (ROC/PR AUC, log loss) and thresholded (precision, recall, F1) metrics."""
    predicted = (scores >= threshold).astype(int)
    two_classes = len(np.unique(y)) == 2
    return {
        "rows": float(len(y)),
        "positive_rate": float(np.mean(y)) if len(y) else 0.0,
        "roc_auc": float(skm.roc_auc_score(y, scores)) if two_classes else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, scores)) if two_classes else float("nan"),
        "log_loss": log_loss(y, scores),
        "brier": brier_score(y, scores),
        "precision": float(skm.precision_score(y, predicted, zero_division=0)),
        "recall": float(skm.recall_score(y, predicted, zero_division=0)),
        "f1": float(skm.f1_score(y, predicted, zero_division=0)),
        "threshold": float(threshold),
    }


def log_loss(y: np.ndarray, scores: np.ndarray) -> float:
    return float(skm.log_loss(y, np.clip(scores, 1e-7, 1 - 1e-7), labels=[0, 1]))


def brier_score(y: np.ndarray, scores: np.ndarray) -> float:
    """Mean squared difference of the scores and the 0/1 labels (NaN without rows)."""
    if not len(y):
        return float("nan")
    return float(np.mean((np.asarray(scores, dtype=np.float64) - y) ** 2))


def reliability_curve(y: np.ndarray, scores: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Per non-empty equal-width bin of [0, 1] (the last one closed): its bounds, rows,
    mean score and observed positive rate."""
    scores = np.asarray(scores, dtype=np.float64)
    index = np.clip((scores * bins).astype(np.int64), 0, bins - 1)
    rows = np.bincount(index, minlength=bins)
    score_sum = np.bincount(index, weights=scores, minlength=bins)
    positives = np.bincount(index, weights=np.asarray(y, dtype=np.float64), minlength=bins)
    used = rows > 0
    return pd.DataFrame(
        {
            "bin_start": np.arange(bins)[used] / bins,
            "bin_end": (np.arange(bins)[used] + 1) / bins,
            "rows": rows[used],
            "mean_score": score_sum[used] / rows[used],
            "positive_rate": positives[used] / rows[used],
        }
    )


def expected_calibration_error(y: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """ECE over `bins` equal-width bins: sum of |positive rate - mean score| x share of rows."""
    curve = reliability_curve(y, scores, bins)
    if not len(curve):
        return float("nan")
    gap = (curve["positive_rate"] - curve["mean_score"]).abs()
    return float((gap * curve["rows"]).sum() / curve["rows"].sum())


def calibration_metrics(y: np.ndarray, scores: np.ndarray, bins: int = 10) -> dict[str, float]:
    """Brier score and ECE of `scores`."""
    return {"brier": brier_score(y, scores), "ece": expected_calibration_error(y, scores, bins)}


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
    *,
    raw_scores: np.ndarray | None = None,
    shap: dict[str, float] | None = None,
    calibration_bins: int = 10,
    min_slice_rows: int = 1,
) -> Evaluation:
    """Metrics of `scores` on the test rows (label contract.label.column, 0/1), against
    the trivial baseline, per slice (contract.slices), with curves and importances;
    `raw_scores`: the model's scores before calibration (default: `scores`), whose Brier
    score and ECE are reported too (`uncalibrated`); `shap`: mean |SHAP| per feature."""
    y = test[contract.label.column].to_numpy()
    model_metrics = classification_metrics(y, scores, threshold)
    # Trivial baseline: predict the training prior for everyone.
    prior = np.full(len(y), train_positive_rate)
    baseline = classification_metrics(y, prior, threshold=threshold)
    raw = scores if raw_scores is None else raw_scores
    slicing = slice_rows(test, contract)
    slices = slice_metrics(y, scores, threshold, slicing.indices)
    gaps = slice_gaps(slices, slicing.dimensions, min_slice_rows)
    all_metrics: dict[str, Any] = {
        **model_metrics,
        "ece": expected_calibration_error(y, scores, calibration_bins),
        "baseline": {k: baseline[k] for k in ("roc_auc", "pr_auc", "log_loss", "brier")},
        "uncalibrated": {
            **calibration_metrics(y, raw, calibration_bins),
            "log_loss": log_loss(y, raw),
        },
        "pr_auc_lift_over_baseline": model_metrics["pr_auc"] / max(baseline["pr_auc"], 1e-12),
        **{f"slice_{m}_gap": gap["gap"] if gap else None for m, gap in gaps.items()},
    }

    fpr, tpr, _ = skm.roc_curve(y, scores)
    precision, recall, _ = skm.precision_recall_curve(y, scores)
    predicted = (scores >= threshold).astype(int)
    return Evaluation(
        metrics=all_metrics,
        slices=slices,
        roc=_thin(pd.DataFrame({"fpr": fpr, "tpr": tpr}), plot_points),
        pr=_thin(pd.DataFrame({"recall": recall, "precision": precision}), plot_points),
        confusion=pd.DataFrame({"actual": y, "predicted": predicted}),
        importance=_ranked(importance, "gain"),
        reliability=reliability_curve(y, scores, calibration_bins),
        shap=_ranked(shap or {}, "mean_abs_shap"),
        slice_dimensions=slicing.dimensions,
        slice_gaps=gaps,
        min_slice_rows=min_slice_rows,
    )


def _ranked(values: dict[str, float], column: str) -> pd.DataFrame:
    ranked = sorted(values.items(), key=lambda kv: kv[1], reverse=True)
    return pd.DataFrame(ranked, columns=["feature", column])


def slice_report(evaluation: Evaluation) -> dict[str, Any]:
    """slice_metrics.json: the metrics of every slice (null: undefined in the slice), the
    slices of each dimension, and the largest recall and FPR gaps with their slices."""
    return json_ready(
        {
            "slices": evaluation.slices,
            "dimensions": evaluation.slice_dimensions,
            "gaps": evaluation.slice_gaps,
            "min_slice_rows": evaluation.min_slice_rows,
        }
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
        "reliability": plots / "reliability.csv",
        "shap": plots / "shap_importance.csv",
    }
    write_json(evaluation.metrics, paths["metrics"])
    write_json(slice_report(evaluation), paths["slices"])
    evaluation.roc.to_csv(paths["roc"], index=False)
    evaluation.pr.to_csv(paths["pr"], index=False)
    evaluation.confusion.to_csv(paths["confusion"], index=False)
    evaluation.importance.to_csv(paths["importance"], index=False)
    evaluation.reliability.to_csv(paths["reliability"], index=False)
    evaluation.shap.to_csv(paths["shap"], index=False)
    return paths
