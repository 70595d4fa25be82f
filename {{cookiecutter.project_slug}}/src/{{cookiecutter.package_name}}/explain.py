"""Explanations from XGBoost itself: SHAP values (TreeSHAP, `pred_contribs=True`).

For one row XGBoost gives each feature's contribution and a bias (the model's expected
margin); they add up to the row's raw margin, the log-odds XGBoost predicts
(`output_margin`): bias + sum of the contributions == margin. They explain the model's
raw score, sigmoid(margin); the score served is that through the model's calibration
(calibration.py), which never reverses it: a feature that raises the margin never
lowers the score.

- `mean_abs_shap`: the global view evaluate plots (reports/plots/shap_importance.csv)
  and logs to MLflow: the mean |contribution| of each feature over the test rows;
- `explain_rows`: the per-prediction view, on request: /predict with `explain: k`
  (serving.py) and `score --explain k` (scoring.py) return, and log, the k features
  whose contributions are largest in absolute value.

TreeSHAP costs about a millisecond a row on one thread for the demo's model (hundreds
of times a plain prediction), so it is never computed unless asked for, and a request
may ask it for at most MAX_EXPLAINED_IDS ids.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from .model import feature_matrix, ordered_matrix

MAX_EXPLAINED_IDS = 100


def contributions(
    booster: Any, matrix: np.ndarray, columns: list[str], nthread: int = -1
) -> np.ndarray:
    """SHAP values of `matrix`'s rows (its columns: the features `columns`): one row per
    row, one column per feature of booster.feature_names (in that order), then the bias."""
    import xgboost as xgb

    names = booster.feature_names
    rows = xgb.DMatrix(
        ordered_matrix(booster, matrix, columns), feature_names=names, nthread=nthread
    )
    return booster.predict(rows, pred_contribs=True)


def mean_abs_shap(
    booster: Any, frame: pd.DataFrame, rows: int = 0, seed: int = 0
) -> dict[str, float]:
    """Mean |SHAP value| of each feature the booster reads, over `frame`'s rows (a seeded
    sample of `rows` of them when it holds more; 0: all)."""
    names = list(booster.feature_names or [])
    if rows and len(frame) > rows:
        frame = frame.sample(rows, random_state=seed)
    if not len(frame):
        return dict.fromkeys(names, 0.0)
    values = contributions(booster, feature_matrix(frame, names), names)
    return {n: float(v) for n, v in zip(names, np.abs(values[:, :-1]).mean(axis=0), strict=True)}


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def explain_rows(
    booster: Any, matrix: np.ndarray, columns: list[str], top: int, nthread: int = -1
) -> list[dict[str, Any]]:
    """An Explanation (as a dict) of each row of `matrix`: the `top` features with the
    largest |contribution| (largest first, with the row's value of each), the bias, the
    margin, and the other features' contributions summed (`rest`)."""
    if not len(matrix):
        return []
    names = booster.feature_names
    values = contributions(booster, matrix, columns, nthread).astype(np.float64)
    where = {c: i for i, c in enumerate(columns)}
    position = [where[n] for n in names]
    explained = []
    for row, shap in zip(matrix, values, strict=True):
        contribution, bias = shap[:-1], float(shap[-1])
        chosen = np.argsort(-np.abs(contribution), kind="stable")[:top]
        margin = float(shap.sum())
        explained.append(
            {
                "margin": margin,
                "bias": bias,
                "contributions": [
                    {
                        "feature": names[i],
                        "value": _number(row[position[i]]),
                        "contribution": float(contribution[i]),
                    }
                    for i in chosen
                ],
                "rest": margin - bias - float(contribution[chosen].sum()),
            }
        )
    return explained


class Contribution(BaseModel):
    feature: str = Field(description="A model feature (dataset contract: feature_columns)")
    value: float | None = Field(description="Its value for this id; null when missing")
    contribution: float = Field(description="What it adds to this id's margin (log-odds)")


class Explanation(BaseModel):
    """Why the model scored an id as it did: SHAP values from XGBoost (explain.py)."""

    margin: float = Field(
        description="The model's raw log-odds for this id: bias + every feature's contribution"
    )
    bias: float = Field(description="The margin before any feature: the model's expected margin")
    contributions: list[Contribution] = Field(
        description="The `explain` features with the largest |contribution|, largest first"
    )
    rest: float = Field(
        description="The other features' contributions summed: bias + contributions + rest = margin"
    )


class ExplainableRequest(BaseModel):
    """/predict's request base: `explain` (declared per contract) asks for explanations,
    of at most MAX_EXPLAINED_IDS ids (JSON Schema's if/then says so in the OpenAPI)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"explain": {"minimum": 1}}, "required": ["explain"]},
            "then": {"properties": {"ids": {"maxItems": MAX_EXPLAINED_IDS}}},
        },
    )

    @model_validator(mode="after")
    def _few_enough_ids_to_explain(self) -> ExplainableRequest:
        if getattr(self, "explain", 0) and len(getattr(self, "ids", ())) > MAX_EXPLAINED_IDS:
            raise ValueError(f"explain: at most {MAX_EXPLAINED_IDS} ids per request")
        return self


def explain_field(features: int) -> tuple[Any, Any]:
    """/predict's `explain` field for a model of `features` features."""
    return (
        StrictInt,
        Field(
            0,
            ge=0,
            le=features,
            description=f"0 (default): scores only. k (1 to {features}): each scored id also gets "
            "its `explanation`, the k features that moved its score most (SHAP values); at "
            f"most {MAX_EXPLAINED_IDS} ids then",
        ),
    )
