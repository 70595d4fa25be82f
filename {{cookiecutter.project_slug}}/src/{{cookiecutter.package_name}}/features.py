"""Feature engineering: plain, row-wise functions over DataFrames.

Every feature of a row is computed from that row alone (no statistics fitted
on the data), so the same function serves training and online serving and
nothing leaks across time. Categories are one-hot encoded against fixed
vocabularies: an unseen category becomes all zeros, never a new column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .datagen import CONTRACTS, PAYMENT_METHODS, SEGMENTS

ENTITY = "customer_id"
TIMESTAMP = "event_timestamp"
LABEL = "churned"
# The Feast feature service naming exactly the features the model reads (features/).
FEATURE_SERVICE = "model_features"

NUMERIC = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls_30d",
    "usage_gb_30d",
    "late_payments_90d",
]
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "contract": CONTRACTS,
    "payment_method": PAYMENT_METHODS,
    "segment": SEGMENTS,
}


# Model features that flag a missing raw value, and the raw column whose value they flag.
MISSING_FLAGS: dict[str, str] = {"usage_missing": "usage_gb_30d"}


def one_hot_columns(col: str) -> list[str]:
    """The model features of `col`'s one-hot group, in VOCABULARIES[col] order."""
    return [f"{col}_{value.replace('-', '_')}" for value in VOCABULARIES[col]]


FEATURE_COLUMNS: list[str] = [
    *NUMERIC,
    *MISSING_FLAGS,
    "avg_monthly_spend",
    "charges_per_gb",
    "support_calls_per_tenure_year",
    "log_total_charges",
    *[column for col in VOCABULARIES for column in one_hot_columns(col)],
]


def build_features(raw: pd.DataFrame) -> pd.DataFrame:
    """Model features keyed by (customer_id, event_timestamp), in FEATURE_COLUMNS order."""
    # Copy the key columns as they are: .to_numpy() on tz-aware timestamps builds slow objects.
    out = raw[[ENTITY, TIMESTAMP]].reset_index(drop=True)
    for col in NUMERIC:
        out[col] = raw[col].astype("float64").to_numpy()
    for flag, column in MISSING_FLAGS.items():
        out[flag] = out[column].isna().astype("float64")
        out[column] = out[column].fillna(0.0)
    tenure = np.maximum(out["tenure_months"], 1.0)
    out["avg_monthly_spend"] = out["total_charges"] / tenure
    out["charges_per_gb"] = out["monthly_charges"] / (out["usage_gb_30d"] + 1.0)
    out["support_calls_per_tenure_year"] = out["support_calls_30d"] / (tenure / 12.0)
    out["log_total_charges"] = np.log1p(out["total_charges"].clip(lower=0.0))
    for col, vocab in VOCABULARIES.items():
        values = raw[col].to_numpy()
        for value, column in zip(vocab, one_hot_columns(col), strict=True):
            out[column] = (values == value).astype("float64")
    return out[[ENTITY, TIMESTAMP, *FEATURE_COLUMNS]]


def build_labels(raw: pd.DataFrame, slice_column: str = "segment") -> pd.DataFrame:
    """Label events: what the model predicts, when it was observed, and the slice it belongs to."""
    columns = [ENTITY, TIMESTAMP, LABEL]
    if slice_column not in columns:
        columns.append(slice_column)
    return raw[columns].reset_index(drop=True)
