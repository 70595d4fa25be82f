"""Model features and labels, derived from the dataset contract (params.yaml `dataset`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.contract import CategoricalSpec, DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_frame
from {{ cookiecutter.package_name }}.derived import DERIVED, compute_derived
from {{ cookiecutter.package_name }}.features import build_features, build_labels

from other_contracts import LOAN

OTHER = LOAN  # a string key, other names, a nullable categorical, integer codes


def rows(contract: DatasetContract, tiny_window, n: int = 50) -> pd.DataFrame:
    return contract_frame(contract, tiny_window.dates()[:2], n, seed=3)


def test_features_have_the_contract_columns_and_no_gaps(any_contract, tiny_window) -> None:
    raw = rows(any_contract, tiny_window)
    features = build_features(raw, any_contract)
    keys = [any_contract.entity.key, any_contract.timestamp]
    assert list(features.columns) == [*keys, *any_contract.feature_columns]
    assert np.isfinite(features[any_contract.feature_columns].to_numpy()).all()
    assert len(features) == len(raw)
    pd.testing.assert_frame_equal(features[keys], raw[keys])


def with_a_nullable_numeric(contract: DatasetContract) -> DatasetContract:
    """`contract`, its first numeric column made nullable unless one already is."""
    if contract.missing_flags:
        return contract
    first = next(iter(contract.numeric))
    numeric = {
        **contract.numeric,
        first: contract.numeric[first].model_copy(update={"nullable": True}),
    }
    return contract.model_copy(update={"numeric": numeric})


def test_nullable_numeric_columns_are_flagged_and_filled(any_contract, tiny_window) -> None:
    contract = with_a_nullable_numeric(any_contract)
    raw = rows(contract, tiny_window).head(5).copy()
    flag, column = next(iter(contract.missing_flags.items()))
    raw[column] = [np.nan, 1.5, 2.0, 3.0, 4.0]
    features = build_features(raw, contract)
    assert features[flag].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert features[column].tolist() == [0.0, 1.5, 2.0, 3.0, 4.0]


def test_one_hot_groups_sum_to_one_and_unseen_or_null_is_all_zero(
    any_contract, tiny_window
) -> None:
    raw = rows(any_contract, tiny_window).head(4).copy()
    column, group = next(iter(any_contract.one_hot_groups.items()))
    values = any_contract.categorical[column].values
    raw[column] = pd.Series([values[0], values[-1], "never-seen", None], dtype=object)
    features = build_features(raw, any_contract)
    assert features[group].sum(axis=1).tolist() == [1.0, 1.0, 0.0, 0.0]
    assert features.loc[0, group[0]] == 1.0 and features.loc[1, group[-1]] == 1.0


def test_one_hot_names_are_identifiers(contract: DatasetContract) -> None:
    assert OTHER.one_hot_columns("region") == ["region_1", "region_2", "region_3"]
    spaced = contract.model_copy(
        update={"categorical": {"kind": CategoricalSpec(values=["south-east", "n/a"])}}
    )
    assert spaced.one_hot_columns("kind") == ["kind_south_east", "kind_n_a"]


def test_features_are_row_wise(contract: DatasetContract, tiny_raw: pd.DataFrame) -> None:
    whole = build_features(tiny_raw, contract)
    part = build_features(tiny_raw.iloc[100:110], contract)
    pd.testing.assert_frame_equal(whole.iloc[100:110].reset_index(drop=True), part)


def test_derived_features_are_computed_by_their_registered_function(
    contract: DatasetContract, tiny_raw: pd.DataFrame
) -> None:
    features = build_features(tiny_raw, contract)
    for name in contract.derived:
        inputs = tiny_raw[list(DERIVED[name].inputs)].astype("float64")
        expected = compute_derived([name], inputs)[name]
        np.testing.assert_allclose(features[name].to_numpy(), expected.to_numpy())


def test_a_missing_declared_column_is_named(any_contract, tiny_window) -> None:
    column = next(iter(any_contract.numeric))
    raw = rows(any_contract, tiny_window).drop(columns=[column])
    with pytest.raises(ValueError, match=column):
        build_features(raw, any_contract)


def test_labels_carry_key_timestamp_label_and_slices(any_contract, tiny_window) -> None:
    labels = build_labels(rows(any_contract, tiny_window), any_contract)
    expected = [any_contract.entity.key, any_contract.timestamp, any_contract.label.column]
    expected += [c for c in any_contract.slices if c not in expected]
    assert list(labels.columns) == expected
    assert set(labels[any_contract.label.column].unique()) <= {0, 1}
