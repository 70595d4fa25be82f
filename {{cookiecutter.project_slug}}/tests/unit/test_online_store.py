"""The project's online stores (online_store.py) against Feast's own, for real: the same
frames written through both, then read back through Feast (online_read: timestamps and
ValueProto bytes; get_online_features), for the project's contract and a string-keyed
one. SQLite: the project's table holds one row per entity, Feast's one per feature;
Redis: the same hashes."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from {{ cookiecutter.package_name }} import online_values
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_frame
from {{ cookiecutter.package_name }}.feature_store import open_store
from {{ cookiecutter.package_name }}.features import build_features
from {{ cookiecutter.package_name }}.online_store import WideSqliteOnlineStore, wide_table_name
from {{ cookiecutter.package_name }}.online_values import entity_keys

from conftest import make_feast_repo, string_keyed
from other_contracts import with_second_contract


@pytest.fixture(scope="module", params=with_second_contract("string_keyed"))
def frame_and_contract(request, tiny_window, contract) -> tuple[pd.DataFrame, DatasetContract]:
    """Each entity's newest feature row of the contract, with the values a feature table
    can hold: integers, floats, one-hot and missing flags, and nulls (NaN and None),
    -0.0, infinities and extremes the pipeline never writes but Feast would."""
    if request.param != "project":
        contract = string_keyed(contract)
    raw = contract_frame(contract, tiny_window.dates(), 60, population=400, seed=11)
    features = build_features(raw, contract)
    key, stamp, columns = contract.entity.key, contract.timestamp, contract.feature_columns
    frame = features.sort_values(stamp, kind="stable").drop_duplicates(key, keep="last")
    frame = frame[[key, stamp, *columns]].reset_index(drop=True)
    first, second = columns[0], columns[1]
    frame[first] = frame[first].astype("object")
    frame.loc[0, first], frame.loc[1, first] = np.nan, None
    frame.loc[2, first], frame.loc[3, first] = -0.0, np.inf
    frame.loc[4, first], frame.loc[5, first] = 5e-324, -1.7976931348623157e308
    frame[first] = frame[first].astype("float64")
    frame[second] = frame[second].round().astype("int64")  # an integer column, Float64 in Feast
    frame.loc[6, columns] = np.nan  # a row without any value
    return frame, contract


def wide_rows(repo: Path, store, view) -> list[tuple]:
    """Every row of the view's table in WideSqliteOnlineStore, as stored."""
    with sqlite3.connect(repo / "state" / "online_store.db") as conn:
        name = wide_table_name(store.config, view)
        return conn.execute(f'SELECT * FROM "{name}" ORDER BY entity_key').fetchall()


def write(tmp: Path, frame: pd.DataFrame, contract: DatasetContract, online: str, how: str):
    """A fresh repo of `online` kind with `frame` written by `how`: `frame`
    (write_to_online_store) or `protos` (Feast's conversion, then online_write_batch)."""
    repo = make_feast_repo(tmp / f"{online}-{how}", frame, online, contract=contract)
    store = open_store(repo)
    view = store.get_feature_view(contract.feature_view)
    write_rows(store, view, frame, how)
    return repo, store, view


def write_rows(store, view, frame: pd.DataFrame, how: str = "frame") -> None:
    if how == "frame":
        store.write_to_online_store(view.name, frame, transform_on_write=False)
    else:
        provider = store._get_provider()
        rows = provider._prep_rows_to_write_for_ingestion(view, frame)
        provider.online_store.online_write_batch(store.config, view, rows, None)


def entity_protos(view, frame: pd.DataFrame, contract: DatasetContract) -> list[EntityKey]:
    from feast.type_map import python_values_to_proto_values

    key = contract.entity.key
    kind = view.entity_columns[0].dtype.to_value_type()
    protos = python_values_to_proto_values(frame[key].tolist(), kind)
    return [EntityKey(join_keys=[key], entity_values=[proto]) for proto in protos]


def raw_reads(store, view, frame: pd.DataFrame, contract: DatasetContract, features=None):
    """online_read's (timestamp, {feature: ValueProto bytes}) per entity of `frame`."""
    keys = entity_protos(view, frame, contract)
    read = store._get_provider().online_store.online_read(store.config, view, keys, features)
    return [
        (stamp, {name: value.SerializeToString() for name, value in (values or {}).items()})
        for stamp, values in read
    ]


def read_back(store, view, frame: pd.DataFrame, contract: DatasetContract):
    """Feast's reads: online_read's (timestamp, ValueProto bytes) per entity, and
    get_online_features through the feature service."""
    key = contract.entity.key
    service = store.get_feature_service("model_features")
    rows = [{key: value} for value in frame[key].tolist()]
    served = store.get_online_features(features=service, entity_rows=rows).to_dict()
    return raw_reads(store, view, frame, contract), served


def test_same_reads_as_feasts_store_from_one_row_per_entity(tmp_path, frame_and_contract) -> None:
    frame, contract = frame_and_contract
    _, stock, view = write(tmp_path, frame, contract, "sqlite-stock", "frame")
    assert type(stock._get_provider().online_store).__name__ == "SqliteOnlineStore"
    stock_reads = read_back(stock, view, frame, contract)
    assert b"" in {v for _, values in stock_reads[0] for v in values.values()}  # nulls
    for how in ("frame", "protos"):
        repo, store, view = write(tmp_path, frame, contract, "sqlite", how)
        assert isinstance(store._get_provider().online_store, WideSqliteOnlineStore)
        rows = wide_rows(repo, store, view)
        assert len(rows) == frame[contract.entity.key].nunique(), how
        assert len(rows[0]) == 3 + len(contract.feature_columns)  # key, timestamps, features
        raw, served = read_back(store, view, frame, contract)
        assert raw == stock_reads[0], how
        assert served.keys() == stock_reads[1].keys()
        for name, values in served.items():
            np.testing.assert_array_equal(
                np.array(values, dtype=object), np.array(stock_reads[1][name], dtype=object)
            )
        unknown = raw_reads(store, view, frame, contract, ["no_such_feature"])
        assert unknown == [(None, {})] * len(frame)


def test_rewrites_behave_as_in_feasts_store(tmp_path, frame_and_contract) -> None:
    """The same frame again changes nothing; a row with an older timestamp replaces the
    stored one, in both stores (Feast's SQLite store keeps the last row written); a write
    of some features only leaves the others as they were."""
    frame, contract = frame_and_contract
    stamp, first, second = contract.timestamp, *contract.feature_columns[:2]
    older = frame.head(20).assign(
        **{stamp: frame[stamp].head(20) - pd.Timedelta(days=3), first: 123.5}
    )
    reads = {}
    for online in ("sqlite-stock", "sqlite"):
        _, store, view = write(tmp_path, frame, contract, online, "frame")
        first_write = raw_reads(store, view, frame, contract)
        write_rows(store, view, frame)
        assert raw_reads(store, view, frame, contract) == first_write, online
        write_rows(store, view, older)
        provider = store._get_provider()
        some = [
            (key, {second: ValueProto(double_val=-2.5)}, when, None)
            for key, _, when, _ in provider._prep_rows_to_write_for_ingestion(view, frame.tail(5))
        ]
        provider.online_store.online_write_batch(store.config, view, some, None)
        reads[online] = raw_reads(store, view, frame, contract)
        assert {values[first] for _, values in reads[online][:20]} == {
            ValueProto(double_val=123.5).SerializeToString()
        }
        assert {values[second] for _, values in reads[online][-5:]} == {
            ValueProto(double_val=-2.5).SerializeToString()
        }
    assert reads["sqlite"] == reads["sqlite-stock"]


def test_a_feature_added_to_the_view_gets_its_column(tmp_path, frame_and_contract) -> None:
    """`feast apply` of a view with one feature more adds its column: the stored entities
    keep their values, the new feature is missing until written, as in Feast's store."""
    from feast import Field
    from feast.types import Float64

    frame, contract = frame_and_contract
    repo, store, view = write(tmp_path, frame, contract, "sqlite", "frame")
    wider = copy.copy(view)
    wider.features = [*view.features, Field(name="added_feature", dtype=Float64)]
    online = store._get_provider().online_store
    online.update(store.config, [], [wider], [], [], partial=True)
    before = raw_reads(store, view, frame, contract)
    assert raw_reads(store, wider, frame, contract) == before  # added_feature: NULL, not read
    online.write_frame(store.config, wider, frame.head(3).assign(added_feature=7.0))
    after = raw_reads(store, wider, frame, contract)
    assert [values.get("added_feature") for _, values in after[:4]] == [
        ValueProto(double_val=7.0).SerializeToString()
    ] * 3 + [None]
    assert len(wide_rows(repo, store, view)[0]) == 4 + len(contract.feature_columns)
    online.update(store.config, [wider], [], [], [], partial=True)  # the view removed
    assert raw_reads(store, view, frame, contract) == [(None, {})] * len(frame)


def test_entity_keys_packed_column_wise_are_feasts(
    tmp_path, frame_and_contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every row's key as Feast serializes it, for the contract's key type and its edges:
    integers at the int64 limits and negative, strings empty, non-ASCII and long."""
    from feast.infra.key_encoding_utils import serialize_entity_key

    frame, contract = frame_and_contract
    key = contract.entity.key
    repo = make_feast_repo(tmp_path, frame, "sqlite", contract=contract)
    store = open_store(repo)
    view = store.get_feature_view(contract.feature_view)
    if contract.entity.dtype == "int":
        edges = [0, -1, 2**63 - 1, -(2**63), 7]
    else:
        edges = ["", "é-ü-漢字", "x" * 300, "7", " spaced "]
    keyed = pd.DataFrame({key: pd.Series(edges, dtype=frame[key].dtype)})
    for rows in (frame, keyed):
        expected = [
            serialize_entity_key(k, entity_key_serialization_version=3)
            for k in entity_protos(view, rows, contract)
        ]
        assert entity_keys(store.config, view, rows) == expected
    # should Feast's format ever change, the packed keys are refused, not written
    monkeypatch.setattr(online_values, "_single_keys", lambda *_: [b"other"] * len(frame))
    with pytest.raises(RuntimeError, match="differ from Feast's serialization"):
        entity_keys(store.config, view, frame)


def test_refuses_what_it_does_not_keep(tmp_path, frame_and_contract) -> None:
    """Vector search is Feast's own store's; a feature named like a key column is refused."""
    from feast import Field
    from feast.types import Float64

    frame, contract = frame_and_contract
    repo = make_feast_repo(tmp_path / "vector", frame, "sqlite", contract=contract)
    yaml_file = repo / "feature_store.yaml"
    yaml_file.write_text(
        yaml_file.read_text().replace(
            "  path: state/online_store.db", "  path: state/online_store.db\n  vector_enabled: true"
        )
    )
    with pytest.raises(Exception, match="keeps plain feature values"):
        open_store(repo)
    _, store, view = write(tmp_path, frame, contract, "sqlite", "frame")
    clashing = copy.copy(view)
    clashing.features = [*view.features, Field(name="event_ts", dtype=Float64)]
    with pytest.raises(ValueError, match="would clash"):
        store._get_provider().online_store.update(store.config, [], [clashing], [], [], True)


def redis_hashes(address: str) -> dict[bytes, dict[bytes, bytes]]:
    """Every hash of the Redis server: key -> {field: value}."""
    import redis

    host, port = address.split(":")
    client = redis.Redis(host=host, port=int(port))
    return {key: client.hgetall(key) for key in client.scan_iter(count=10_000)}


def test_same_hashes_and_reads_as_feasts_redis_store(
    tmp_path, frame_and_contract, redis_server
) -> None:
    """The same hashes as Feast's Redis store after a write, the same frame again, and
    rows with older timestamps (which Feast's store skips), read back the same way."""
    frame, contract = frame_and_contract
    stamp, first = contract.timestamp, contract.feature_columns[0]
    older = frame.head(20).assign(
        **{stamp: frame[stamp].head(20) - pd.Timedelta(days=3), first: 123.5}
    )
    newer = frame.head(10).assign(**{stamp: frame[stamp].head(10) + pd.Timedelta(days=1)})
    found = {}
    for online in ("redis-stock", "redis"):
        for how in ("frame", "protos") if online == "redis" else ("frame",):
            store = open_store(
                make_feast_repo(tmp_path / f"{online}-{how}", frame, online, redis_server, contract)
            )
            view = store.get_feature_view(contract.feature_view)
            kind = type(store._get_provider().online_store).__name__
            assert kind == ("FastRedisOnlineStore" if online == "redis" else "RedisOnlineStore")
            steps = []
            for rows in (frame, frame, older, newer.assign(**{first: -7.25})):
                if how == "frame":
                    store.write_to_online_store(view.name, rows, transform_on_write=False)
                else:
                    provider = store._get_provider()
                    protos = provider._prep_rows_to_write_for_ingestion(view, rows)
                    provider.online_store.online_write_batch(store.config, view, protos, None)
                steps.append(redis_hashes(redis_server))
            found[online, how] = steps, read_back(store, view, frame, contract)[0]
    expected_steps, expected_reads = found["redis-stock", "frame"]
    assert expected_steps[1] == expected_steps[0] == expected_steps[2]  # rewrites, older rows
    assert expected_steps[3] != expected_steps[2]  # newer rows are written
    for key in (("redis", "frame"), ("redis", "protos")):
        steps, reads = found[key]
        assert steps == expected_steps, key
        assert reads == expected_reads, key
