"""Rows for any dataset contract: a small generator that satisfies params.yaml `dataset`.

`ingest.source: synthetic` reads it for any contract other than the demo's (which
has its own generator, datagen.py): the DAGs and the pipeline then run before a
table exists, or at any size. The tests build their frames here too, from the
contract, never from the demo's column names, so they hold for any project's table.
The label depends on the first numeric and first categorical column, so a model
can learn it. For drift: `covariate` shifts the recorded inputs (numbers scale by
1 + covariate, a share of each categorical moves to its last value) but not the
risk behind them, so the day's label rate stays and the raw gate still passes while
the monitor sees the shift; `concept` changes what drives the label.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .contract import DatasetContract


def entity_ids(contract: DatasetContract, numbers: np.ndarray) -> np.ndarray:
    """Ids of the contract's type for entity numbers."""
    if contract.entity.dtype == "int":
        return (100_000 + numbers).astype("int64")
    return np.asarray([f"id-{n:06d}" for n in numbers], dtype=object)


def _numeric(rng: np.random.Generator, rows: int, shift: float) -> np.ndarray:
    return np.round(rng.gamma(4.0, 10.0, rows) * (1.0 + shift), 2)


def contract_day(
    contract: DatasetContract,
    day: dt.date,
    rows: int = 200,
    *,
    population: int | None = None,
    seed: int = 0,
    covariate: float = 0.0,
    concept: float = 0.0,
    null_share: float = 0.05,
) -> pd.DataFrame:
    """One conformed daily batch (key typed, UTC timestamps, 0/1 label) of `rows` rows."""
    population = population or rows * 5
    rng = np.random.default_rng([seed, day.toordinal()])
    numbers = np.sort(rng.choice(population, rows, replace=False))
    seconds = rng.integers(0, 86_400, rows)
    frame: dict[str, object] = {
        contract.entity.key: entity_ids(contract, numbers),
        contract.timestamp: pd.Timestamp(day, tz="UTC") + pd.to_timedelta(seconds, unit="s"),
    }
    logit = np.full(rows, -2.4)
    for i, (column, spec) in enumerate(contract.categorical.items()):
        values = list(spec.values)
        weights = np.linspace(2.0, 1.0, len(values))
        picked = rng.choice(len(values), rows, p=weights / weights.sum())
        recorded = picked.copy()
        if covariate:
            recorded[rng.random(rows) < 0.5 * covariate] = len(values) - 1
        codes = all(isinstance(v, int) for v in values)
        # integer codes as a source delivers them: int64, float64 where some are empty
        column_values = np.asarray(values, dtype="int64" if codes else object)[recorded]
        if spec.nullable:
            empty = rng.random(rows) < null_share
            if codes:
                column_values = column_values.astype("float64")
            column_values[empty] = np.nan if codes else None
        frame[column] = column_values
        if i == 0:
            logit += (1.2 - 2.4 * concept) * (picked == 0)
    for i, (column, spec) in enumerate(contract.numeric.items()):
        latent = _numeric(rng, rows, 0.0)
        if i == 0:
            logit += (0.08 - 0.16 * concept) * (latent - 40.0)
        values = np.round(latent * (1.0 + covariate), 2)
        if spec.nullable:
            values[rng.random(rows) < null_share] = np.nan
        frame[column] = values
    frame[contract.label.column] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    for column in contract.slices:
        if column not in frame:
            frame[column] = np.asarray(["a", "b"], dtype=object)[rng.integers(0, 2, rows)]
    for column in contract.ignored:
        frame[column] = np.asarray([f"note {n}" for n in numbers], dtype=object)
    return pd.DataFrame(frame)[contract.raw_columns]


def contract_frame(
    contract: DatasetContract, days: list[dt.date], rows_per_day: int = 200, **kwargs: object
) -> pd.DataFrame:
    """The daily batches of `days`, as one frame."""
    return pd.concat(
        [contract_day(contract, day, rows_per_day, **kwargs) for day in days], ignore_index=True
    )


def source_rows(contract: DatasetContract, frame: pd.DataFrame) -> pd.DataFrame:
    """A conformed frame as a source delivers it: the label as the source's own values."""
    label = contract.label
    negative = label.negative[0] if label.negative else f"not {label.positive}"
    out = frame.copy()
    out[label.column] = np.where(out[label.column] == 1, label.positive, negative)
    if isinstance(label.positive, int) and isinstance(negative, int):
        out[label.column] = out[label.column].astype("int64")
    return out
