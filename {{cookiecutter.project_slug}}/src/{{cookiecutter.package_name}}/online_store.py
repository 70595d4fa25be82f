"""The project's online stores, named in features/feature_store.yaml through Feast's
plug-in points, and the provider that hands them DataFrames.

- `WideSqliteOnlineStore` (`online_store: type: <package>.online_store.WideSqliteOnlineStore`):
  SQLite with one row per entity, one BLOB column per feature. Feast's own SQLite store
  keeps one row per entity *and feature* (two B-trees, a `value_text` copy of each
  value), so loading N entities of F features writes N x F rows: as raw upserts, 29 s
  against 3 s for 220k entities of 21 features, and a file 13 times the size
  (docs/serving.md).
  The values are Feast's ValueProto bytes (nulls and NaN: an empty ValueProto; a NULL
  column: never written), event timestamps through Feast's sqlite adapter, so
  `online_read` returns what Feast's store returns for the same writes (tests/unit/
  test_online_store.py). The table (`<Feast's table name>_by_entity`) is made by
  `update` (`feast apply`, every stage's apply) or the first write; a feature added to
  the view gets its column (NULL until written). Vector and text search are not kept:
  for those use Feast's `type: sqlite`.
- `FastRedisOnlineStore` (`type: <package>.online_store.FastRedisOnlineStore`): Feast's
  Redis store, same hashes, with each feature's hash field computed once per batch
  instead of once per entity, and Feast's rule kept: an entity's row is written only
  when newer than the stored one and than an earlier row of the batch.
- `FrameWriteProvider` (`provider:`): Feast's local provider; `write_to_online_store`
  (what the materialize stage calls) hands the DataFrame to the store's `write_frame`,
  which builds the ValueProto bytes column by column (Float64 features packed by numpy,
  other types through Feast's converter) instead of one ValueProto object per value.

Anything else (field mappings, created timestamps, on-demand views, Redis `skip_dedup`,
other stores) takes Feast's own path unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

import pandas as pd
from feast.entity import Entity
from feast.feature_view import FeatureView
from feast.infra.infra_object import InfraObject
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3
from feast.infra.online_stores.redis import (
    RedisOnlineStore,
    RedisOnlineStoreConfig,
    _versioned_fv_name,
)
from feast.infra.online_stores.sqlite import (
    SqliteOnlineStore,
    SqliteOnlineStoreConfig,
    _quote_id,
    _table_id,
    adapt_datetime_epoch,
)
from feast.infra.passthrough_provider import PassthroughProvider
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.utils import make_tzaware, to_naive_utc
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import StrictStr, model_validator

from .online_values import (
    column_values,
    entity_keys,
    epoch_stamps,
    timestamp_proto,
    timestamp_protos,
)

# The wide table's own columns; every other column is a feature's.
KEY_COLUMNS = ("entity_key", "event_ts", "created_ts")
# Entity keys per SELECT (SQLite allows 32,766 parameters).
_READ_CHUNK = 10_000


class WideSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """The SQLite store's settings (path), under this store's type."""

    type: StrictStr = f"{__name__}.WideSqliteOnlineStore"  # type: ignore[assignment]

    @model_validator(mode="after")
    def _plain_values_only(self) -> WideSqliteOnlineStoreConfig:
        if self.vector_enabled or self.text_search_enabled or self.enable_openai_compatible_store:
            raise ValueError(
                "WideSqliteOnlineStore keeps plain feature values: for vector or text "
                "search use Feast's `type: sqlite` (and `provider: local`)"
            )
        return self


def plain_batch_view(table: Any) -> bool:
    """A plain feature view over a batch source without field mapping or created
    timestamps: the views whose frames the stores here write themselves."""
    source = getattr(table, "batch_source", None)
    return (
        type(table) is FeatureView
        and source is not None
        and not source.field_mapping
        and not source.created_timestamp_column
    )


def wide_table_name(config: RepoConfig, view: Any) -> str:
    """The view's table in WideSqliteOnlineStore: Feast's table name, `_by_entity`."""
    versioning = config.registry.enable_online_feature_view_versioning
    return f"{_table_id(config.project, view, versioning)}_by_entity"


class WideSqliteOnlineStore(SqliteOnlineStore):
    """SQLite online store with one row per entity: key, event and created timestamps,
    then each feature's ValueProto bytes in a column of its own."""

    def _stored_columns(self, conn: sqlite3.Connection, table: str) -> list[str]:
        """The table's columns in order; none when it does not exist."""
        return [row[1] for row in conn.execute(f"PRAGMA table_info({_quote_id(table)})")]

    def _ensure_table(self, conn: sqlite3.Connection, config: RepoConfig, view: Any) -> str:
        """Create the view's table, or add the columns of features it lacks; its name."""
        name, features = wide_table_name(config, view), [f.name for f in view.features]
        if clash := sorted(set(features) & set(KEY_COLUMNS)):
            raise ValueError(
                f"feature view {view.name!r}: features named {clash} would clash with "
                f"WideSqliteOnlineStore's own columns {list(KEY_COLUMNS)}: rename them"
            )
        stored = self._stored_columns(conn, name)
        if not stored:
            columns = "".join(f", {_quote_id(f)} BLOB" for f in features)
            conn.execute(
                f"CREATE TABLE {_quote_id(name)} (entity_key BLOB PRIMARY KEY, "
                f"event_ts timestamp, created_ts timestamp{columns})"
            )
            return name
        for feature in features:
            if feature not in stored:
                conn.execute(f"ALTER TABLE {_quote_id(name)} ADD COLUMN {_quote_id(feature)} BLOB")
        return name

    def _upsert(
        self, config: RepoConfig, view: Any, features: Sequence[str], rows: Iterable[tuple]
    ) -> None:
        """Write `rows` (entity key, event_ts, created_ts, then `features`' values) in one
        transaction; a stored entity's other features keep their values."""
        conn: sqlite3.Connection = self._get_conn(config)
        columns = [*KEY_COLUMNS, *features]
        names = ", ".join(_quote_id(c) for c in columns)
        updates = ", ".join(f"{_quote_id(c)} = excluded.{_quote_id(c)}" for c in columns[1:])
        with conn:
            table = _quote_id(self._ensure_table(conn, config, view))
            conn.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))}) "
                f"ON CONFLICT(entity_key) DO UPDATE SET {updates}",
                rows,
            )

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        version = config.entity_key_serialization_version
        # in order, each run of entities with the same features in one statement
        for features, run in groupby(data, key=lambda row: tuple(row[1])):
            rows = [
                (
                    serialize_entity_key(key, entity_key_serialization_version=version),
                    adapt_datetime_epoch(to_naive_utc(stamp)),
                    None if created is None else adapt_datetime_epoch(to_naive_utc(created)),
                    *(value.SerializeToString() for value in values.values()),
                )
                for key, values, stamp, created in run
            ]
            self._upsert(config, table, features, rows)
        if progress:
            progress(len(data))

    def online_read(
        self,
        config: RepoConfig,
        table: FeatureView,
        entity_keys: list[EntityKeyProto],
        requested_features: list[str] | None = None,
    ) -> list[tuple[datetime | None, dict[str, ValueProto] | None]]:
        conn = self._get_conn(config)
        name = wide_table_name(config, table)
        stored = self._stored_columns(conn, name)
        wanted = [
            column
            for column in (requested_features or stored)
            if column in stored and column not in KEY_COLUMNS
        ]
        version = config.entity_key_serialization_version
        keys = [
            serialize_entity_key(k, entity_key_serialization_version=version) for k in entity_keys
        ]
        found: dict[bytes, tuple[datetime, list[bytes | None]]] = {}
        columns = "".join(f", {_quote_id(c)}" for c in wanted)
        for i in range(0, len(keys) if stored else 0, _READ_CHUNK):
            chunk = keys[i : i + _READ_CHUNK]
            for key, stamp, *values in conn.execute(
                f"SELECT entity_key, event_ts{columns} FROM {_quote_id(name)} "
                f"WHERE entity_key IN ({', '.join('?' * len(chunk))})",
                chunk,
            ):
                found[key] = stamp, values
        result: list[tuple[datetime | None, dict[str, ValueProto] | None]] = []
        for key in keys:
            if key not in found:
                result.append((None, None))
                continue
            stamp, values = found[key]
            protos = {
                feature: ValueProto.FromString(value)
                for feature, value in zip(wanted, values, strict=True)
                if value is not None
            }
            if not protos or stamp is None:
                result.append((None, None))
                continue
            utc = stamp.astimezone(UTC) if stamp.tzinfo else stamp.replace(tzinfo=UTC)
            result.append((utc, protos))
        return result

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        conn = self._get_conn(config)
        with conn:
            for view in tables_to_keep:
                self._ensure_table(conn, config, view)
            for view in tables_to_delete:
                conn.execute(f"DROP TABLE IF EXISTS {_quote_id(wide_table_name(config, view))}")

    def plan(self, config: RepoConfig, desired_registry_proto: RegistryProto) -> list[InfraObject]:
        """None of Feast's SqliteTable objects: their schema is Feast's store's; this
        store's tables are made by `update` and by the first write."""
        return []

    def entity_count(self, config: RepoConfig, view: Any, first_only: bool = False) -> int:
        """How many entities the view's table holds (0 without a table); `first_only`:
        1 as soon as one is found."""
        conn = self._get_conn(config)
        name = wide_table_name(config, view)
        if not self._stored_columns(conn, name):
            return 0
        what = "SELECT 1" if first_only else "SELECT COUNT(*)"
        found = conn.execute(f"{what} FROM {_quote_id(name)} LIMIT 1").fetchone()
        return found[0] if found else 0

    def can_write_frame(self, config: RepoConfig, table: Any) -> bool:
        """Whether write_frame writes `table`'s rows as online_write_batch would."""
        return plain_batch_view(table)

    def write_frame(self, config: RepoConfig, table: FeatureView, frame: pd.DataFrame) -> None:
        """Write `frame` (join keys, the source's timestamp field, the features) as
        online_write_batch would write it after Feast's conversion to protos, in key
        order (a stable sort: a repeated key's last row is written last)."""
        keys = entity_keys(config, table, frame)
        stamps = epoch_stamps(frame[table.batch_source.timestamp_field])
        columns = [column_values(frame[f.name], f.dtype.to_value_type()) for f in table.features]
        created = [None] * len(keys)
        rows = sorted(zip(keys, stamps, created, *columns, strict=True), key=itemgetter(0))
        self._upsert(config, table, [f.name for f in table.features], rows)


class FastRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """The Redis store's settings (connection_string...), under this store's type."""

    type: StrictStr = f"{__name__}.FastRedisOnlineStore"  # type: ignore[assignment]


class FastRedisOnlineStore(RedisOnlineStore):
    """Feast's Redis online store with the per-batch work done once per batch: the hash
    field of each feature, and (write_frame) the rows built column by column. Feast's
    rules kept: a row is written only when newer than the entity's stored timestamp and
    than an earlier row of the batch; one pipeline of HMGETs, then one of HSETs."""

    def can_write_frame(self, config: RepoConfig, table: Any) -> bool:
        return plain_batch_view(table) and not config.online_store.skip_dedup

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        names = [f.name for f in table.features]
        if config.online_store.skip_dedup or any(list(values) != names for _, values, _, _ in data):
            super().online_write_batch(config, table, data, progress)
            return
        version = config.entity_key_serialization_version
        keys = [
            serialize_entity_key(key, entity_key_serialization_version=version) for key, *_ in data
        ]
        values = [[value.SerializeToString() for value in row.values()] for _, row, _, _ in data]
        stamps = [timestamp_proto(make_tzaware(stamp)) for *_, stamp, _ in data]
        self._write(config, table, keys, stamps, values)
        if progress:
            progress(len(data))

    def write_frame(self, config: RepoConfig, table: FeatureView, frame: pd.DataFrame) -> None:
        """Write `frame` as online_write_batch would after Feast's conversion to protos."""
        columns = [column_values(frame[f.name], f.dtype.to_value_type()) for f in table.features]
        values = list(zip(*columns, strict=True))
        keys = entity_keys(config, table, frame)
        stamps = timestamp_protos(frame[table.batch_source.timestamp_field])
        self._write(config, table, keys, stamps, values)

    def _write(
        self,
        config: RepoConfig,
        table: FeatureView,
        keys: list[bytes],
        stamps: list[Timestamp],
        values: Iterable[Iterable[bytes]],
    ) -> None:
        """HSET each entity's row (timestamp and features) unless an as new one is stored
        or came earlier in the batch; `keys`: serialized entity keys."""
        store, project = config.online_store, config.project.encode("utf-8")
        client = self._get_client(store)
        view = _versioned_fv_name(table, config)
        ts_field = f"_ts:{view}"
        fields = [_mmh3(f"{view}:{f.name}") for f in table.features]
        keys = [key + project for key in keys]
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.execute_command("HMGET", key, ts_field)
            stored = [found[0] for found in pipe.execute()]
            latest: dict[bytes, int] = {}
            for key, before, ts, row in zip(keys, stored, stamps, values, strict=True):
                nanos = ts.seconds * 1_000_000_000 + ts.nanos
                seen = latest.get(key, 0)
                if before:
                    old = Timestamp.FromString(before)
                    seen = max(seen, old.seconds * 1_000_000_000 + old.nanos)
                if seen and nanos <= seen:
                    continue
                latest[key] = nanos
                pairs = (item for pair in zip(fields, row, strict=True) for item in pair)
                pipe.execute_command("HSET", key, ts_field, ts.SerializeToString(), *pairs)
                if store.key_ttl_seconds:
                    pipe.expire(name=key, time=store.key_ttl_seconds)
            pipe.execute()


class FrameWriteProvider(PassthroughProvider):
    """Feast's local provider; `write_to_online_store` hands its DataFrame to an online
    store that writes frames (`write_frame`: the stores here) instead of protos."""

    def ingest_df(self, feature_view: Any, df: pd.DataFrame, field_mapping: Any = None) -> None:
        store = self.online_store
        if (
            not field_mapping
            and isinstance(store, WideSqliteOnlineStore | FastRedisOnlineStore)
            and store.can_write_frame(self.repo_config, feature_view)
        ):
            store.write_frame(self.repo_config, feature_view, df)
        else:
            super().ingest_df(feature_view, df, field_mapping)
