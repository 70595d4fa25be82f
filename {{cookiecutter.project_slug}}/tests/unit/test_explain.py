"""explain.py: SHAP values from XGBoost (pred_contribs), for any contract."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from {{ cookiecutter.package_name }}.explain import contributions, explain_rows, mean_abs_shap
from {{ cookiecutter.package_name }}.model import FeatureMismatchError, feature_matrix
from {{ cookiecutter.package_name }}.split import time_split
from {{ cookiecutter.package_name }}.training import train_model

from conftest import training_frame


@pytest.fixture(scope="module")
def trained(any_contract, tiny_window, train_config):
    """A model trained on tiny rows of the project's contract, then of another one."""
    from {{ cookiecutter.package_name }}.config import SplitConfig
    from {{ cookiecutter.package_name }}.contract_rows import contract_frame

    raw = contract_frame(any_contract, tiny_window.dates(), 300, population=2000, seed=11)
    splits = time_split(
        training_frame(raw, any_contract), SplitConfig(valid_days=4, test_days=4), any_contract
    )
    booster, _ = train_model(splits, train_config, any_contract)
    return booster, splits.test, any_contract


def test_shap_values_of_a_prediction_sum_to_its_margin(trained) -> None:
    booster, test, contract = trained
    columns = list(reversed(contract.feature_columns))  # read by name, in any order
    matrix = test[columns].to_numpy(dtype="float64")
    values = contributions(booster, matrix, columns)
    assert values.shape == (len(test), len(booster.feature_names) + 1)
    names = booster.feature_names
    margin = booster.predict(
        xgb.DMatrix(feature_matrix(test, names), feature_names=names), output_margin=True
    )
    # XGBoost's own identity: every feature's contribution plus the bias is the margin
    np.testing.assert_allclose(values.sum(axis=1), margin, rtol=0, atol=1e-4)


def test_an_explanation_names_the_top_features_and_adds_up(trained) -> None:
    booster, test, contract = trained
    columns = contract.feature_columns
    rows = test.head(5)
    matrix = rows[columns].to_numpy(dtype="float64")
    raw = booster.predict(xgb.DMatrix(feature_matrix(rows, columns), feature_names=columns))
    full = contributions(booster, matrix, columns)
    for top in (1, 3, len(columns)):
        explained = explain_rows(booster, matrix, columns, top)
        assert len(explained) == len(rows)
        for row, shap, score, explanation in zip(matrix, full, raw, explained, strict=True):
            parts = explanation["contributions"]
            assert len(parts) == top
            sizes = [abs(c["contribution"]) for c in parts]
            assert sizes == sorted(sizes, reverse=True)
            largest = np.sort(np.abs(shap[:-1]))[::-1][:top]
            np.testing.assert_allclose(sizes, largest, rtol=1e-6)
            for part in parts:
                i = columns.index(part["feature"])
                assert part["contribution"] == pytest.approx(float(shap[i]), abs=1e-9)
                assert part["value"] == (None if np.isnan(row[i]) else pytest.approx(row[i]))
            total = (
                explanation["bias"] + sum(c["contribution"] for c in parts) + explanation["rest"]
            )
            assert total == pytest.approx(explanation["margin"], abs=1e-9)
            assert 1 / (1 + np.exp(-explanation["margin"])) == pytest.approx(float(score), abs=1e-5)
            if top == len(columns):
                assert explanation["rest"] == pytest.approx(0.0, abs=1e-9)
    assert explain_rows(booster, matrix[:0], columns, 3) == []


def test_mean_abs_shap_covers_every_feature_and_samples_when_asked(trained) -> None:
    booster, test, _ = trained
    everything = mean_abs_shap(booster, test)
    assert list(everything) == booster.feature_names
    assert all(v >= 0 for v in everything.values()) and max(everything.values()) > 0
    names = booster.feature_names
    values = contributions(booster, feature_matrix(test, names).astype("float64"), names)
    np.testing.assert_allclose(
        list(everything.values()), np.abs(values[:, :-1]).mean(axis=0), rtol=1e-6
    )
    sampled = mean_abs_shap(booster, test, rows=20, seed=3)
    assert sampled == mean_abs_shap(booster, test, rows=20, seed=3)  # seeded
    assert sampled != everything
    assert set(mean_abs_shap(booster, test.head(0)).values()) == {0.0}


def test_rows_without_a_feature_the_model_reads_are_refused(trained) -> None:
    booster, test, contract = trained
    columns = contract.feature_columns[1:]
    with pytest.raises(FeatureMismatchError, match=contract.feature_columns[0]):
        explain_rows(booster, test[columns].to_numpy(dtype="float64"), columns, 2)
