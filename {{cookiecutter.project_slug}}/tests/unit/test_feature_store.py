"""Feast for real: point-in-time training sets, materialization, train/serve parity,
on the SQLite online store and on a real Redis server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.feature_store import (
    freshness,
    historical_features,
    materialize,
    online_features,
    open_store,
)
from {{ cookiecutter.package_name }}.features import FEATURE_COLUMNS, build_labels
from tools.point_in_time import point_in_time_join

from conftest import make_feast_repo

# Offline (DuckDB over parquet) and online stores hold float64 values: equal to 1e-9.
TOLERANCE = 1e-9


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def store(request, tmp_path_factory, tiny_features: pd.DataFrame):
    redis = request.getfixturevalue("redis_server") if request.param == "redis" else None
    repo = make_feast_repo(
        tmp_path_factory.mktemp(f"feast-{request.param}"), tiny_features, request.param, redis
    )
    store = open_store(repo)
    assert store.config.online_store.type == request.param
    return store


def test_training_set_from_feast_matches_a_point_in_time_join(
    store, tiny_raw, tiny_features
) -> None:
    labels = build_labels(tiny_raw)
    feast_frame = historical_features(store, labels)
    reference = point_in_time_join(labels, tiny_features)
    assert len(feast_frame) == len(labels)  # DuckDB store keeps every entity row
    pd.testing.assert_frame_equal(
        feast_frame[FEATURE_COLUMNS].reset_index(drop=True),
        reference[FEATURE_COLUMNS].reset_index(drop=True),
        check_dtype=False,
        atol=TOLERANCE,
    )


def test_no_feature_value_from_after_the_label_time_leaks_in(
    tmp_path: Path, tiny_raw, tiny_features
) -> None:
    labels = build_labels(tiny_raw)
    label = labels.iloc[[len(labels) // 2]].reset_index(drop=True)
    customer, when = int(label["customer_id"][0]), label["event_timestamp"][0]
    later = tiny_features[tiny_features["customer_id"] == customer].head(1).copy()
    later["event_timestamp"] = when + pd.Timedelta(minutes=5)
    later["monthly_charges"] = 999_999.0  # written after the label time
    repo = make_feast_repo(tmp_path, pd.concat([tiny_features, later], ignore_index=True), "sqlite")
    row = historical_features(open_store(repo), label)
    assert row["monthly_charges"][0] != 999_999.0
    own = tiny_features[
        (tiny_features["customer_id"] == customer) & (tiny_features["event_timestamp"] == when)
    ]
    assert row["monthly_charges"][0] == pytest.approx(own["monthly_charges"].iloc[0])


def test_online_features_equal_offline_features_column_by_column(store, tiny_features) -> None:
    summary = materialize(store, tiny_features)
    assert summary["rows_in_window"] == len(tiny_features)
    rng = np.random.default_rng(1)
    customers = rng.choice(tiny_features["customer_id"].unique(), 25, replace=False).tolist()
    at = tiny_features["event_timestamp"].max() + pd.Timedelta(seconds=1)
    offline = historical_features(
        store, pd.DataFrame({"customer_id": customers, "event_timestamp": at})
    )
    online, unknown = online_features(store, customers)
    assert unknown == []
    offline = offline.set_index("customer_id").loc[customers]
    online = online.set_index("customer_id").loc[customers]
    for column in FEATURE_COLUMNS:
        np.testing.assert_allclose(online[column], offline[column], atol=TOLERANCE, err_msg=column)


def test_materialization_is_incremental(store, tiny_features) -> None:
    materialize(store, tiny_features)
    again = materialize(store, tiny_features)
    assert again["rows_in_window"] == 0  # nothing newer than the last run


def test_small_chunks_write_every_customers_newest_values(tmp_path: Path, tiny_features) -> None:
    store = open_store(make_feast_repo(tmp_path, tiny_features, "sqlite"))
    summary = materialize(store, tiny_features, chunk_rows=7)
    newest = (
        tiny_features.sort_values("event_timestamp", kind="stable")
        .drop_duplicates("customer_id", keep="last")
        .set_index("customer_id")
    )
    assert summary["customers_written"] == len(newest)
    assert pd.Timestamp(freshness(store)) == pd.Timestamp(summary["materialized_until"])
    online, unknown = online_features(store, newest.index.tolist())
    assert unknown == []
    online = online.set_index("customer_id").loc[newest.index]
    for column in FEATURE_COLUMNS:
        np.testing.assert_allclose(online[column], newest[column], atol=TOLERANCE, err_msg=column)


def test_a_newer_value_replaces_the_online_one(tmp_path: Path, tiny_features) -> None:
    store = open_store(make_feast_repo(tmp_path, tiny_features, "sqlite"))
    materialize(store, tiny_features)
    later = tiny_features.tail(1).copy()
    customer = int(later["customer_id"].iloc[0])
    later["event_timestamp"] = tiny_features["event_timestamp"].max() + pd.Timedelta(hours=1)
    later["monthly_charges"] = 123.25
    summary = materialize(store, pd.concat([tiny_features, later], ignore_index=True))
    assert summary["customers_written"] == 1
    online, _ = online_features(store, [customer])
    assert online["monthly_charges"][0] == pytest.approx(123.25)


def test_unknown_entities_are_reported_not_invented(store, tiny_features) -> None:
    materialize(store, tiny_features)
    known_id = int(tiny_features["customer_id"].iloc[0])
    known, unknown = online_features(store, [known_id, 1, 2])
    assert known["customer_id"].tolist() == [known_id]
    assert unknown == [1, 2]
