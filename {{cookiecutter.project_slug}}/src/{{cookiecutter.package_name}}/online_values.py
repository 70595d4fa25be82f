"""Feature frames as Feast's online stores receive them: serialized entity keys,
ValueProto bytes and event timestamps, built column by column.

Feast's own path (`_convert_arrow_to_proto`) builds a ValueProto object per value, row
by row; here Float64 features are packed by numpy into the same bytes and other types go
through Feast's converter, a column at a time. tests/unit/test_online_store.py reads
both paths back through Feast and compares bytes.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from feast.feature_view import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.sqlite import adapt_datetime_epoch
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp

# A set double_val: its field tag, then the IEEE 754 double, little-endian (protobuf's wire
# format); taken from protobuf itself so the bytes are ValueProto's own.
_DOUBLE_TAG = ValueProto(double_val=1.0).SerializeToString()[:-8]


def _records(head: bytes, values: np.ndarray, kind: str) -> list[bytes]:
    """`head` followed by each value packed as numpy `kind` (e.g. "<f8"): one bytes each."""
    packed = np.empty(len(values), dtype=[("head", f"S{len(head)}"), ("value", kind)])
    packed["head"], packed["value"] = head, values
    blob, width = packed.tobytes(), packed.dtype.itemsize
    return [blob[i : i + width] for i in range(0, len(blob), width)]


def entity_keys(config: RepoConfig, view: FeatureView, frame: pd.DataFrame) -> list[bytes]:
    """Each row's entity key as Feast serializes it: a single INT64 or STRING join key
    packed column-wise (Feast's bytes, checked on the first row), others through Feast."""
    columns = [(f.name, f.dtype.to_value_type()) for f in view.entity_columns]
    version = config.entity_key_serialization_version
    if len(columns) == 1 and version >= 3 and len(frame):
        (name, kind), column = columns[0], frame[columns[0][0]]
        keys = _single_keys(name, kind, column, version)
        if keys is not None:
            if keys[0] != _feast_keys([name], [(kind, column.head(1))], version)[0]:
                raise RuntimeError(f"entity keys of {name!r} differ from Feast's serialization")
            return keys
    return _feast_keys([n for n, _ in columns], [(k, frame[n]) for n, k in columns], version)


def _single_keys(name: str, kind: ValueType, column: pd.Series, version: int) -> list[bytes] | None:
    """Feast's serialized keys of one join key column: a prefix (count, name, value
    type) then the value's length and bytes; None for other types."""
    if kind == ValueType.INT64 and pd.api.types.is_integer_dtype(column):
        head = _feast_keys([name], [(kind, pd.Series([0]))], version)[0][:-8]
        return _records(head, column.to_numpy(dtype="int64"), "<i8")
    if kind == ValueType.STRING and pd.api.types.is_string_dtype(column):
        head = _feast_keys([name], [(kind, pd.Series([""]))], version)[0][:-4]
        encoded = [str(value).encode("utf8") for value in column.tolist()]
        return [head + struct.pack("<I", len(value)) + value for value in encoded]
    return None


def _feast_keys(
    names: list[str], columns: list[tuple[ValueType, pd.Series]], version: int
) -> list[bytes]:
    protos = [python_values_to_proto_values(_python(column), kind) for kind, column in columns]
    return [
        serialize_entity_key(
            EntityKeyProto(join_keys=names, entity_values=list(values)),
            entity_key_serialization_version=version,
        )
        for values in zip(*protos, strict=True)
    ]


def column_values(column: pd.Series, kind: ValueType) -> list[bytes]:
    """The ValueProto bytes of one feature column, as Feast's conversion serializes them
    (null and NaN: an empty ValueProto)."""
    numeric = pd.api.types.is_float_dtype(column) or (
        pd.api.types.is_integer_dtype(column) and not pd.api.types.is_bool_dtype(column)
    )
    if kind != ValueType.DOUBLE or not numeric:
        return [p.SerializeToString() for p in python_values_to_proto_values(_python(column), kind)]
    numbers = column.to_numpy(dtype="float64", na_value=np.nan)
    values = _records(_DOUBLE_TAG, numbers, "<f8")
    for i in np.flatnonzero(np.isnan(numbers)).tolist():
        values[i] = b""
    return values


def _naive_utc(stamps: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(stamps)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps


def epoch_stamps(stamps: pd.Series) -> list[int]:
    """Event timestamps as Feast's sqlite adapter stores them: naive UTC, epoch seconds."""
    micros = _naive_utc(stamps).to_numpy("datetime64[us]").tolist()
    return [adapt_datetime_epoch(stamp) for stamp in micros]


def timestamp_protos(stamps: pd.Series) -> list[Timestamp]:
    """Event timestamps as Timestamp.FromDatetime of the microsecond datetimes Feast's
    conversion gives."""
    micros = _naive_utc(stamps).to_numpy("datetime64[us]").astype("int64")
    seconds, nanos = np.divmod(micros, 1_000_000)
    return [
        Timestamp(seconds=s, nanos=n * 1000)
        for s, n in zip(seconds.tolist(), nanos.tolist(), strict=True)
    ]


def timestamp_proto(stamp: datetime) -> Timestamp:
    found = Timestamp()
    found.FromDatetime(stamp)
    return found


def _python(column: pd.Series) -> Any:
    """A column as Feast's converter receives it: through Arrow, to numpy."""
    return pa.Array.from_pandas(column).to_numpy(zero_copy_only=False)
