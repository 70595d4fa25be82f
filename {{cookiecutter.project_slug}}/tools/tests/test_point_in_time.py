"""The reference point-in-time join (tools/point_in_time.py) never leaks the future."""

from __future__ import annotations

import pandas as pd

from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.features import build_labels

from tools.point_in_time import point_in_time_join


def test_join_keeps_every_label_with_its_own_features(
    tiny_raw: pd.DataFrame, tiny_features: pd.DataFrame, contract: DatasetContract
) -> None:
    labels = build_labels(tiny_raw, contract)
    joined = point_in_time_join(labels, tiny_features, contract)
    assert len(joined) == len(tiny_raw)
    assert joined[contract.feature_columns].notna().all().all()
    order = [contract.timestamp, contract.entity.key]  # the join's row order
    expected = tiny_features.sort_values(order, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(joined[expected.columns], expected)
    label = contract.label.column
    want = labels.sort_values(order, kind="stable")[label].to_numpy()
    assert (joined[label].to_numpy() == want).all()


def test_no_feature_value_from_after_the_label_time_leaks_in(
    tiny_raw: pd.DataFrame, tiny_features: pd.DataFrame, contract: DatasetContract
) -> None:
    key, stamp = contract.entity.key, contract.timestamp
    column = next(iter(contract.numeric))
    row = build_labels(tiny_raw, contract).iloc[[0]]
    entity, when = row[key].iloc[0], row[stamp].iloc[0]
    # A later feature row for the same entity, with an unmistakable value.
    future = tiny_features[tiny_features[key] == entity].head(1).copy()
    future[stamp] = when + pd.Timedelta(hours=1)
    future[column] = 999_999.0
    joined = point_in_time_join(row, pd.concat([tiny_features, future]), contract)
    own = tiny_features[(tiny_features[key] == entity) & (tiny_features[stamp] == when)]
    assert joined[column].iloc[0] != 999_999.0
    assert joined[column].iloc[0] == own[column].iloc[0]


def test_an_older_feature_row_is_used_when_none_is_at_the_label_time(
    tiny_raw: pd.DataFrame, tiny_features: pd.DataFrame, contract: DatasetContract
) -> None:
    key, stamp = contract.entity.key, contract.timestamp
    column = next(iter(contract.numeric))
    row = build_labels(tiny_raw, contract).iloc[[0]]
    entity, when = row[key].iloc[0], row[stamp].iloc[0]
    older = tiny_features[(tiny_features[key] == entity) & (tiny_features[stamp] == when)].copy()
    older[stamp] = when - pd.Timedelta(days=3)
    older[column] = -1.0
    others = tiny_features[tiny_features[key] != entity]
    joined = point_in_time_join(row, pd.concat([others, older]), contract)
    assert len(joined) == 1 and joined[column].iloc[0] == -1.0


def test_label_without_feature_history_is_dropped(
    tiny_raw: pd.DataFrame, tiny_features: pd.DataFrame, contract: DatasetContract
) -> None:
    key = contract.entity.key
    labels = build_labels(tiny_raw, contract).head(3)
    features = tiny_features[tiny_features[key] != labels[key].iloc[0]]
    joined = point_in_time_join(labels, features, contract)
    assert labels[key].iloc[0] not in set(joined[key])
    assert set(labels[key].iloc[1:]) <= set(joined[key])
