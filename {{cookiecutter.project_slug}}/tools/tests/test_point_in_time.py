"""The reference point-in-time join (tools/point_in_time.py) never leaks the future."""

from __future__ import annotations

import pandas as pd

from {{ cookiecutter.package_name }}.features import FEATURE_COLUMNS, build_features, build_labels
from tools.point_in_time import point_in_time_join


def test_join_keeps_every_label_with_its_own_features(tiny_raw: pd.DataFrame) -> None:
    joined = point_in_time_join(build_labels(tiny_raw), build_features(tiny_raw))
    assert len(joined) == len(tiny_raw)
    assert joined[FEATURE_COLUMNS].notna().all().all()


def test_no_feature_value_from_after_the_label_time_leaks_in(tiny_raw: pd.DataFrame) -> None:
    features = build_features(tiny_raw)
    labels = build_labels(tiny_raw)
    row = labels.iloc[[0]]
    customer, when = row["customer_id"].iloc[0], row["event_timestamp"].iloc[0]
    # A later feature row for the same customer, with an unmistakable value.
    future = features[features["customer_id"] == customer].head(1).copy()
    future["event_timestamp"] = when + pd.Timedelta(hours=1)
    future["monthly_charges"] = 999_999.0
    joined = point_in_time_join(row, pd.concat([features, future], ignore_index=True))
    assert joined["monthly_charges"].iloc[0] != 999_999.0
    own = features[(features["customer_id"] == customer) & (features["event_timestamp"] == when)]
    assert joined["monthly_charges"].iloc[0] == own["monthly_charges"].iloc[0]


def test_label_without_feature_history_is_dropped(tiny_raw: pd.DataFrame) -> None:
    labels = build_labels(tiny_raw).head(3)
    features = build_features(tiny_raw)
    features = features[features["customer_id"] != labels["customer_id"].iloc[0]]
    joined = point_in_time_join(labels, features)
    assert labels["customer_id"].iloc[0] not in set(joined["customer_id"])
