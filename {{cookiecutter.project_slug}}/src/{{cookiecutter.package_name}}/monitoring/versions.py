"""Score drift and model quality per model version, from the prediction log.

Every version that answered requests in the current window (`served`: the champion,
a canary's candidate, a version the alias left during the window) and every version
that scored in the shadow (`shadow`: prediction_log.py shadow_*) gets its own
figures: its predictions in the current window, their mean score, the drift of its
score distribution from the training reference's (`monitor.drift.score_stattest` and
`score_threshold`, from `monitor.min_rows` predictions on), and, on the matured window
(labels known, as for the champion's quality), ROC AUC and the precision and recall of
the labels it gave, from `monitor.quality.min_labelled_rows` labelled rows on.

These figures compare versions during a rollout; they decide nothing. The verdict
(retrain or not) stays the one checks.py reaches over the whole current window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..config import MonitoringConfig, MonitoringQualityConfig
from ..prediction_log import (
    MODEL_VERSION,
    PREDICTION,
    SCORE,
    SHADOW_PREDICTION,
    SHADOW_SCORE,
    SHADOW_VERSION,
)

VERSION, ROLE, LABEL, CURRENT, MATURED = "version", "role", "label", "current", "matured"


def _labels(values: pd.Series) -> np.ndarray:
    """0/1 labels (nullable Int64) as floats, NaN where none was given."""
    return values.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)


def version_rows(
    scoped: pd.DataFrame,
    labels: np.ndarray,
    timestamp: str,
    drift_start: pd.Timestamp | None,
    quality_window: tuple[pd.Timestamp | None, pd.Timestamp | None],
) -> pd.DataFrame:
    """One row per prediction and model that scored it (served, then shadow), from log
    rows (read_prediction_log's frame) and their labels (NaN until known): whether it is
    in the current window, and whether it is in the matured window with its label known."""
    ts = scoped[timestamp]
    current = ts >= drift_start if drift_start is not None else pd.Series(False, index=ts.index)
    start, known_before = quality_window
    matured = pd.Series(False, index=ts.index)
    if start is not None and known_before is not None:
        matured = (ts >= start) & (ts < known_before) & ~np.isnan(labels)
    base = {LABEL: labels, CURRENT: current.to_numpy(), MATURED: matured.to_numpy()}
    served = pd.DataFrame(
        {
            VERSION: scoped[MODEL_VERSION].astype(str).to_numpy(),
            ROLE: "served",
            SCORE: scoped[SCORE].to_numpy(dtype="float64"),
            PREDICTION: _labels(scoped[PREDICTION]),
            **base,
        }
    )
    shadowed = scoped[SHADOW_VERSION].notna().to_numpy()
    shadow = pd.DataFrame(
        {
            VERSION: scoped[SHADOW_VERSION].to_numpy()[shadowed],
            ROLE: "shadow",
            SCORE: scoped[SHADOW_SCORE].to_numpy(dtype="float64")[shadowed],
            PREDICTION: _labels(scoped[SHADOW_PREDICTION])[shadowed],
            **{k: v[shadowed] for k, v in base.items()},
        }
    )
    return pd.concat([served, shadow], ignore_index=True)


def _quality(labelled: pd.DataFrame, limits: MonitoringQualityConfig) -> dict[str, Any]:
    """ROC AUC of the scores, precision and recall of the labels given, on labelled rows."""
    from sklearn import metrics as skm

    out: dict[str, Any] = {"status": "skipped", "labelled_rows": len(labelled)}
    if len(labelled) < limits.min_labelled_rows:
        out["reason"] = (
            f"{len(labelled)} labelled rows; figures from "
            f"monitor.quality.min_labelled_rows={limits.min_labelled_rows} on"
        )
        return out
    y = labelled[LABEL].to_numpy(dtype="int64")
    if len(np.unique(y)) < 2:
        out["reason"] = "the labelled rows hold a single class: ROC AUC is undefined"
        return out
    given = labelled.loc[labelled[PREDICTION].notna()]
    y_given = given[LABEL].to_numpy(dtype="int64")
    predicted = given[PREDICTION].to_numpy(dtype="int64")
    out.update(
        status="checked",
        positive_rate=float(y.mean()),
        roc_auc=float(skm.roc_auc_score(y, labelled[SCORE])),
        precision=float(skm.precision_score(y_given, predicted, zero_division=0)),
        recall=float(skm.recall_score(y_given, predicted, zero_division=0)),
    )
    return out


def _score_drift(current: pd.Series, reference: pd.Series, cfg: MonitoringConfig) -> dict:
    from .evidently_reports import score_drift

    if len(current) < cfg.min_rows or len(reference) < cfg.min_rows:
        return {
            "status": "skipped",
            "reason": f"{len(current)} predictions; judged from monitor.min_rows={cfg.min_rows} on",
        }
    if cfg.sample_rows and len(current) > cfg.sample_rows:
        current = current.sample(cfg.sample_rows, random_state=cfg.seed)
    return {"status": "checked", **score_drift(current, reference, cfg.drift)}


def version_checks(
    rows: pd.DataFrame | None, reference_scores: pd.Series, cfg: MonitoringConfig
) -> dict[str, Any]:
    """The figures of every (version, role) with predictions in the current window."""
    if rows is None or not rows[CURRENT].any():
        return {"status": "skipped", "reason": "no served predictions in the current window"}
    entries = []
    for (version, role), group in rows.groupby([VERSION, ROLE], sort=True):
        current = group.loc[group[CURRENT]]
        if not len(current):
            continue  # only in the matured window: not serving now
        entries.append(
            {
                "version": version,
                "role": role,
                "rows": len(current),
                "mean_score": float(current[SCORE].mean()),
                "score_drift": _score_drift(current[SCORE], reference_scores, cfg),
                "quality": _quality(group.loc[group[MATURED]], cfg.quality),
            }
        )
    return {"status": "checked", "versions": entries}


def describe_versions(summary: dict[str, Any]) -> list[str]:
    """One console line per version (reports.describe)."""
    lines = []
    for v in summary.get("versions", []):
        drift, quality = v["score_drift"], v["quality"]
        text = f"  version {v['version']} ({v['role']}): {v['rows']} predictions"
        text += f", mean score {v['mean_score']:.3f}"
        if drift["status"] == "checked":
            flag = "DRIFTED" if drift["drifted"] else "no drift"
            text += f", score drift {drift['stattest']} {drift['score']:.3f} ({flag})"
        if quality["status"] == "checked":
            text += (
                f", ROC AUC {quality['roc_auc']:.3f}, precision {quality['precision']:.3f}, "
                f"recall {quality['recall']:.3f} on {quality['labelled_rows']} labelled rows"
            )
        lines.append(text)
    return lines
