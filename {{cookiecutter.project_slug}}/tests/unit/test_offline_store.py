"""The project's offline store (offline_store.py, named in features/feature_store.yaml)
gives what Feast's own DuckDB store gives and what the merge_asof reference gives, on
data made to catch a point-in-time join out: ties, rows before any feature, TTL expiry,
repeated entity rows, null features, int and string keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from feast import FeatureView, Field, FileSource
from feast.errors import SavedDatasetLocationAlreadyExists
from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
from feast.infra.offline_stores.file_source import SavedDatasetFileStorage
from feast.types import Float64, Int64, String

from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import entity_ids
from {{ cookiecutter.package_name }}.feature_store import historical_features, open_store
from {{ cookiecutter.package_name }}.features import FEATURE_SERVICE
from {{ cookiecutter.package_name }}.offline_store import (
    MergeAsofOfflineStore,
    MergeAsofOfflineStoreConfig,
    MergeAsofRetrievalJob,
    key_codes,
)

from conftest import make_feast_repo, string_keyed
from other_contracts import with_second_contract
from tools.point_in_time import point_in_time_join

DAY = pd.Timestamp("2026-03-01", tz="UTC")
NOTE = "note"  # an extra entity column: which label row a result row is


def at(days: float) -> pd.Timestamp:
    return DAY + pd.Timedelta(days=days)


@dataclass(frozen=True)
class Tricky:
    """A Feast repository over tricky feature rows, opened with the project's offline
    store and with Feast's DuckDB store; the label rows and the feature row each should
    get (None: none)."""

    contract: DatasetContract
    features: pd.DataFrame
    labels: pd.DataFrame
    expected: dict[str, int | None]
    ttl: pd.Timedelta
    ours: Any
    stock: Any

    @property
    def tie_entity(self) -> Any:
        """The entity with two feature rows at one timestamp (Feast's DuckDB store may
        answer with either)."""
        return self.features[self.contract.entity.key].iloc[-1]


def tricky_frames(
    contract: DatasetContract, ttl: pd.Timedelta
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int | None]]:
    key, stamp, columns = contract.entity.key, contract.timestamp, contract.feature_columns
    ids = entity_ids(contract, np.arange(6)).tolist()
    feature_rows = [
        (0, at(0)),  # 0: a plain history
        (0, at(2)),
        (1, at(0)),  # 1: TTL
        (2, at(0)),  # 2: some features null
        (2, at(1)),  #    every feature null
        (4, at(0)),  # 4: repeated entity rows
        (5, at(0)),  # 5: two feature rows at one timestamp: the last one stored wins
        (5, at(0)),
    ]
    features = pd.DataFrame(
        {key: [ids[e] for e, _ in feature_rows], stamp: [t for _, t in feature_rows]}
    )
    values = np.arange(len(feature_rows))[:, None] * 100.0 + np.arange(len(columns))
    features = features.assign(**dict(zip(columns, values.T, strict=True)))
    features.loc[3, columns[::2]] = np.nan
    features.loc[4, columns] = np.nan
    label_rows = [  # entity, time, the feature row it gets
        (0, at(-1), None),  # before any feature row
        (0, at(0), 0),  # at the time of one: that one
        (0, at(1), 0),  # between two: the older
        (0, at(2), 1),
        (0, at(30), 1),
        (1, at(0) + ttl, 2),  # exactly the TTL old: still served
        (1, at(0) + ttl + pd.Timedelta(seconds=1), None),  # older than the TTL
        (2, at(0.5), 3),  # its newest row, nulls and all
        (2, at(2), None),  # its newest row has no value at all
        (3, at(5), None),  # no feature row ever
        (4, at(3), 5),  # the same entity and time three times: all kept, in order
        (4, at(3), 5),
        (4, at(3), 5),
        (5, at(1), 7),
    ]
    order = np.random.default_rng(0).permutation(len(label_rows))  # not in time order
    labels = pd.DataFrame(
        {
            key: [ids[label_rows[i][0]] for i in order],
            stamp: [label_rows[i][1] for i in order],
            contract.label.column: [int(i % 2) for i in order],
            NOTE: [f"row {i}" for i in order],
        }
    )
    expected = {f"row {i}": row for i, (_, _, row) in enumerate(label_rows)}
    return features, labels, expected


@pytest.fixture(scope="module", params=with_second_contract("string_keyed"))
def tricky(request, tmp_path_factory, contract) -> Tricky:
    chosen = contract if request.param == "project" else string_keyed(contract)
    ttl = pd.Timedelta(days=90)  # features/definitions.py
    features, labels, expected = tricky_frames(chosen, ttl)
    repo = make_feast_repo(tmp_path_factory.mktemp("tricky"), features, "sqlite", None, chosen)
    text = (repo / "feature_store.yaml").read_text()
    ours = f"type: {MergeAsofOfflineStoreConfig().type}"
    assert ours in text
    (repo / "stock.yaml").write_text(text.replace(ours, "type: duckdb"))
    store = open_store(repo)
    assert store.get_feature_view(chosen.feature_view).ttl == ttl
    stock = open_store(repo, repo / "stock.yaml", apply=False)
    return Tricky(chosen, features, labels, expected, ttl, store, stock)


def retrieve(store: Any, entity_df: pd.DataFrame, **kwargs: Any) -> Any:
    service = store.get_feature_service(FEATURE_SERVICE)
    return store.get_historical_features(entity_df=entity_df, features=service, **kwargs)


def test_feature_store_yaml_names_the_merge_asof_store(tricky: Tricky) -> None:
    assert isinstance(tricky.ours.config.offline_store, MergeAsofOfflineStoreConfig)
    assert type(tricky.stock.config.offline_store) is DuckDBOfflineStoreConfig
    assert isinstance(retrieve(tricky.ours, tricky.labels), MergeAsofRetrievalJob)


@pytest.mark.parametrize("full_feature_names", [False, True])
def test_retrieval_equals_feast_duckdb_stores(tricky: Tricky, full_feature_names: bool) -> None:
    """Every entity row, in the order given, with the values and types Feast's DuckDB
    store returns (in its own order)."""
    key = tricky.contract.entity.key
    entity_df = tricky.labels[tricky.labels[key] != tricky.tie_entity].reset_index(drop=True)
    ours = retrieve(tricky.ours, entity_df, full_feature_names=full_feature_names).to_df()
    stock = retrieve(tricky.stock, entity_df, full_feature_names=full_feature_names).to_df()
    pd.testing.assert_frame_equal(ours[entity_df.columns], entity_df, check_dtype=False)
    by = list(entity_df.columns)
    pd.testing.assert_frame_equal(
        ours.sort_values(by, kind="stable").reset_index(drop=True),
        stock.sort_values(by, kind="stable").reset_index(drop=True),
    )
    view = tricky.contract.feature_view
    named = [f"{view}__{c}" if full_feature_names else c for c in tricky.contract.feature_columns]
    assert list(ours.columns) == [*entity_df.columns, *named]


def test_training_set_equals_the_merge_asof_reference(tricky: Tricky) -> None:
    c = tricky.contract
    ours = historical_features(tricky.ours, tricky.labels, c)
    reference = point_in_time_join(tricky.labels, tricky.features, c, ttl=tricky.ttl)
    pd.testing.assert_frame_equal(ours, reference[ours.columns], check_dtype=False)
    # what it means, row by row
    served = {note: row for note, row in tricky.expected.items() if row is not None}
    assert sorted(ours[NOTE]) == sorted(served)
    want = tricky.features.loc[[served[note] for note in ours[NOTE]], c.feature_columns]
    np.testing.assert_array_equal(ours[c.feature_columns].to_numpy(), want.to_numpy())
    repeated = ours[ours[c.entity.key] == tricky.features[c.entity.key][5]]
    in_given_order = [n for n in tricky.labels[NOTE] if n in set(repeated[NOTE])]
    assert repeated[NOTE].tolist() == in_given_order
    assert ours[[c.timestamp, c.entity.key]].equals(
        ours[[c.timestamp, c.entity.key]].sort_values([c.timestamp, c.entity.key])
    )


def test_no_entity_rows_give_the_columns_and_types_of_feast_duckdb_store(tricky: Tricky) -> None:
    none = tricky.labels.head(0)
    ours = historical_features(tricky.ours, none, tricky.contract)
    pd.testing.assert_frame_equal(ours, historical_features(tricky.stock, none, tricky.contract))


def test_views_it_cannot_join_go_to_feast_duckdb_store(tricky: Tricky, tmp_path: Path) -> None:
    """A source with a created timestamp (a tie-breaker merge_asof does not take) is
    joined by Feast's DuckDB store, with the same answer."""
    c, store = tricky.contract, tricky.ours
    parquet = tmp_path / "created.parquet"
    tricky.features.assign(created=tricky.features[c.timestamp]).to_parquet(parquet)
    source = FileSource(
        path=str(parquet), timestamp_field=c.timestamp, created_timestamp_column="created"
    )
    view = FeatureView(
        name="with_created",
        entities=[store.get_entity(c.entity.name)],
        ttl=tricky.ttl.to_pytimedelta(),
        schema=[
            Field(name=c.entity.key, dtype=Int64 if c.entity.dtype == "int" else String),
            Field(name=c.feature_columns[0], dtype=Float64),
        ],
        source=source,
    )
    entity_df = tricky.labels[tricky.labels[c.entity.key] != tricky.tie_entity].copy()
    job = MergeAsofOfflineStore.get_historical_features(
        store.config,
        [view],
        [f"with_created:{c.feature_columns[0]}"],
        entity_df,
        store.registry,
        store.project,
    )
    assert not isinstance(job, MergeAsofRetrievalJob)
    got = job.to_df().sort_values(NOTE).reset_index(drop=True)
    ours = retrieve(store, entity_df).to_df().sort_values(NOTE).reset_index(drop=True)
    pd.testing.assert_series_equal(got[c.feature_columns[0]], ours[c.feature_columns[0]])


def test_a_join_key_of_another_type_is_refused(tricky: Tricky) -> None:
    key = tricky.contract.entity.key
    keys = tricky.labels[key]
    retyped = keys.astype(str) if tricky.contract.entity.dtype == "int" else keys.str.len()
    with pytest.raises(TypeError, match=rf"join key '{key}' is .* in the entity DataFrame"):
        retrieve(tricky.ours, tricky.labels.assign(**{key: retyped})).to_df()


def test_a_saved_dataset_holds_the_joined_rows(tricky: Tricky, tmp_path: Path) -> None:
    job = retrieve(tricky.ours, tricky.labels)
    storage = SavedDatasetFileStorage(path=str(tmp_path / "saved.parquet"))
    job.persist(storage)
    assert pq.read_table(tmp_path / "saved.parquet").equals(job.to_arrow())
    with pytest.raises(SavedDatasetLocationAlreadyExists):
        job.persist(storage)
    job.persist(storage, allow_overwrite=True)


def test_key_codes_match_compound_keys_and_never_nulls() -> None:
    entity = [pa.chunked_array([[1, 1, 2, None, 3]]), pa.chunked_array([["a", "b", "a", "a", "x"]])]
    table = [pa.chunked_array([[2, 1], [1, 3]]), pa.chunked_array([["a", "b"], [None, "y"]])]
    ours, theirs = key_codes(entity, table, ["number", "name"])
    assert ours[2] == theirs[0] and ours[1] == theirs[1]  # (2, a) and (1, b)
    assert len({*ours[:3], *theirs[3:]}) == 4  # (1, a), (1, b), (2, a), (3, y) differ
    assert ours[3] == -1 and theirs[2] == -1  # a null in either key
    assert ours[4] not in set(theirs)  # (3, x) is nowhere
