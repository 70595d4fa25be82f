"""`dataset init`: bring your own table. Profile the whole file, then write the
dataset contract, the source and window settings, and every gate's suite.

What it infers (and prints for review): the entity key's type; the label's
positive value; each other column's role (numeric, or categorical with the
vocabulary it shows: text and booleans always, integers when named with
--categorical); which columns are nullable; a slice column; the window (the
trailing run of days that all have rows), the split and the raw gate's rows per
day, relative to what the table holds.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pandas.api import types as ptypes

from .contract import DatasetContract
from .errors import StageInputError
from .sources import to_utc

MAX_CATEGORIES = 50  # more distinct values than this: not a category (drop or encode it)
MAX_SLICE_VALUES = 10  # the default slice column has at most this many values
SOURCE_DIR = Path("data/source")


@dataclass
class Inferred:
    """What `infer` read from the table: the contract, the window and what to review."""

    contract: DatasetContract
    end_date: dt.date
    window_days: int
    daily_rows: tuple[int, int, int]  # min, median, max rows per day in the window
    positive_rate: float
    slice_rate: float | None = None  # the highest positive rate of a slice (10+ rows)
    review: list[str] = field(default_factory=list)


def read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise StageInputError(f"{path} not found: give the CSV or parquet file of your table")
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if ".parquet" in suffixes or ".pq" in suffixes:
            return pd.read_parquet(path)
        if ".csv" in suffixes:
            return pd.read_csv(path, low_memory=False)
    except (OSError, ValueError) as exc:
        raise StageInputError(f"cannot read {path}: {exc}") from exc
    raise StageInputError(f"{path}: expected a .csv or .parquet file")


def _require(table: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise StageInputError(
            f"{what} {missing} not in the table; its columns are {', '.join(map(str, table.columns))}"
        )


def _entity_dtype(values: pd.Series, key: str) -> str:
    if values.isna().any():
        raise StageInputError(f"the entity key {key} has {int(values.isna().sum())} empty values")
    if ptypes.is_integer_dtype(values):
        return "int"
    return "string"


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _label(values: pd.Series, column: str, positive: str | None) -> dict[str, Any]:
    if values.isna().any():
        raise StageInputError(
            f"the label {column} has {int(values.isna().sum())} empty values: leave out rows "
            "whose outcome is not known yet"
        )
    seen = sorted((_plain(v) for v in values.unique()), key=str)
    if len(seen) < 2:
        raise StageInputError(f"the label {column} holds one value only ({seen}): nothing to learn")
    if positive is None:
        if set(seen) <= {0, 1}:
            positive_value: Any = 1
        else:
            raise StageInputError(
                f"the label {column} holds {seen[:10]}: pass --positive with the value that "
                "means positive"
            )
    else:
        matches = [v for v in seen if str(v) == positive]
        if not matches:
            raise StageInputError(
                f"--positive {positive!r} is not a value of {column}: {seen[:10]}"
            )
        positive_value = matches[0]
    if isinstance(positive_value, bool):
        positive_value = str(positive_value)
    negative = [str(v) if isinstance(v, bool) else v for v in seen if v != positive_value]
    return {"column": column, "positive": positive_value, "negative": negative}


def _feature_roles(
    table: pd.DataFrame, columns: list[str], categorical: set[str]
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    numeric: dict[str, Any] = {}
    categories: dict[str, Any] = {}
    review: list[str] = []
    for column in columns:
        values = table[column]
        nullable = bool(values.isna().any())
        is_number = ptypes.is_numeric_dtype(values) and not ptypes.is_bool_dtype(values)
        if is_number and column not in categorical:
            numeric[column] = {"nullable": nullable}
            distinct = values.nunique()
            if ptypes.is_integer_dtype(values.dropna()) and distinct <= 10:
                review.append(
                    f"{column}: numeric with {distinct} distinct values; if they are codes, "
                    f"run again with --categorical {column}"
                )
            continue
        present = values.dropna()
        vocab = sorted({_plain(v) for v in present.unique()}, key=lambda v: (str(type(v)), v))
        if len(vocab) > MAX_CATEGORIES:
            raise StageInputError(
                f"column {column} has {len(vocab)} distinct values, too many for a category "
                f"(at most {MAX_CATEGORIES}): pass --drop {column}, or encode it upstream"
            )
        if ptypes.is_float_dtype(present) and all(float(v).is_integer() for v in vocab):
            vocab = [int(v) for v in vocab]  # integer codes read as floats around empty cells
        if ptypes.is_bool_dtype(present) or ptypes.is_object_dtype(present):
            vocab = sorted({str(v) for v in vocab})
        categories[column] = {"values": vocab, "nullable": nullable}
    return numeric, categories, review


def _window(stamps: pd.Series) -> tuple[dt.date, int, tuple[int, int, int], list[str]]:
    counts = stamps.dt.date.value_counts()
    end = max(counts.index)
    days = 0
    while end - dt.timedelta(days=days) in counts.index:
        days += 1
    review = []
    first = min(counts.index)
    if end - dt.timedelta(days=days - 1) > first:
        gap = end - dt.timedelta(days=days)
        review.append(
            f"the window starts {end - dt.timedelta(days=days - 1)}: {gap} has no rows, so the "
            f"{int(counts[counts.index < gap].sum())} rows from {first} on are left out"
        )
    window = counts[[end - dt.timedelta(days=i) for i in range(days)]]
    return end, days, (int(window.min()), int(window.median()), int(window.max())), review


def infer(
    table: pd.DataFrame,
    entity: str,
    timestamp: str,
    label: str,
    positive: str | None = None,
    categorical: list[str] | None = None,
    drop: list[str] | None = None,
    slices: list[str] | None = None,
    entity_name: str | None = None,
    horizon_days: int = 0,
) -> Inferred:
    """The contract and window settings that `table` supports (nothing is written)."""
    if table.empty:
        raise StageInputError("the table has no rows")
    _require(table, [entity, timestamp, label], "the named columns")
    _require(table, [*(categorical or []), *(drop or []), *(slices or [])], "the columns")
    table = table.copy()
    table[timestamp] = to_utc(table[timestamp], "dataset init", timestamp)
    if table[timestamp].isna().any():
        raise StageInputError(f"{int(table[timestamp].isna().sum())} rows have no {timestamp}")
    features = [c for c in table.columns if c not in {entity, timestamp, label, *(drop or [])}]
    numeric, categories, review = _feature_roles(table, features, set(categorical or []))
    if slices is None:
        slices = [
            c for c, spec in categories.items() if 2 <= len(spec["values"]) <= MAX_SLICE_VALUES
        ][:1]
        review.append(f"slices: {slices or 'none'} (pass --slices to choose)")
    declared = {
        "entity": {
            "name": entity_name or entity.removesuffix("_id").removesuffix("_key") or "entity",
            "key": entity,
            "dtype": _entity_dtype(table[entity], entity),
        },
        "timestamp": timestamp,
        "label": {**_label(table[label], label, positive), "horizon_days": horizon_days},
        "numeric": numeric,
        "categorical": categories,
        "slices": slices,
        "derived": [],
        "ignored": list(drop or []),
    }
    try:
        contract = DatasetContract.model_validate(declared)
    except ValueError as exc:
        raise StageInputError(f"the table does not make a valid contract: {exc}") from exc
    return summarise(contract, contract.conform(table, "dataset init"), review)


def summarise(
    contract: DatasetContract, conformed: pd.DataFrame, review: list[str] | None = None
) -> Inferred:
    """What `settings` follows from in rows conformed to `contract` (UTC timestamps): the
    window of days, rows per day, the positive rate and the highest slice rate."""
    end, days, daily, window_review = _window(conformed[contract.timestamp])
    label = contract.label.column
    rate = float(conformed[label].mean())
    slice_rates = [
        float(group.mean())
        for column in contract.slices
        for _, group in conformed.groupby(column)[label]
        if len(group) >= 10
    ]
    top = max(slice_rates, default=None)
    return Inferred(contract, end, days, daily, rate, top, [*(review or []), *window_review])


def _tenth_of_the_way(rate: float) -> float:
    """A lift over `rate` a tenth of the way from chance to a perfect score (at most 2)."""
    return round(min(2.0, 1.0 + 0.1 * (1.0 / max(rate, 1e-6) - 1.0)), 2)


def _drift_tests(current_rows: int) -> dict[str, Any]:
    """Below 1,000 current rows, distances (wasserstein, Jensen-Shannon) exceed their
    thresholds by sampling noise alone: judge drift by tests with p-values instead
    (Evidently's own choice for small samples)."""
    if current_rows >= 1000:
        return {}
    return {
        "num_stattest": "ks",
        "num_threshold": 0.05,
        "cat_stattest": "chisquare",
        "cat_threshold": 0.05,
        "score_stattest": "ks",
        "score_threshold": 0.05,
    }


def settings(inferred: Inferred) -> dict[str, dict[str, Any]]:
    """The params.yaml keys beside the contract that follow from the table."""
    low, median, high = inferred.daily_rows
    matured = inferred.window_days - inferred.contract.label.horizon_days
    held_out = max(1, min(7, matured // 6))
    if matured < 2 * held_out + 1:
        raise StageInputError(
            f"the window holds {inferred.window_days} days, {matured} with known labels "
            f"(horizon {inferred.contract.label.horizon_days} days): too few to train, "
            "validate and test on; bring more days"
        )
    # The monitor's current window: 7 days, or more (up to a third of the window) when a
    # week holds fewer than 200 rows, so drift is judged on enough rows.
    current = max(1, min(inferred.window_days // 3, max(7, math.ceil(200 / max(median, 1)))))
    rate = inferred.positive_rate
    # PR AUC and precision floors: a tenth of the way from chance to a perfect score; per
    # slice from the slice with the highest rate (a lift of 1.5 over a rate of 0.7 is > 1).
    lift = _tenth_of_the_way(rate)
    slice_lift = _tenth_of_the_way(inferred.slice_rate or rate)
    return {
        "data": {"window_days": inferred.window_days},
        "validate_raw": {
            "min_rows_per_day": max(1, math.floor(low * 0.5)),
            "max_rows_per_day": max(10, math.ceil(high * 3)),
        },
        "split": {"valid_days": held_out, "test_days": held_out},
        "monitor": {
            "current_days": current,
            "min_rows": max(20, min(200, median * current // 2)),
        },
        "monitor.drift": _drift_tests(median * current),
        "monitor.quality": {"min_labelled_rows": max(20, min(500, median * current // 2))},
        "promote.minimum_lifts": {"pr_auc": lift, "precision": min(1.5, lift)},
        "promote.slice_minimum_lifts": {"pr_auc": slice_lift},
        "promote": {"min_slice_rows": max(10, min(50, median * held_out // 4))},
        # the slice gaps of reports/metrics.json: slices of a quarter of the test rows or more
        "evaluate": {"min_slice_rows": max(10, min(200, median * held_out // 4))},
    }


def place_source(path: Path, root: Path) -> Path:
    """The table's path under data/source/ (copied there unless it is already inside)."""
    target_dir = root / SOURCE_DIR
    resolved = path.resolve()
    if resolved.is_relative_to(target_dir.resolve()):
        return resolved.relative_to(root.resolve())
    target_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(resolved, target_dir / path.name)
    return SOURCE_DIR / path.name


def conformed_table(contract: DatasetContract, table: pd.DataFrame) -> pd.DataFrame:
    """The whole table as ingest lands it: conformed, timestamps in UTC."""
    conformed = contract.conform(table, "dataset init")
    conformed[contract.timestamp] = to_utc(
        conformed[contract.timestamp], "dataset init", contract.timestamp
    )
    return conformed


def _mark(name: str, nullable: bool) -> str:
    return f"{name}?" if nullable else name


def describe(inferred: Inferred) -> str:
    """What was inferred, for the terminal, with what to review."""
    c = inferred.contract
    low, median, high = inferred.daily_rows
    numeric = [_mark(k, v.nullable) for k, v in c.numeric.items()]
    categorical = [f"{_mark(k, v.nullable)} ({len(v.values)})" for k, v in c.categorical.items()]
    lines = [
        f"entity      {c.entity.name}: key {c.entity.key} ({c.entity.dtype})",
        f"timestamp   {c.timestamp} (UTC)",
        f"label       {c.label.column}: positive {c.label.positive!r}, negative "
        f"{c.label.negative}, positive rate {inferred.positive_rate:.3f}, "
        f"horizon {c.label.horizon_days} days",
        f"numeric     {', '.join(numeric) or '-'}",
        f"categorical {', '.join(categorical) or '-'}",
        f"slices      {', '.join(c.slices) or '-'}",
        f"window      {inferred.window_days} days ending {inferred.end_date}, "
        f"{low}/{median}/{high} rows a day (min/median/max)",
        f"features    {len(c.feature_columns)} model features ('?': nullable)",
    ]
    if inferred.review:
        lines += ["review:", *(f"  - {note}" for note in inferred.review)]
    return "\n".join(lines)
