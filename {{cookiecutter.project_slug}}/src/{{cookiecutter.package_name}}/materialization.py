"""Materialization: the newest feature values into the online store, checked, reading
of the feature table only what a run needs.

`materialize` writes each entity's newest row newer than the last run (the whole window
when the feature view's schema changed or the online rows are gone), then reads a sample
of entities back and counts the entities online. A daily run uses only the newest days
of the table, so `FeatureFiles` (the featurize stage's parquet: a folder of day parts,
or one file) reads every row's key and timestamp, the rows from an instant on (only the
parts whose footers show rows that new: parquet_parts.py), and the rows of the sampled
entities; the whole table only when the whole window is written. `FeatureFrame` answers
the same from a DataFrame in memory. Both give rows in the table's order, as a read of
the whole table would: the online store ends up as after a run over the whole table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from .contract import DatasetContract
from .errors import PipelineError, StageInputError
from .feature_store import ONLINE_SCHEMA_TAG, check_entity_keys, feature_view
from .features import FEATURE_SERVICE
from .files import require
from .logs import progress
from .online_read import online_features
from .parquet_parts import files_from

log = logging.getLogger(__name__)

REPAIR = (
    "Its recorded schema is cleared, so the next run rewrites the whole window: "
    "try `dvc repro --force materialize`."
)


def newest_rows(features: pd.DataFrame, contract: DatasetContract) -> pd.DataFrame:
    """Each entity's newest row (key, timestamp, features)."""
    key, stamp = contract.entity.key, contract.timestamp
    return (
        features[[key, stamp, *contract.feature_columns]]
        .sort_values(stamp, kind="stable")
        .drop_duplicates(key, keep="last")
    )


@dataclass(frozen=True)
class FeatureFrame:
    """The feature table held in memory."""

    frame: pd.DataFrame

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def index(self, key: str, stamp: str) -> pd.DataFrame:
        """The key and timestamp of every row."""
        return self.frame[[key, stamp]]

    def since(self, stamp: str, start: pd.Timestamp) -> pd.DataFrame:
        """Every row whose timestamp is at or after `start`."""
        return self.frame.loc[self.frame[stamp] >= start]

    def of(self, key: str, keys: Sequence[Any]) -> pd.DataFrame:
        """Every row of the entities `keys`."""
        return self.frame.loc[self.frame[key].isin(keys)]


class FeatureFiles:
    """The feature table in parquet at `path` (a folder of part files, or one file),
    read in pieces with pyarrow."""

    def __init__(self, path: Path) -> None:
        self.path = require(path, "featurize")
        self._dataset = ds.dataset(self.path, format="parquet")

    @property
    def columns(self) -> list[str]:
        return list(self._dataset.schema.names)

    def index(self, key: str, stamp: str) -> pd.DataFrame:
        return self._dataset.to_table(columns=[key, stamp]).to_pandas()

    def since(self, stamp: str, start: pd.Timestamp) -> pd.DataFrame:
        parts = files_from([Path(f) for f in self._dataset.files], stamp, start)
        if not parts:
            return self._dataset.schema.empty_table().to_pandas()
        rows = ds.dataset(parts, schema=self._dataset.schema, format="parquet").to_table()
        frame = rows.to_pandas()
        return frame.loc[frame[stamp] >= start]

    def of(self, key: str, keys: Sequence[Any]) -> pd.DataFrame:
        return self._dataset.to_table(filter=ds.field(key).isin(list(keys))).to_pandas()


def checked_table(
    features: pd.DataFrame | FeatureFiles, contract: DatasetContract
) -> tuple[FeatureFrame | FeatureFiles, pd.DataFrame]:
    """The feature table (a DataFrame as a FeatureFrame) and the key and timestamp of its
    every row, once checked: the contract's key (typed, never empty), timestamp and
    features, and rows."""
    table = FeatureFrame(features) if isinstance(features, pd.DataFrame) else features
    key, stamp = contract.entity.key, contract.timestamp
    if key not in table.columns:  # named with the table's columns
        check_entity_keys(pd.DataFrame(columns=table.columns), contract, "the feature table")
    missing = [c for c in [stamp, *contract.feature_columns] if c not in table.columns]
    index = table.index(key, stamp) if not missing else pd.DataFrame(columns=[key])
    check_entity_keys(index, contract, "the feature table")
    if missing or not len(index):
        what = f"lacks {missing[:5]} (params.yaml dataset)" if missing else "has no rows"
        raise StageInputError(f"the feature table {what}: run `dvc repro featurize`")
    return table, index


def schema_fingerprint(store: Any, view: Any) -> str:
    """What the view's online rows depend on: its entity (name, join key, value type: the
    contract's entity name, key and dtype, as feature_view checks), its feature names and
    types (the contract's features), the source path (within the project, so a copy at
    another root, such as an Airflow task's workspace, keeps it), the online store type
    and its key serialization. Feast keeps a view's materialization intervals across such
    a change."""
    spec = {
        "feature_view": view.name,
        "entities": sorted(
            [name, store.get_entity(name).join_key, store.get_entity(name).value_type.name]
            for name in view.entities
        ),
        "entity_columns": sorted([f.name, str(f.dtype)] for f in view.entity_columns),
        "features": sorted([f.name, str(f.dtype)] for f in view.features),
        "source": _source_in_project(store, view),
        "online_store": store.config.online_store.type,
        "entity_key_serialization_version": store.config.entity_key_serialization_version,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _source_in_project(store: Any, view: Any) -> str | None:
    """The view's source path relative to the project (the Feast repository's parent),
    or as declared when outside it."""
    path = getattr(view.batch_source, "path", None)
    if not path:
        return path
    try:
        return Path(path).relative_to(Path(store.repo_path).resolve().parent).as_posix()
    except ValueError:
        return str(path)


def online_entity_count(store: Any, view: Any, first_only: bool = False) -> int | None:
    """How many entity keys the online store holds for the view (SQLite: in its table, 0
    when gone; Redis: the project's keys with its join keys); None for other stores.
    `first_only`: 1 as soon as one is found (whether it holds any, without counting)."""
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.infra.online_stores.sqlite import SqliteOnlineStore, _table_id

    from .online_store import WideSqliteOnlineStore

    provider = store._get_provider()
    if isinstance(provider.online_store, WideSqliteOnlineStore):
        return provider.online_store.entity_count(store.config, view, first_only)
    if isinstance(provider.online_store, SqliteOnlineStore):  # Feast's: a row per feature
        conn = provider.online_store._get_conn(store.config)
        table = _table_id(
            store.project, view, store.config.registry.enable_online_feature_view_versioning
        )
        what = "1" if first_only else "COUNT(DISTINCT entity_key)"
        try:
            found = conn.execute(f'SELECT {what} FROM "{table}" LIMIT 1').fetchone()
            return found[0] if found else 0
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return 0
    if isinstance(provider.online_store, RedisOnlineStore):
        from feast.infra.online_stores.helpers import _redis_key_prefix

        client = provider.online_store._get_client(store.config.online_store)
        pattern = b"".join([_redis_key_prefix(view.join_keys), b"*", store.project.encode()])
        keys = client.scan_iter(match=pattern, count=10_000)
        return int(next(keys, None) is not None) if first_only else sum(1 for _ in keys)
    return None


def _reset_online_table(store: Any, view: Any) -> None:
    """Drop the view's online rows and recreate its (empty) table, as `feast apply` does
    for a removed and an added view: SQLite drops the table, Redis deletes the view's
    fields (and its `_ts:` timestamps) from every entity key of the project."""
    provider = store._get_provider()
    entities = [store.get_entity(name) for name in view.entities]
    provider.update_infra(store.project, [view], [], [], entities, partial=True)
    provider.update_infra(store.project, [], [view], [], entities, partial=True)


def materialize(
    store: Any,
    features: pd.DataFrame | FeatureFiles,
    contract: DatasetContract,
    chunk_rows: int = 50_000,
    verify_entities: int = 200,
) -> dict[str, Any]:
    """Load feature values newer than the last materialization into the online store.

    Like `feast materialize`, but in bounded memory: each entity's newest row in the window,
    `chunk_rows` at a time (Feast's own holds the window and its protobuf form at once:
    ~4.7 GB for 1M rows); the window is recorded in the registry as Feast does. When the
    view's schema (schema_fingerprint, its ONLINE_SCHEMA_TAG) changed or was never
    recorded, or the online table is gone, the table is recreated and the whole window
    written. Then `verify_entities` sampled entities are read back (verify_online) and
    the online store must hold at least as many entities as the feature table.
    `features`: in memory, or FeatureFiles (read in the pieces a run needs)."""
    view = feature_view(store, contract)
    table, index = checked_table(features, contract)
    stamps = index[contract.timestamp]
    fingerprint = schema_fingerprint(store, view)
    end = stamps.max().to_pydatetime() + dt.timedelta(seconds=1)
    start = view.most_recent_end_time
    reset = _reset_reason(store, view, fingerprint)
    if reset:
        if start is not None:
            log.warning("online store reset: %s; materializing the whole window again", reset)
        _reset_online_table(store, view)
        start = stamps.min().to_pydatetime()
    in_window = (stamps >= pd.Timestamp(start)) & (stamps < pd.Timestamp(end))
    written = 0
    if start >= end:
        log.info("online store already holds features up to %s: nothing to materialize", start)
    else:
        window = table.since(contract.timestamp, pd.Timestamp(start))  # all before `end`
        written = _write_newest(store, view.name, window, contract, chunk_rows)
        store.registry.apply_materialization(view, store.project, start, end)
    try:
        checked = verify_online(store, table, index, contract, verify_entities)
        online = _verify_count(store, view, index, contract)
    except PipelineError:
        _record_online_schema(store, view.name, None)  # the next run rewrites the whole window
        raise
    _record_online_schema(store, view.name, fingerprint)
    return {
        "feature_view": view.name,
        "feature_service": FEATURE_SERVICE,
        "entity": contract.entity.name,
        "online_store": store.config.online_store.type,
        "schema_fingerprint": fingerprint,
        "full_rewrite": bool(reset),
        "window_start": start.isoformat(),
        "materialized_until": end.isoformat(),
        "rows_in_window": int(in_window.sum()),
        "entities_written": written,
        "entities_verified": checked,
        "entities_online": online,
    }


def _reset_reason(store: Any, view: Any, fingerprint: str) -> str | None:
    """Why the whole window must be written again into a recreated table, if it must."""
    recorded = view.tags.get(ONLINE_SCHEMA_TAG)
    if view.most_recent_end_time is None:
        return "first materialization"
    if recorded is None:
        return "no schema fingerprint recorded for the online rows"
    if recorded != fingerprint:
        return f"the feature view's schema changed ({recorded} -> {fingerprint})"
    if online_entity_count(store, view, first_only=True) == 0:
        return "the online store holds no rows (table/keys) for the view"
    return None


def _write_newest(
    store: Any, view: str, window: pd.DataFrame, contract: DatasetContract, chunk_rows: int
) -> int:
    """Each entity's newest row of `window`, `chunk_rows` at a time; how many."""
    newest = newest_rows(window, contract)
    with progress() as bar:
        task = bar.add_task("materialize (entities)", total=len(newest))
        for offset in range(0, len(newest), chunk_rows):
            chunk = newest.iloc[offset : offset + chunk_rows]
            store.write_to_online_store(view, chunk, transform_on_write=False)
            bar.advance(task, len(chunk))
    return len(newest)


def _verify_count(
    store: Any, view: Any, index: pd.DataFrame, contract: DatasetContract
) -> int | None:
    """The online store's entity count; a PipelineError when it is below the feature
    table's distinct keys (`index`: its key column; every one was written, now or earlier)."""
    online = online_entity_count(store, view)
    expected = int(index[contract.entity.key].nunique())
    if online is not None and online < expected:
        raise PipelineError(
            f"materialize: the online store holds rows of {online} entities for "
            f"{view.name}, fewer than the {expected} distinct {contract.entity.key} values "
            "of the feature table: rows were lost or removed behind Feast's back. " + REPAIR
        )
    return online


def _record_online_schema(store: Any, view_name: str, fingerprint: str | None) -> None:
    """Set (or clear) the view's ONLINE_SCHEMA_TAG in the registry; a tag-only change
    keeps the view's materialization intervals."""
    view = store.registry.get_feature_view(view_name, store.project)
    view.tags = {k: v for k, v in view.tags.items() if k != ONLINE_SCHEMA_TAG}
    if fingerprint is not None:
        view.tags[ONLINE_SCHEMA_TAG] = fingerprint
    store.registry.apply_feature_view(view, store.project)


def verify_online(
    store: Any,
    table: FeatureFrame | FeatureFiles,
    index: pd.DataFrame,
    contract: DatasetContract,
    sample: int,
    seed: int = 0,
) -> int:
    """Read back, through the feature service, the newest row of `sample` entities of the
    table (seeded random choice among `index`'s keys) and raise a PipelineError when any
    is unknown online or holds other values. Only the sampled entities' rows are read."""
    key, columns = contract.entity.key, contract.feature_columns
    ids = index[key].unique()
    if sample <= 0 or len(ids) == 0:
        return 0
    chosen = np.random.default_rng(seed).choice(ids, size=min(sample, len(ids)), replace=False)
    chosen = contract.key_values(chosen.tolist())
    expected = newest_rows(table.of(key, chosen), contract).set_index(key).loc[chosen, columns]
    online, unknown = online_features(store, chosen, contract)
    online = online.set_index(key).reindex(expected.index)[columns]
    got, want = online.to_numpy(dtype="float64"), expected.to_numpy(dtype="float64")
    same = np.isclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True).all(axis=1)
    differ = int((~same).sum()) - len(unknown)
    if unknown or differ:
        raise PipelineError(
            f"materialize: the online store does not hold what was materialized: of "
            f"{len(chosen)} sampled entities, {len(unknown)} are unknown online and "
            f"{differ} hold values other than their newest row in the feature table "
            f"(e.g. {key} {expected.index[~same][0]!r}). The online store was changed or "
            "emptied behind Feast's back, or holds rows of an older feature schema. " + REPAIR
        )
    return len(chosen)
