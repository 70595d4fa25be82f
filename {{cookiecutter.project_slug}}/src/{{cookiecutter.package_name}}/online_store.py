"""Feast's SQLite and Redis online stores with faster writes, and the provider that hands
them DataFrames.

features/feature_store.yaml names them, Feast's plug-in points: `provider:
<package>.online_store.FrameWriteProvider` and `online_store: type:
<package>.online_store.FastSqliteOnlineStore` (Redis: `FastRedisOnlineStore`). Reads,
`feast apply` (tables, indexes) and teardown are Feast's stores' own; serving reads
through them.

What Feast spends per entity is Python: in `write_to_online_store`, a ValueProto object
per value built row by row (`_convert_arrow_to_proto`), then in its SQLite store one
`execute` per (entity, feature) value, in its Redis store each feature's hash field
computed again for every entity. Here:

- `FrameWriteProvider.ingest_df` (`FeatureStore.write_to_online_store`, what the
  `materialize` stage calls) hands the DataFrame to the store's `write_frame`, which
  builds the same values column by column: Float64 features as ValueProto `double_val`
  bytes packed by numpy, other types through Feast's own converter;
- `FastSqliteOnlineStore` writes a batch (a frame, or the protos of Feast's other paths:
  `feast materialize`, push sources) in one `executemany`, one transaction, entity by
  entity in key order;
- `FastRedisOnlineStore` computes the hash fields once per batch and keeps Feast's
  rule: an entity's row is written only when newer than the stored one and than an
  earlier row of the batch (a pipeline of HMGETs, then one of HSETs).

The rows are Feast's: the same table or hashes, entity keys serialized by Feast, the
same ValueProto bytes (nulls and NaN: an empty ValueProto), `value_text` as Feast writes
it, event timestamps through Feast's sqlite adapter or as Feast's Timestamp bytes,
`created_ts` null when the source has none. SQLite, as Feast's store, replaces a stored
row whatever its timestamp (the last row of a repeated key wins). tests/unit/
test_online_store.py writes the same frames through both and compares bytes. Anything
else (vector or OpenAI-compatible SQLite stores, Redis `skip_dedup`, field mappings,
created timestamps, on-demand views, other stores) takes Feast's own path unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from feast.feature_view import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3, extract_text_and_num
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
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.type_map import python_values_to_proto_values
from feast.utils import make_tzaware, to_naive_utc
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import StrictStr

# One table row: entity_key, feature_name, value, value_text, event_ts, created_ts.
Row = tuple[bytes, str, bytes, str | None, Any, Any]
# A set double_val: its field tag, then the IEEE 754 double, little-endian (protobuf's wire
# format); taken from protobuf itself so the bytes are ValueProto's own.
_DOUBLE_TAG = ValueProto(double_val=1.0).SerializeToString()[:-8]
_PACKED_DOUBLE = np.dtype([("tag", f"S{len(_DOUBLE_TAG)}"), ("value", "<f8")])
_UPSERT = (
    "INSERT INTO {table} (entity_key, feature_name, value, value_text, event_ts, created_ts) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
    "value = excluded.value, value_text = excluded.value_text, "
    "event_ts = excluded.event_ts, created_ts = excluded.created_ts"
)


class FastSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """The SQLite store's settings (path...), under this store's type."""

    type: StrictStr = f"{__name__}.FastSqliteOnlineStore"  # type: ignore[assignment]


class FastSqliteOnlineStore(SqliteOnlineStore):
    """Feast's SQLite online store whose writes are one `executemany` per batch."""

    def _plain(self, config: RepoConfig) -> bool:
        """True for the store the rows here are written for: no vector or value_num columns."""
        store = config.online_store
        return not (store.vector_enabled or getattr(store, "enable_openai_compatible_store", False))

    def _upsert(self, config: RepoConfig, table: FeatureView, rows: Iterable[Row]) -> None:
        conn: sqlite3.Connection = self._get_conn(config)
        name = _table_id(
            config.project, table, config.registry.enable_online_feature_view_versioning
        )
        with conn:  # one transaction
            conn.executemany(_UPSERT.format(table=_quote_id(name)), rows)

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        if not self._plain(config):
            super().online_write_batch(config, table, data, progress)
            return
        version = config.entity_key_serialization_version
        rows = [
            (
                serialize_entity_key(key, entity_key_serialization_version=version),
                name,
                value.SerializeToString(),
                extract_text_and_num(value, False)[0],
                adapt_datetime_epoch(to_naive_utc(stamp)),
                None if created is None else adapt_datetime_epoch(to_naive_utc(created)),
            )
            for key, values, stamp, created in data
            for name, value in values.items()
        ]
        self._upsert(config, table, rows)
        if progress:
            progress(len(data))

    def can_write_frame(self, config: RepoConfig, table: Any) -> bool:
        """Whether write_frame writes `table`'s rows as Feast would: a plain feature view
        over a batch source without field mapping or created timestamps."""
        source = getattr(table, "batch_source", None)
        return (
            type(table) is FeatureView
            and self._plain(config)
            and source is not None
            and not source.field_mapping
            and not source.created_timestamp_column
        )

    def write_frame(self, config: RepoConfig, table: FeatureView, frame: pd.DataFrame) -> None:
        """Write `frame` (join keys, the source's timestamp field, the features) as
        online_write_batch would write its rows after Feast's conversion to protos."""
        keys = _entity_keys(config, table, frame)
        stamps = _epoch_stamps(frame[table.batch_source.timestamp_field])
        columns = []
        for field in table.features:
            values, texts = _column_values(frame[field.name], field.dtype.to_value_type())
            columns.append(zip(keys, repeat(field.name), values, texts, stamps, repeat(None)))
        # entity by entity, as Feast's store writes them, in key order (a stable sort:
        # repeated keys keep their order): an entity's rows land in the same B-tree pages
        entities = list(zip(*columns, strict=True))
        order = sorted(range(len(keys)), key=keys.__getitem__)
        rows: list[Row] = [row for i in order for row in entities[i]]
        self._upsert(config, table, rows)


class FastRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """The Redis store's settings (connection_string...), under this store's type."""

    type: StrictStr = f"{__name__}.FastRedisOnlineStore"  # type: ignore[assignment]


class FastRedisOnlineStore(RedisOnlineStore):
    """Feast's Redis online store with the per-batch work done once per batch: the hash
    field of each feature, and (write_frame) the rows built column by column. Feast's
    rules kept: a row is written only when newer than the entity's stored timestamp and
    than an earlier row of the batch; one pipeline of HMGETs, then one of HSETs."""

    def can_write_frame(self, config: RepoConfig, table: Any) -> bool:
        source = getattr(table, "batch_source", None)
        return (
            type(table) is FeatureView
            and not config.online_store.skip_dedup
            and source is not None
            and not source.field_mapping
            and not source.created_timestamp_column
        )

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
        stamps = [_timestamp(make_tzaware(stamp)) for *_, stamp, _ in data]
        self._write(config, table, keys, stamps, values)
        if progress:
            progress(len(data))

    def write_frame(self, config: RepoConfig, table: FeatureView, frame: pd.DataFrame) -> None:
        """Write `frame` as online_write_batch would after Feast's conversion to protos."""
        stamps = pd.to_datetime(frame[table.batch_source.timestamp_field])
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        # as Timestamp.FromDatetime of the microsecond datetimes Feast's conversion gives
        micros = stamps.to_numpy("datetime64[us]").astype("int64")
        seconds, nanos = np.divmod(micros, 1_000_000)
        columns = [
            _column_values(frame[f.name], f.dtype.to_value_type(), texts=False)[0]
            for f in table.features
        ]
        values = list(zip(*columns, strict=True))
        keys = _entity_keys(config, table, frame)
        stamps = [
            Timestamp(seconds=s, nanos=n * 1000)
            for s, n in zip(seconds.tolist(), nanos.tolist(), strict=True)
        ]
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


def _timestamp(stamp: datetime) -> Timestamp:
    found = Timestamp()
    found.FromDatetime(stamp)
    return found


def _entity_keys(config: RepoConfig, table: FeatureView, frame: pd.DataFrame) -> list[bytes]:
    """Each row's entity key, serialized by Feast from Feast's protos of the join keys."""
    columns = [(f.name, f.dtype.to_value_type()) for f in table.entity_columns]
    names = [name for name, _ in columns]
    protos = [python_values_to_proto_values(_python(frame[n]), kind) for n, kind in columns]
    version = config.entity_key_serialization_version
    return [
        serialize_entity_key(
            EntityKeyProto(join_keys=names, entity_values=list(values)),
            entity_key_serialization_version=version,
        )
        for values in zip(*protos, strict=True)
    ]


def _epoch_stamps(stamps: pd.Series) -> list[int]:
    """Event timestamps as Feast's sqlite adapter stores them: naive UTC, then epoch seconds."""
    stamps = pd.to_datetime(stamps)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return [adapt_datetime_epoch(stamp) for stamp in stamps.to_numpy("datetime64[us]").tolist()]


def _column_values(
    column: pd.Series, kind: ValueType, texts: bool = True
) -> tuple[list[bytes], list[str | None]]:
    """ValueProto bytes and (`texts`) value_text of one feature column, as Feast writes them."""
    numeric = pd.api.types.is_float_dtype(column) or (
        pd.api.types.is_integer_dtype(column) and not pd.api.types.is_bool_dtype(column)
    )
    if kind != ValueType.DOUBLE or not numeric:
        protos = python_values_to_proto_values(_python(column), kind)
        return (
            [proto.SerializeToString() for proto in protos],
            [extract_text_and_num(proto, False)[0] for proto in protos] if texts else [],
        )
    numbers = column.to_numpy(dtype="float64", na_value=np.nan)
    packed = np.empty(len(numbers), dtype=_PACKED_DOUBLE)
    packed["tag"], packed["value"] = _DOUBLE_TAG, numbers
    blob, width = packed.tobytes(), _PACKED_DOUBLE.itemsize
    values = [blob[i : i + width] for i in range(0, len(blob), width)]
    text: list[str | None] = [str(number) for number in numbers.tolist()] if texts else []
    for i in np.flatnonzero(np.isnan(numbers)).tolist():  # null: an empty ValueProto
        values[i] = b""
        if texts:
            text[i] = None
    return values, text


def _python(column: pd.Series) -> Any:
    """A column as Feast's converter receives it: through Arrow, to numpy."""
    return pa.Array.from_pandas(column).to_numpy(zero_copy_only=False)


class FrameWriteProvider(PassthroughProvider):
    """Feast's local provider; `write_to_online_store` hands its DataFrame to an online
    store that writes frames (`write_frame`: the stores here) instead of protos."""

    def ingest_df(self, feature_view: Any, df: pd.DataFrame, field_mapping: Any = None) -> None:
        store = self.online_store
        if (
            not field_mapping
            and isinstance(store, FastSqliteOnlineStore | FastRedisOnlineStore)
            and store.can_write_frame(self.repo_config, feature_view)
        ):
            store.write_frame(self.repo_config, feature_view, df)
        else:
            super().ingest_df(feature_view, df, field_mapping)
