"""Derived features: plain row-wise functions over the raw numeric columns.

Register one with `@derived_feature(inputs=[...])` and list its name in params.yaml
`dataset.derived`; the model then reads it after the declared columns. A function
gets a frame of its input columns as float64 (missing values as NaN) and returns
one float per row; it must use that row alone (no statistics fitted on the data),
so that training and online serving compute the same value. The ones below are the
demo's: delete them when your contract no longer declares their inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

DerivedFunction = Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class Derived:
    name: str
    inputs: tuple[str, ...]  # the numeric columns it reads (dataset.numeric)
    compute: DerivedFunction


DERIVED: dict[str, Derived] = {}


def derived_feature(
    inputs: list[str], name: str | None = None
) -> Callable[[DerivedFunction], DerivedFunction]:
    """Register `function` as the derived feature `name` (default: the function's name)."""

    def register(function: DerivedFunction) -> DerivedFunction:
        feature = name or function.__name__
        if feature in DERIVED:
            raise ValueError(f"derived feature {feature!r} is registered twice")
        DERIVED[feature] = Derived(feature, tuple(inputs), function)
        return function

    return register


def compute_derived(names: list[str], numeric: pd.DataFrame) -> pd.DataFrame:
    """The derived features `names`, each from its inputs in `numeric` (float64)."""
    out = pd.DataFrame(index=numeric.index)
    for name in names:
        feature = DERIVED[name]
        values = feature.compute(numeric[list(feature.inputs)])
        if len(values) != len(numeric):
            raise ValueError(
                f"derived feature {name!r} returned {len(values)} values for {len(numeric)} rows"
            )
        out[name] = np.asarray(values, dtype="float64")
    return out


# --- the demo's derived features ---------------------------------------------------------


@derived_feature(inputs=["total_charges", "tenure_months"])
def avg_monthly_spend(rows: pd.DataFrame) -> pd.Series:
    return rows["total_charges"] / np.maximum(rows["tenure_months"], 1.0)


@derived_feature(inputs=["monthly_charges", "usage_gb_30d"])
def charges_per_gb(rows: pd.DataFrame) -> pd.Series:
    return rows["monthly_charges"] / (rows["usage_gb_30d"].fillna(0.0) + 1.0)


@derived_feature(inputs=["support_calls_30d", "tenure_months"])
def support_calls_per_tenure_year(rows: pd.DataFrame) -> pd.Series:
    return rows["support_calls_30d"] / (np.maximum(rows["tenure_months"], 1.0) / 12.0)


@derived_feature(inputs=["total_charges"])
def log_total_charges(rows: pd.DataFrame) -> pd.Series:
    return np.log1p(rows["total_charges"].clip(lower=0.0))
