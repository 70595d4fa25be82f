"""Feature engineering: plain, row-wise functions over DataFrames, driven by the contract.

Every feature of a row is computed from that row alone (no statistics fitted
on the data), so the same function serves training and online serving and
nothing leaks across time. Numeric columns are read as they are (a nullable
one also gets a `<column>_missing` flag and its missing values read 0); derived
features come from derived.py; categories are one-hot encoded against the
contract's vocabularies: an unseen category becomes all zeros, never a new column.
"""

from __future__ import annotations

import pandas as pd

from .contract import DatasetContract
from .derived import compute_derived

# The Feast feature service naming exactly the features the model reads (features/).
FEATURE_SERVICE = "model_features"


def build_features(raw: pd.DataFrame, contract: DatasetContract) -> pd.DataFrame:
    """Model features keyed by (entity key, timestamp), in contract.feature_columns order."""
    keys = [contract.entity.key, contract.timestamp]
    missing = [c for c in [*keys, *contract.numeric, *contract.categorical] if c not in raw.columns]
    if missing:
        raise ValueError(
            f"the raw rows lack {missing}, declared in params.yaml dataset: fix the source "
            "or the contract (the raw gate names the day)"
        )
    # Copy the key columns as they are: .to_numpy() on tz-aware timestamps builds slow objects.
    out = raw[keys].reset_index(drop=True)
    numeric = pd.DataFrame(
        {
            c: pd.to_numeric(raw[c], errors="coerce").astype("float64").to_numpy()
            for c in contract.numeric
        },
        index=out.index,
    )
    columns = {c: numeric[c] for c in contract.numeric}
    for flag, column in contract.missing_flags.items():
        columns[flag] = numeric[column].isna().astype("float64")
        columns[column] = numeric[column].fillna(0.0)
    derived = compute_derived(contract.derived, numeric)
    columns.update({name: derived[name] for name in contract.derived})
    for column, group in contract.one_hot_groups.items():
        values = raw[column].to_numpy()
        for value, name in zip(contract.categorical[column].values, group, strict=True):
            columns[name] = pd.Series((values == value).astype("float64"), index=out.index)
    return pd.concat([out, pd.DataFrame(columns, index=out.index)], axis=1)[
        [*keys, *contract.feature_columns]
    ]


def build_labels(raw: pd.DataFrame, contract: DatasetContract) -> pd.DataFrame:
    """Label events: what the model predicts (0/1), when it was observed, and its slices."""
    columns = [contract.entity.key, contract.timestamp, contract.label.column]
    columns += [c for c in contract.slices if c not in columns]
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise ValueError(f"the raw rows lack {missing} (params.yaml dataset: label, slices)")
    return raw[columns].reset_index(drop=True)
