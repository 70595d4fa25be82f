"""Slices: groups of the evaluated rows, their metrics and the largest gaps between them.

The dataset contract declares them (params.yaml `dataset`):

- `slices: [segment, region]`: every value of each column is a slice;
- `slice_bins: {tenure_months: 4}`: a numeric column cut into this many quantile bins of
  the evaluated rows (equal row counts as far as ties allow), each bin a slice named by
  its bounds, `tenure_months=[12, 30)` (the last bin is closed);
- `slice_crosses: [[segment, region]]`: each pair of those columns' combined values,
  `segment=consumer & region=north`.

Each column, binned column and cross is a *dimension*; its slices split all the rows.
A slice is named by its value alone when the contract has one dimension, a plain
column (`north`), else `column=value`; a missing value is the slice `(missing)`.

Per slice (SLICE_METRICS): rows, positive rate, ROC AUC and PR AUC, and at the model's
threshold precision, recall, F1, the false-positive rate and the slice's share of all
errors (false positives + false negatives). A metric the slice cannot define (one class
only: no ROC AUC; no positives: no recall; no negatives: no FPR) is None (null in JSON).

The gap of a metric (GAP_METRICS: recall, fpr) is the largest difference between two
slices of one dimension, among slices of at least `min_rows` rows (evaluate.min_slice_rows
for reports/metrics.json, promote.min_slice_rows for the promotion gate): few rows make
a noisy recall, and a gap between two noisy numbers says little.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from .contract import DatasetContract
from .errors import StageInputError

MISSING_SLICE = "(missing)"
SLICE_METRICS = (
    "rows", "positive_rate", "roc_auc", "pr_auc", "precision", "recall", "f1", "fpr",
    "error_share",
)  # fmt: skip
GAP_METRICS = ("recall", "fpr")
CROSS = " & "


@dataclass(frozen=True)
class Slicing:
    """Row positions of every slice, and the slices of each dimension (in order)."""

    indices: dict[str, np.ndarray]
    dimensions: dict[str, list[str]]


def _value_name(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING_SLICE
    if isinstance(value, float) and value.is_integer():  # integer codes read back as float
        return str(int(value))
    return str(value)


def _bound(value: float) -> str:
    return f"{value:.4g}"


def _bin_labels(edges: np.ndarray) -> list[str]:
    if len(edges) == 1:  # one distinct value
        return [f"[{_bound(edges[0])}, {_bound(edges[0])}]"]
    labels = [f"[{_bound(lo)}, {_bound(hi)})" for lo, hi in itertools.pairwise(edges)]
    return [*labels[:-1], labels[-1][:-1] + "]"]


def binned(values: pd.Series, bins: int) -> tuple[pd.Series, list[str]]:
    """`values` cut into `bins` quantile bins (ties merge bins), named by their bounds:
    `[a, b)`, the last `[a, b]`, with bounds taken from the values (integers stay
    integers); missing values are MISSING_SLICE. Also the names in order."""
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    known = numbers.dropna().to_numpy()
    names = pd.Series(MISSING_SLICE, index=values.index, dtype=object)
    if not len(known):
        return names, [MISSING_SLICE]
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1), method="higher"))
    labels = _bin_labels(edges)
    position = np.searchsorted(edges[1:-1], numbers.to_numpy(), side="right")
    mask = numbers.notna().to_numpy()
    names[mask] = [labels[i] for i in position[mask]]
    return names, [*labels, MISSING_SLICE]


def _column_values(
    frame: pd.DataFrame, contract: DatasetContract, column: str
) -> tuple[pd.Series, list[str]]:
    """A dimension's column as slice value names (binned for slice_bins), and their order."""
    if column not in frame.columns:
        raise StageInputError(
            f"slice column {column!r} (params.yaml: dataset.slices, dataset.slice_bins) is "
            "not in the rows: re-run the training_set stage, or fix the dataset contract"
        )
    if column not in contract.slice_bins:
        names = frame[column].astype(object).map(_value_name)
        return names, sorted(names.unique())
    values = frame[column]
    flag = f"{column}_missing"  # a nullable numeric feature reads 0 where its flag is 1
    if flag in frame.columns:
        values = values.where(frame[flag].to_numpy() != 1)
    return binned(values, contract.slice_bins[column])


def slice_rows(frame: pd.DataFrame, contract: DatasetContract) -> Slicing:
    """Every slice of `frame` the contract declares (see the module docstring)."""
    columns = [*contract.slices, *contract.slice_bins]
    bare = len(columns) == 1 and not contract.slice_crosses and not contract.slice_bins
    groups: dict[str, tuple[pd.Series, list[str]]] = {}
    for column in columns:
        names, order = _column_values(frame, contract, column)
        prefix = "" if bare else f"{column}="
        groups[column] = (prefix + names, [prefix + n for n in order])
    for first, second in contract.slice_crosses:
        (one, one_order), (two, two_order) = groups[first], groups[second]
        order = [a + CROSS + b for a in one_order for b in two_order]
        groups[f"{first} x {second}"] = (one + CROSS + two, order)
    indices: dict[str, np.ndarray] = {}
    dimensions: dict[str, list[str]] = {}
    for dimension, (names, order) in groups.items():
        found = names.groupby(names.to_numpy(), sort=False).indices
        dimensions[dimension] = [n for n in order if n in found]
        indices.update({n: found[n] for n in dimensions[dimension]})
    return Slicing(indices, dimensions)


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def one_slice(
    y: np.ndarray, scores: np.ndarray, predicted: np.ndarray, all_errors: int
) -> dict[str, float | None]:
    """SLICE_METRICS of one slice's rows (None where the slice cannot define a metric)."""
    positives, rows = int(y.sum()), len(y)
    tp = int((predicted & (y == 1)).sum())
    fp = int((predicted & (y == 0)).sum())
    fn = positives - tp
    two_classes = 0 < positives < rows
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, positives)
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "rows": float(rows),
        "positive_rate": positives / rows if rows else None,
        "roc_auc": float(skm.roc_auc_score(y, scores)) if two_classes else None,
        "pr_auc": float(skm.average_precision_score(y, scores)) if two_classes else None,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fpr": _ratio(fp, rows - positives),
        "error_share": _ratio(fp + fn, all_errors),
    }


def slice_metrics(
    y: np.ndarray, scores: np.ndarray, threshold: float, indices: dict[str, np.ndarray]
) -> dict[str, dict[str, float | None]]:
    """SLICE_METRICS of every slice (`indices`: Slicing.indices of the rows)."""
    y = np.asarray(y).astype(np.int64)
    predicted = np.asarray(scores) >= threshold
    all_errors = int((predicted != (y == 1)).sum())
    return {
        name: one_slice(y[idx], np.asarray(scores)[idx], predicted[idx], all_errors)
        for name, idx in indices.items()
    }


def number(value: Any) -> float:
    """A slice metric as a float: None (undefined) is NaN."""
    return math.nan if value is None else float(value)


def largest_gap(
    slices: dict[str, dict[str, Any]],
    dimensions: dict[str, list[str]],
    metric: str,
    min_rows: int,
) -> dict[str, Any] | None:
    """The largest difference of `metric` between two slices of one dimension, among
    slices of `min_rows` rows or more where it is defined: the gap, the dimension, the
    lowest and the highest slice and their values. None when no dimension has two such
    slices. No dimensions given: all slices are one."""
    best: dict[str, Any] | None = None
    for dimension, names in (dimensions or {"slices": list(slices)}).items():
        values = {
            n: number(slices[n].get(metric))
            for n in names
            if n in slices and number(slices[n].get("rows")) >= min_rows
        }
        values = {n: v for n, v in values.items() if not math.isnan(v)}
        if len(values) < 2:
            continue
        low, high = min(values, key=values.__getitem__), max(values, key=values.__getitem__)
        gap = values[high] - values[low]
        if best is None or gap > best["gap"]:
            best = {
                "gap": gap,
                "dimension": dimension,
                "lowest": low,
                "low": values[low],
                "highest": high,
                "high": values[high],
            }
    return best


def slice_gaps(
    slices: dict[str, dict[str, Any]], dimensions: dict[str, list[str]], min_rows: int
) -> dict[str, dict[str, Any] | None]:
    """largest_gap of each GAP_METRICS metric."""
    return {m: largest_gap(slices, dimensions, m, min_rows) for m in GAP_METRICS}


def json_ready(value: Any) -> Any:
    """`value` with NaN and infinities as None (JSON null), recursively."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
