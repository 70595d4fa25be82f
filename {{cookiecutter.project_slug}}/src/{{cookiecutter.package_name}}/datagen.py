"""Deterministic synthetic customer-churn data, arriving as daily batches.

A fixed population of customers (static attributes drawn once from the seed)
is observed every day: each daily batch holds one snapshot row for a random
subset of customers, with usage and billing features and a label saying
whether the customer churned within the following 7 days (params.yaml
dataset.label.horizon_days) (about 1 in 10
does). A day's batch depends only on (seed, day), so re-generating any window
gives identical rows, and drift can be switched on from a given date:

- covariate drift shifts charges, usage and the contract mix;
- concept drift changes what drives churn (the label), not the inputs.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import pandas as pd

CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS = ("card", "bank-transfer", "electronic-check", "mailed-check")
SEGMENTS = ("consumer", "small-business", "enterprise")

# The demo's key, timestamp and label columns (its contract in params.yaml `dataset`)
KEY, TIMESTAMP, LABEL = "customer_id", "event_timestamp", "churned"
RAW_COLUMNS = {
    KEY: "int64",
    TIMESTAMP: "datetime64[ns, UTC]",
    "segment": "object",
    "contract": "object",
    "payment_method": "object",
    "tenure_months": "int64",
    "monthly_charges": "float64",
    "total_charges": "float64",
    "support_calls_30d": "int64",
    "usage_gb_30d": "float64",
    "late_payments_90d": "int64",
    LABEL: "int64",
}
EPOCH = dt.date(2026, 1, 1)  # tenures are drawn as of this day and grow after it


def generates(columns: list[str]) -> bool:
    """Whether a contract with these raw columns is the demo's (this generator's rows)."""
    return set(columns) == set(RAW_COLUMNS)


@functools.lru_cache(maxsize=4)
def _population(population: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 0])
    segment = rng.choice(len(SEGMENTS), population, p=[0.7, 0.2, 0.1])
    return pd.DataFrame(
        {
            KEY: np.arange(100_000, 100_000 + population, dtype="int64"),
            "segment": segment,
            "contract": rng.choice(len(CONTRACTS), population, p=[0.55, 0.25, 0.20]),
            "payment_method": rng.choice(
                len(PAYMENT_METHODS), population, p=[0.35, 0.25, 0.3, 0.1]
            ),
            "base_tenure": rng.integers(0, 73, population),
            "base_charges": rng.gamma(9.0, 7.5, population) * np.array([1.0, 1.6, 2.5])[segment],
            "base_usage": rng.gamma(2.0, 40.0, population),
        }
    )


def _churn_logit(
    contract: np.ndarray,
    support_calls: np.ndarray,
    late: np.ndarray,
    tenure: np.ndarray,
    monthly: np.ndarray,
    usage: np.ndarray,
    picked: pd.DataFrame,
    concept: float,
) -> np.ndarray:
    """Log-odds of churning within the label horizon; `concept` changes what drives it."""
    return (
        -3.0
        + 1.3 * (contract == 0)
        - 0.9 * (contract == 2)
        + (0.38 + 0.5 * concept) * support_calls
        + 0.45 * late
        - (0.025 - 0.04 * concept) * tenure
        + 0.006 * (monthly - 70.0)
        - 0.004 * np.nan_to_num(usage, nan=80.0)
        + 0.35 * (picked["payment_method"].to_numpy() == 2)
        - 1.2 * concept * (contract == 0)
    )


def generate_day(
    day: dt.date,
    *,
    rows: int,
    population: int,
    seed: int,
    drift_start: dt.date | None = None,
    covariate_drift: float = 0.0,
    concept_drift: float = 0.0,
) -> pd.DataFrame:
    """One daily batch of `rows` customer snapshots; identical for identical arguments."""
    if rows > population:
        raise ValueError(f"rows ({rows}) cannot exceed population ({population})")
    pop = _population(population, seed)
    ordinal = (day - EPOCH).days
    rng = np.random.default_rng([seed, 1, ordinal])
    picked = pop.iloc[np.sort(rng.choice(population, rows, replace=False))].reset_index(drop=True)
    drifting = drift_start is not None and day >= drift_start
    cov = covariate_drift if drifting else 0.0
    concept = concept_drift if drifting else 0.0

    contract = picked["contract"].to_numpy().copy()
    if cov:  # part of the base moves to month-to-month contracts
        contract[rng.random(rows) < 0.5 * cov] = 0
    tenure = picked["base_tenure"].to_numpy() + ordinal // 30
    tenure = np.clip(tenure, 0, 120).astype("int64")
    monthly = picked["base_charges"].to_numpy() * (1 + 0.35 * cov) * rng.normal(1.0, 0.05, rows)
    monthly = np.round(np.clip(monthly, 5.0, 1000.0), 2)
    total = np.round(monthly * np.maximum(tenure, 1) * rng.normal(1.0, 0.03, rows), 2)
    usage = picked["base_usage"].to_numpy() * (1 - 0.4 * cov) * rng.gamma(5.0, 0.2, rows)
    usage = np.round(usage, 2)
    usage[rng.random(rows) < 0.01] = np.nan  # the meter sometimes fails to report
    support_calls = rng.poisson(0.4 + 0.006 * monthly + 0.5 * (contract == 0)).astype("int64")
    late = rng.poisson(0.15 + 0.45 * (picked["payment_method"].to_numpy() == 2)).astype("int64")

    logit = _churn_logit(contract, support_calls, late, tenure, monthly, usage, picked, concept)
    churned = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype("int64")
    seconds = rng.integers(0, 86_400, rows)
    timestamps = pd.Timestamp(day, tz="UTC") + pd.to_timedelta(seconds, unit="s")

    return pd.DataFrame(
        {
            KEY: picked[KEY].to_numpy(),
            TIMESTAMP: timestamps,
            "segment": np.asarray(SEGMENTS, dtype=object)[picked["segment"].to_numpy()],
            "contract": np.asarray(CONTRACTS, dtype=object)[contract],
            "payment_method": np.asarray(PAYMENT_METHODS, dtype=object)[
                picked["payment_method"].to_numpy()
            ],
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls_30d": support_calls,
            "usage_gb_30d": usage,
            "late_payments_90d": late,
            LABEL: churned,
        }
    )
