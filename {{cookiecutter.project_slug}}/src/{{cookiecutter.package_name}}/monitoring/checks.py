"""The checks and the verdict.

- feature drift: an Evidently drift test per monitored feature and the share of
  drifted features (`drift.max_drift_share`);
- prediction drift: the drift of the model's score distribution;
- model quality: ROC AUC, precision and recall on the newest `current_days` days whose
  labels have matured (`dataset.label.horizon_days`), so concept drift (same inputs, new
  outcome) is seen too; precision's floor is by default a lift over those rows' positive
  rate (`quality.min_precision_lift`);
- data quality: missing values and categories the model never saw;
- per model version (versions.py): score drift and quality of each version in the
  prediction log's current window, shadow scores included (figures, not triggers).

Drift and quality checks decide `retrain`, each crossed threshold adding a named
reason; data-quality issues are reported but do not retrain (retraining on broken
inputs would learn the breakage).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..config import MonitoringConfig, MonitoringQualityConfig
from ..errors import ConfigError
from ..metrics import lift_floor
from ..prediction_log import SCORE
from .columns import MonitoredColumns
from .data import MonitorData
from .evidently_reports import drift_report, quality_report, read_drift, read_quality
from .versions import version_checks
from .windows import sample

# Evidently methods that return a distance (drift when score >= threshold); the others
# return a p-value (drift when p < threshold).
DISTANCE_METHODS = {"wasserstein", "psi", "jensenshannon", "kl_div", "hellinger", "ed"}


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


def data_quality(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    cfg: MonitoringConfig,
    columns: MonitoredColumns,
) -> dict:
    """Missing values and unseen categories over the whole current window (never sampled:
    a rare new category must not slip through a sample)."""
    limits = cfg.data_quality
    missing, new_categories, issues = {}, {}, []
    rows = len(current)
    for col in columns.monitored:
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
    for col in columns.categorical:
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


def check_config(cfg: MonitoringConfig, columns: MonitoredColumns) -> None:
    """ConfigError when the monitoring params name a feature that is not monitored."""
    unknown = sorted(set(cfg.drift.per_feature) - set(columns.monitored))
    if unknown:
        raise ConfigError(
            f"monitor.drift.per_feature names unknown feature(s) {', '.join(unknown)}; "
            f"monitored features (from params.yaml dataset): {', '.join(columns.monitored)}"
        )


def _too_few_rows(data: MonitorData, cfg: MonitoringConfig) -> str | None:
    """Why drift cannot be judged from the window (None when it can)."""
    rows = len(data.current if data.window_rows is None else data.window_rows)
    reference = data.reference
    if rows >= cfg.min_rows and len(reference) >= cfg.min_rows:
        return None
    if rows == 0:
        return (
            f"current window is empty: no batch rows in the newest {cfg.current_days} days "
            "and no served predictions; nothing to compare"
        )
    return (
        f"current window holds {rows} rows and the reference {len(reference)}; "
        f"drift is judged from monitor.min_rows={cfg.min_rows} rows on"
    )


def drift_checks(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    cfg: MonitoringConfig,
    monitored: MonitoredColumns,
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """Feature drift, prediction (score) drift and the Evidently snapshot they come from."""
    columns = [c for c in monitored.monitored if current[c].notna().any()]
    started = time.perf_counter()
    snapshot = drift_report(current, reference, columns, cfg, monitored)
    per_column, share = read_drift(snapshot)
    score = per_column.pop(SCORE)
    drifted = [c for c in columns if per_column[c]["drifted"]]
    feature_drift = {
        "status": "checked",
        "features": per_column,
        "not_checked": [c for c in monitored.monitored if c not in columns],
        "drifted": drifted,
        "drifted_count": len(drifted),
        "share": share.get("share", len(drifted) / len(columns)),
        "max_share": cfg.drift.max_drift_share,
        "seconds": time.perf_counter() - started,
    }
    prediction_drift = {
        "status": "checked",
        **score,
        "mean_score": {
            "current": float(current[SCORE].mean()),
            "reference": float(reference[SCORE].mean()),
        },
    }
    return feature_drift, prediction_drift, snapshot


def run_checks(data: MonitorData, cfg: MonitoringConfig) -> MonitorResult:
    """Run every check and decide. Never raises because of what the data shows
    (ConfigError when the params name a feature that is not monitored)."""
    check_config(cfg, data.columns)
    started = time.perf_counter()
    warnings: list[str] = []
    current, reference = data.current, data.reference
    every_row = current if data.window_rows is None else data.window_rows  # never sampled
    dq = data_quality(every_row, reference, cfg, data.columns)
    issues = [*data.issues, *dq.pop("issues")]

    current_sample = sample(current, cfg.sample_rows, cfg.seed)
    feature_drift: dict[str, Any] = {"status": "skipped"}
    prediction_drift: dict[str, Any] = {"status": "skipped"}
    drift_snapshot = None
    if why := _too_few_rows(data, cfg):
        feature_drift["reason"] = prediction_drift["reason"] = why
        warnings.append(why)
    else:
        feature_drift, prediction_drift, drift_snapshot = drift_checks(
            current_sample, reference, cfg, data.columns
        )
    model_quality = quality_check(sample(data.labelled, cfg.sample_rows, cfg.seed), data, cfg)
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
            "labelled_rows": len(data.labelled),
        },
        "feature_drift": feature_drift,
        "prediction_drift": prediction_drift,
        "model_quality": model_quality,
        "data_quality": dq,
        "model_versions": version_checks(data.versions, reference[SCORE], cfg),
        "model_threshold": data.threshold,
        "seconds": time.perf_counter() - started,
    }
    return MonitorResult(
        summary=_clean(summary), drift_report=drift_snapshot, quality_report=quality_snapshot
    )


def _quality_days(data: MonitorData) -> dict[str, Any]:
    """Which days the labelled rows come from (monitor_data's window["quality"])."""
    quality = data.window.get("quality") or {}
    keys = ("first_day", "last_day", "label_horizon_days", "labels_known_before")
    return {k: quality.get(k) for k in keys}


def _floors(
    labelled: pd.DataFrame, data: MonitorData, limits: MonitoringQualityConfig
) -> tuple[dict[str, float], dict[str, str]]:
    """The quality floors for these labelled rows, and how a relative one was derived."""
    label = data.columns.label
    floors = {"roc_auc": limits.min_roc_auc, "recall": limits.min_recall}
    rules: dict[str, str] = {}
    precision = precision_floor(limits, float(labelled[label].mean()))
    if precision is not None:
        floors["precision"], rule = precision
        if rule:
            rules["precision"] = rule
    reference = data.quality_reference
    if (
        reference is not None
        and limits.max_roc_auc_drop is not None
        and reference[label].nunique() == 2
    ):
        from sklearn.metrics import roc_auc_score

        evaluated = float(roc_auc_score(reference[label], reference[SCORE]))
        floors["roc_auc"] = max(floors["roc_auc"], evaluated - limits.max_roc_auc_drop)
    return floors, rules


def quality_check(rows: pd.DataFrame, data: MonitorData, cfg: MonitoringConfig) -> dict:
    """Quality of the model on `rows` that have a label (the matured window's rows)."""
    limits, label = cfg.quality, data.columns.label
    labelled = rows.loc[rows[label].notna()]
    days = _quality_days(data)
    out: dict[str, Any] = {"status": "skipped", "labelled_rows": len(labelled), "days": days}
    if len(labelled) < limits.min_labelled_rows:
        where = (
            f"the days {days['first_day']}..{days['last_day']} whose labels are known "
            f"(dataset.label.horizon_days: {days['label_horizon_days']})"
            if days["first_day"]
            else "the current window"
        )
        out["reason"] = (
            f"{len(labelled)} labelled rows in {where}; quality is judged from "
            f"monitor.quality.min_labelled_rows={limits.min_labelled_rows} on"
        )
        return out
    if labelled[label].nunique() < 2:
        out["reason"] = "the labelled rows hold a single class: ROC AUC is undefined"
        return out
    floors, rules = _floors(labelled, data, limits)
    started = time.perf_counter()
    snapshot = quality_report(labelled, data.quality_reference, data.threshold, floors, label)
    values, evaluated_values = read_quality(snapshot)
    failed = [name for name, floor in floors.items() if values[name] < floor]
    out.update(
        {
            "status": "checked",
            "current": {**values, "positive_rate": float(labelled[label].mean())},
            "reference": evaluated_values,
            "thresholds": floors,
            "rules": rules,  # how a relative floor was derived, e.g. "1.5 x positive rate ..."
            "failed": failed,
            "seconds": time.perf_counter() - started,
            "_snapshot": snapshot,
        }
    )
    return out


def precision_floor(
    limits: MonitoringQualityConfig, positive_rate: float
) -> tuple[float, str | None] | None:
    """The precision floor on labelled rows with this positive rate, and its rule when it
    is the lift: the higher of min_precision_lift x positive rate and min_precision (the
    ones set); None when neither is."""
    floors: list[tuple[float, str | None]] = []
    if limits.min_precision_lift is not None:
        floor = lift_floor(limits.min_precision_lift, positive_rate)
        rule = f"{limits.min_precision_lift} x positive rate {positive_rate:.3f} ({floor:.3f})"
        floors.append((floor, rule))
    if limits.min_precision is not None:
        floors.append((limits.min_precision, None))
    return max(floors, key=lambda f: f[0], default=None)


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
            rule = model_quality.get("rules", {}).get(name) or f"{floor:.3f}"
            reasons.append(f"{name} {value:.3f} < {rule}")
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
