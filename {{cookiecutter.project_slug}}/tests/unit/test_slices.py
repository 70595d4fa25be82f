"""Slices of the evaluated rows: columns, quantile bins of numeric columns, crosses of two;
their metrics (null where a slice cannot define one) and the largest gaps between them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_frame
from {{ cookiecutter.package_name }}.metrics import evaluate, write_reports
from {{ cookiecutter.package_name }}.slices import (
    CROSS,
    MISSING_SLICE,
    binned,
    largest_gap,
    slice_metrics,
    slice_rows,
)

from conftest import training_frame


def sliced(contract: DatasetContract, bins: int = 4) -> DatasetContract:
    """`contract` with its first numeric column binned and crossed with its first slice."""
    numeric = next(iter(contract.numeric))
    crosses = [[contract.slices[0], numeric]] if contract.slices else []
    return DatasetContract.model_validate(
        {
            **contract.model_dump(),
            "slice_bins": {numeric: bins},
            "slice_crosses": crosses,
        }
    )


def rows_of(contract: DatasetContract, tiny_window, seed: int = 0) -> pd.DataFrame:
    raw = contract_frame(contract, tiny_window.dates()[:2], 300, seed=seed)
    return training_frame(raw, contract).reset_index(drop=True)


def test_quantile_bins_are_named_by_their_bounds_in_order() -> None:
    values = pd.Series([1.0, 2, 3, 4, 5, 6, 7, 8, None])
    names, order = binned(values, 4)
    assert order == ["[1, 3)", "[3, 5)", "[5, 7)", "[7, 8]", MISSING_SLICE]
    assert names.tolist() == [
        "[1, 3)", "[1, 3)", "[3, 5)", "[3, 5)", "[5, 7)", "[5, 7)", "[7, 8]", "[7, 8]",
        MISSING_SLICE,
    ]  # fmt: skip
    ties = binned(pd.Series([0.0] * 8 + [5.0, 9.0]), 4)  # tied quantiles merge bins
    assert ties[1] == ["[0, 9]", MISSING_SLICE]
    assert binned(pd.Series([3.0, 3.0]), 4)[0].tolist() == ["[3, 3]", "[3, 3]"]


def test_bins_and_crosses_split_every_row_for_any_contract(any_contract, tiny_window) -> None:
    if not any_contract.numeric:
        pytest.skip("the contract has no numeric column to bin")
    contract = sliced(any_contract)
    frame = rows_of(contract, tiny_window)
    slicing = slice_rows(frame, contract)
    numeric = next(iter(contract.numeric))
    assert list(slicing.dimensions) == [
        *contract.slices,
        numeric,
        *(f"{a} x {b}" for a, b in contract.slice_crosses),
    ]
    for dimension, names in slicing.dimensions.items():
        positions = np.concatenate([slicing.indices[n] for n in names])
        assert sorted(positions) == list(range(len(frame))), dimension
    bins = slicing.dimensions[numeric]
    assert all(n.startswith(f"{numeric}=[") for n in bins)
    assert 2 <= len(bins) <= 4
    lower = [float(n.split("[")[1].split(",")[0]) for n in bins if MISSING_SLICE not in n]
    assert lower == sorted(lower)  # in the order of the values, not of the text
    if contract.slice_crosses:
        first = contract.slices[0]
        crossed = slicing.dimensions[f"{first} x {numeric}"]
        assert all(n.startswith(f"{first}=") and f"{CROSS}{numeric}=[" in n for n in crossed)
        name = crossed[0]
        value = name.split(CROSS)[0].removeprefix(f"{first}=")
        expected = frame[first].astype(str) == value
        assert len(slicing.indices[name]) <= expected.sum()


def test_a_nullable_numeric_column_bins_its_missing_rows_apart(tiny_window) -> None:
    contract = DatasetContract.model_validate(
        {
            "entity": {"name": "loan", "key": "loan_ref", "dtype": "string"},
            "timestamp": "observed_at",
            "label": {"column": "defaulted"},
            "numeric": {"utilisation": {"nullable": True}},
            "slice_bins": {"utilisation": 3},
        }
    )
    frame = rows_of(contract, tiny_window)
    missing = frame["utilisation_missing"] == 1
    assert missing.any() and (frame.loc[missing, "utilisation"] == 0).all()
    slicing = slice_rows(frame, contract)
    assert len(slicing.indices[f"utilisation={MISSING_SLICE}"]) == missing.sum()


def test_slice_metrics_on_a_known_example() -> None:
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    scores = np.array([0.9, 0.2, 0.7, 0.1, 0.8, 0.3, 0.2, 0.1])
    # at 0.5: TP 0,4; FN 1; FP 2 -> 2 errors in a, none in b; b has no positives
    indices = {"a": np.array([0, 1, 2, 3]), "b": np.array([5, 6, 7]), "c": np.array([4])}
    metrics = slice_metrics(y, scores, 0.5, indices)
    a = metrics["a"]
    assert a["rows"] == 4 and a["positive_rate"] == 0.5
    assert a["recall"] == 0.5 and a["fpr"] == 0.5 and a["precision"] == 0.5
    assert a["roc_auc"] == pytest.approx(0.75)
    assert a["error_share"] == 1.0  # both errors of all rows are in a
    b = metrics["b"]  # negatives only: no ROC AUC, no recall; nothing flagged
    assert b["roc_auc"] is None and b["pr_auc"] is None and b["recall"] is None
    assert b["fpr"] == 0.0 and b["precision"] is None and b["error_share"] == 0.0
    assert metrics["c"]["fpr"] is None and metrics["c"]["recall"] == 1.0


def test_the_largest_gap_is_within_a_dimension_among_large_enough_slices() -> None:
    slices = {
        "r=a": {"rows": 300.0, "recall": 0.9},
        "r=b": {"rows": 300.0, "recall": 0.6},
        "r=c": {"rows": 10.0, "recall": 0.0},  # too few rows
        "t=x": {"rows": 500.0, "recall": 0.7},
        "t=y": {"rows": 100.0, "recall": None},  # undefined
        "t=z": {"rows": 500.0, "recall": 0.65},
    }
    dimensions = {"r": ["r=a", "r=b", "r=c"], "t": ["t=x", "t=y", "t=z"]}
    gap = largest_gap(slices, dimensions, "recall", min_rows=50)
    assert gap == {
        "gap": pytest.approx(0.3),
        "dimension": "r",
        "lowest": "r=b",
        "low": 0.6,
        "highest": "r=a",
        "high": 0.9,
    }
    assert largest_gap(slices, dimensions, "recall", min_rows=5)["lowest"] == "r=c"
    assert largest_gap(slices, dimensions, "recall", min_rows=400)["dimension"] == "t"
    assert largest_gap(slices, dimensions, "recall", min_rows=600) is None


def test_evaluate_reports_gaps_and_writes_nulls(contract, tiny_window, tmp_path: Path) -> None:
    if not (contract.numeric and contract.slices):
        pytest.skip("the contract has no numeric or no slice column to bin and cross")
    contract = sliced(contract)
    test = rows_of(contract, tiny_window, seed=1)
    y = test[contract.label.column].to_numpy()
    scores = np.clip(0.3 * y + np.random.default_rng(0).random(len(y)) * 0.7, 0, 1)
    first = contract.slices[0]
    only = test[first].astype(str) == test[first].astype(str).iloc[0]
    y_one = np.where(only, 0, y)  # one slice without positives: undefined metrics
    test[contract.label.column] = y_one
    result = evaluate(test, scores, 0.5, 0.5, {}, contract, min_slice_rows=20)
    metrics_file = write_reports(result, tmp_path)["metrics"]
    written = json.loads((tmp_path / "slice_metrics.json").read_text())
    metrics = json.loads(metrics_file.read_text())
    assert set(written) == {"slices", "dimensions", "gaps", "min_slice_rows"}
    for metric in ("recall", "fpr"):
        gap = written["gaps"][metric]
        assert metrics[f"slice_{metric}_gap"] == pytest.approx(gap["gap"])
        low, high = written["slices"][gap["lowest"]], written["slices"][gap["highest"]]
        assert gap["gap"] == pytest.approx(high[metric] - low[metric])
        assert min(low["rows"], high["rows"]) >= 20
    weak = f"{first}={test[first].astype(str).iloc[0]}"
    assert written["slices"][weak]["recall"] is None  # null, not NaN
    assert written["slices"][weak]["roc_auc"] is None
    assert "NaN" not in (tmp_path / "slice_metrics.json").read_text()
    errors = sum(written["slices"][n]["error_share"] for n in written["dimensions"][first])
    assert errors == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (
            {"slice_bins": {"no_such": 4}},
            "slice_bins names 'no_such', which is not a dataset.numeric",
        ),
        ({"slice_bins": {"NUMERIC": 1}}, r"slice_bins.NUMERIC: 1 bins; use 2 to 20"),
        ({"slice_crosses": [["SLICE"]]}, "cross two different columns"),
        ({"slice_crosses": [["SLICE", "SLICE"]]}, "cross two different columns"),
        (
            {"slice_crosses": [["SLICE", "nowhere"]]},
            r"names \['nowhere'\], neither in dataset.slices",
        ),
        (
            {
                "slice_bins": {"NUMERIC": 3},
                "slice_crosses": [["SLICE", "NUMERIC"], ["NUMERIC", "SLICE"]],
            },
            "lists .* twice",
        ),
    ],
)
def test_slicing_is_checked_against_the_contract(any_contract, update, message) -> None:
    if not (any_contract.numeric and any_contract.slices):
        pytest.skip("the contract has no numeric or no slice column to bin and cross")
    numeric, first = next(iter(any_contract.numeric)), any_contract.slices[0]

    def named(value):
        text = json.dumps(value).replace("NUMERIC", numeric).replace("SLICE", first)
        return json.loads(text)

    declared = {**any_contract.model_dump(), **{k: named(v) for k, v in update.items()}}
    with pytest.raises(ValueError, match=named(message)):
        DatasetContract.model_validate(declared)
