from __future__ import annotations

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.features import FEATURE_COLUMNS, build_features, build_labels


def test_features_have_the_model_columns_and_no_gaps(tiny_raw: pd.DataFrame) -> None:
    features = build_features(tiny_raw)
    assert list(features.columns) == ["customer_id", "event_timestamp", *FEATURE_COLUMNS]
    values = features[FEATURE_COLUMNS].to_numpy()
    assert np.isfinite(values).all()
    assert len(features) == len(tiny_raw)


def test_missing_usage_is_flagged_and_filled(tiny_raw: pd.DataFrame) -> None:
    raw = tiny_raw.head(5).copy()
    raw.loc[raw.index[0], "usage_gb_30d"] = np.nan
    features = build_features(raw)
    assert features.loc[0, "usage_missing"] == 1.0
    assert features.loc[0, "usage_gb_30d"] == 0.0
    assert (features.loc[1:, "usage_missing"] == 0.0).all()


def test_one_hot_columns_sum_to_one_and_unseen_category_is_all_zero(tiny_raw: pd.DataFrame) -> None:
    raw = tiny_raw.head(3).copy()
    raw.loc[raw.index[0], "contract"] = "weekly"  # never seen in training
    features = build_features(raw)
    contract_cols = [c for c in FEATURE_COLUMNS if c.startswith("contract_")]
    sums = features[contract_cols].sum(axis=1).to_numpy()
    assert sums.tolist() == [0.0, 1.0, 1.0]


def test_features_are_row_wise(tiny_raw: pd.DataFrame) -> None:
    whole = build_features(tiny_raw)
    part = build_features(tiny_raw.iloc[100:110])
    pd.testing.assert_frame_equal(whole.iloc[100:110].reset_index(drop=True), part)


def test_labels_carry_the_slice_column(tiny_raw: pd.DataFrame) -> None:
    labels = build_labels(tiny_raw, "segment")
    assert list(labels.columns) == ["customer_id", "event_timestamp", "churned", "segment"]
