"""Feast for real: point-in-time training sets, materialization, train/serve parity,
on the SQLite online store and on a real Redis server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.errors import PipelineError
from {{ cookiecutter.package_name }}.feature_store import (
    FEATURE_VIEW,
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
    assert not again["full_rewrite"]
    assert again["customers_verified"] == 200  # the sample read back matched


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


@pytest.fixture(params=["sqlite", "redis"])
def scratch(request, tmp_path: Path, tiny_features: pd.DataFrame) -> tuple[Path, str | None]:
    """A Feast repo of its own (the test changes its definitions or its online store)."""
    redis = request.getfixturevalue("redis_server") if request.param == "redis" else None
    return make_feast_repo(tmp_path, tiny_features, request.param, redis), redis


def newest_rows(features: pd.DataFrame) -> pd.DataFrame:
    return (
        features.sort_values("event_timestamp", kind="stable")
        .drop_duplicates("customer_id", keep="last")
        .set_index("customer_id")
    )


def assert_serving_knows_everyone(store, features: pd.DataFrame) -> None:
    newest = newest_rows(features)
    online, unknown = online_features(store, newest.index.tolist())
    assert unknown == []
    online = online.set_index("customer_id").loc[newest.index]
    for column in FEATURE_COLUMNS:
        np.testing.assert_allclose(online[column], newest[column], atol=TOLERANCE, err_msg=column)


def drop_online_rows(store, redis: str | None, share: float) -> None:
    """Delete `share` of the customers' online rows behind Feast's back."""
    if redis is None:
        path = Path(store.repo_path) / "state" / "online_store.db"
        with sqlite3.connect(path) as conn:
            (table,) = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?",
                (f"%{FEATURE_VIEW}",),
            ).fetchone()
            keys = [k for (k,) in conn.execute(f"SELECT DISTINCT entity_key FROM {table}")]
            doomed = keys[: int(len(keys) * share)]
            conn.executemany(f"DELETE FROM {table} WHERE entity_key = ?", [(k,) for k in doomed])
    else:
        import redis as redis_client

        host, port = redis.split(":")
        client = redis_client.Redis(host=host, port=int(port))
        keys = sorted(client.scan_iter(count=1000))
        doomed = keys[: int(len(keys) * share)]
        if doomed:
            client.delete(*doomed)


def test_a_schema_change_rewrites_the_whole_window(scratch, tiny_features) -> None:
    repo, _ = scratch
    definitions = repo / "definitions.py"
    full = definitions.read_text()
    # Before: the view lacks its last feature (a feature added later).
    definitions.write_text(
        full.replace("for column in FEATURE_COLUMNS]", "for column in FEATURE_COLUMNS[:-1]]")
    )
    first = materialize(open_store(repo), tiny_features, verify_entities=0)
    definitions.write_text(full)
    store = open_store(repo)  # Feast keeps the view's materialization intervals
    assert store.get_feature_view(FEATURE_VIEW).most_recent_end_time is not None
    summary = materialize(store, tiny_features)
    assert summary["schema_fingerprint"] != first["schema_fingerprint"]
    assert summary["full_rewrite"]
    assert summary["rows_in_window"] == len(tiny_features)
    assert summary["customers_written"] == tiny_features["customer_id"].nunique()
    assert_serving_knows_everyone(store, tiny_features)
    again = materialize(open_store(repo), tiny_features)  # the fingerprint was recorded
    assert not again["full_rewrite"] and again["customers_written"] == 0


def test_a_stale_online_table_fails_the_stage_and_the_next_run_repairs_it(
    scratch, tiny_features
) -> None:
    repo, redis = scratch
    store = open_store(repo)
    materialize(store, tiny_features)
    drop_online_rows(store, redis, share=0.3)
    with pytest.raises(PipelineError) as failure:
        materialize(open_store(repo), tiny_features)  # nothing new to write: still verified
    message = str(failure.value)
    assert message.startswith("materialize:")
    assert "of 200 sampled customers" in message and "are unknown online" in message
    assert "dvc repro --force materialize" in message
    store = open_store(repo)
    repaired = materialize(store, tiny_features)  # what `dvc repro --force` runs
    assert repaired["full_rewrite"]
    assert_serving_knows_everyone(store, tiny_features)


def test_values_changed_behind_feasts_back_fail_the_stage(scratch, tiny_features) -> None:
    repo, _ = scratch
    store = open_store(repo)
    materialize(store, tiny_features)
    corrupt = newest_rows(tiny_features).reset_index()
    corrupt["event_timestamp"] += pd.Timedelta(minutes=1)
    corrupt["monthly_charges"] = -1.0
    store.write_to_online_store(FEATURE_VIEW, corrupt, transform_on_write=False)
    with pytest.raises(PipelineError, match=r"0 are unknown online and 200 hold values other"):
        materialize(open_store(repo), tiny_features)


def test_an_online_store_emptied_behind_feasts_back_is_written_again(
    scratch, tiny_features
) -> None:
    repo, redis = scratch
    store = open_store(repo)
    materialize(store, tiny_features)
    drop_online_rows(store, redis, share=1.0)
    if redis is None:  # the table itself gone, not just its rows
        with sqlite3.connect(repo / "state" / "online_store.db") as conn:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                conn.execute(f"DROP TABLE {table}")
    store = open_store(repo)
    summary = materialize(store, tiny_features)
    assert summary["full_rewrite"]
    assert_serving_knows_everyone(store, tiny_features)
