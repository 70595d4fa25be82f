"""Feast access: one feature service feeds training (historical, point-in-time
correct) and serving (online, after materialization).

features/definitions.py builds the Feast objects from the dataset contract; every
stage applies them before use (idempotent), so a fresh clone needs no manual
`feast apply`. The functions take the contract and check the definitions agree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from .contract import DatasetContract
from .errors import ConfigError, PipelineError, StageInputError
from .features import FEATURE_SERVICE
from .logs import progress
from .online_read import online_features

if TYPE_CHECKING:  # imported where used: only the materialize stage reads the table so
    from .feature_table import FeatureFiles, FeatureFrame

log = logging.getLogger(__name__)

FEATURE_REPO = Path("features")
DEFAULT_REDIS = "127.0.0.1:6379"
# Registry tag on the feature view: the schema fingerprint its online rows were written with.
ONLINE_SCHEMA_TAG = "online_schema"
REPAIR = (
    "Its recorded schema is cleared, so the next run rewrites the whole window: "
    "try `dvc repro --force materialize`."
)


def _definitions(repo: Path) -> list[Any]:
    """Every Feast object declared in <repo>/definitions.py."""
    from feast import Entity, FeatureService, FeatureView, FileSource

    path = repo / "definitions.py"
    if not path.is_file():
        raise StageInputError(f"{path} not found: the Feast repository is incomplete")
    spec = importlib.util.spec_from_file_location(f"_feast_definitions_{abs(hash(path))}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    kinds = (Entity, FileSource, FeatureView, FeatureService)
    return [obj for obj in vars(module).values() if isinstance(obj, kinds)]


def open_store(repo: Path = FEATURE_REPO, yaml_file: Path | None = None, apply: bool = True) -> Any:
    """A FeatureStore on `repo` with the definitions applied."""
    os.environ.setdefault("FEAST_REDIS_CONNECTION", DEFAULT_REDIS)
    logging.getLogger("feast").setLevel(logging.WARNING)
    from feast import FeatureStore

    if not (yaml_file or repo / "feature_store.yaml").is_file():
        raise StageInputError(f"{repo}/feature_store.yaml not found: run from the project root")
    (repo / "state").mkdir(exist_ok=True)
    store = FeatureStore(repo_path=str(repo), fs_yaml_file=yaml_file)
    if apply:
        objects = _definitions(repo)
        _keep_online_schema_tags(store, objects)
        store.apply(objects)
    return store


def _keep_online_schema_tags(store: Any, objects: list[Any]) -> None:
    """Carry the registry's ONLINE_SCHEMA_TAG over to the definitions about to be applied:
    Feast replaces a view's tags with the declared ones on every apply."""
    from feast import FeatureView
    from feast.errors import FeatureViewNotFoundException

    for obj in objects:
        if not isinstance(obj, FeatureView):
            continue
        try:
            registered = store.registry.get_feature_view(obj.name, store.project)
        except FeatureViewNotFoundException:
            continue
        if ONLINE_SCHEMA_TAG in registered.tags:
            obj.tags = {**obj.tags, ONLINE_SCHEMA_TAG: registered.tags[ONLINE_SCHEMA_TAG]}


def feature_view(store: Any, contract: DatasetContract) -> Any:
    """The contract's feature view; a ConfigError when the Feast definitions disagree with
    the contract (features/definitions.py reads the project's params.yaml)."""
    from feast.errors import FeatureViewNotFoundException

    fix = (
        "features/definitions.py builds the Feast objects from the params.yaml beside "
        "features/: run with that file (--params) or make the two `dataset` sections agree"
    )
    try:
        view = store.get_feature_view(contract.feature_view)
    except FeatureViewNotFoundException:
        fix = fix if store.list_feature_views() else "none is registered: run `make feast-apply`"
        raise ConfigError(
            f"the Feast repository has no feature view {contract.feature_view!r} "
            f"(dataset.entity.name {contract.entity.name!r}): {fix}"
        ) from None
    keys = [f.name for f in view.entity_columns]
    kinds = [store.get_entity(name).value_type.name for name in view.entities]
    want_kind = "INT64" if contract.entity.dtype == "int" else "STRING"
    if keys != [contract.entity.key] or kinds != [want_kind]:
        raise ConfigError(
            f"feature view {view.name!r} is keyed by {keys} ({kinds}), the contract by "
            f"{contract.entity.key!r} ({contract.entity.dtype}, dataset.entity): {fix}"
        )
    declared = [f.name for f in view.features]
    if declared != contract.feature_columns:
        differ = sorted(set(declared) ^ set(contract.feature_columns))
        what = f"differ in {differ[:5]}" if differ else "are the same in another order"
        raise ConfigError(f"feature view {view.name!r} and the contract's features {what}: {fix}")
    return view


def check_entity_keys(frame: pd.DataFrame, contract: DatasetContract, where: str) -> None:
    """A StageInputError unless `frame` has the entity key column, typed per the contract
    (dataset.entity.dtype) and never empty."""
    key, dtype = contract.entity.key, contract.entity.dtype
    if key not in frame.columns:
        raise StageInputError(
            f"{where} has no entity key column {key!r} (dataset.entity.key); "
            f"columns: {list(frame.columns)[:10]}"
        )
    if empty := int(frame[key].isna().sum()):
        raise StageInputError(f"{where}: {empty} rows have no {key} (dataset.entity.key)")
    kind = pd.api.types.infer_dtype(frame[key], skipna=False)
    if len(frame) and kind != ("integer" if dtype == "int" else "string"):
        raise StageInputError(
            f"{where}: {key} holds {kind} values, not {dtype} (dataset.entity.dtype): "
            "rebuild it (featurize) after a contract change, or fix the contract"
        )


def schema_fingerprint(store: Any, view: Any) -> str:
    """What the view's online rows depend on: its entity (name, join key, value type: the
    contract's entity name, key and dtype, as feature_view checks), its feature names and
    types (the contract's features), the source path, the online store type and its key
    serialization. Feast keeps a view's materialization intervals across such a change."""
    spec = {
        "feature_view": view.name,
        "entities": sorted(
            [name, store.get_entity(name).join_key, store.get_entity(name).value_type.name]
            for name in view.entities
        ),
        "entity_columns": sorted([f.name, str(f.dtype)] for f in view.entity_columns),
        "features": sorted([f.name, str(f.dtype)] for f in view.features),
        "source": getattr(view.batch_source, "path", None),
        "online_store": store.config.online_store.type,
        "entity_key_serialization_version": store.config.entity_key_serialization_version,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def online_entity_count(store: Any, view: Any, first_only: bool = False) -> int | None:
    """How many entity keys the online store holds for the view (SQLite: in its table, 0
    when gone; Redis: the project's keys with its join keys); None for other stores.
    `first_only`: 1 as soon as one is found (whether it holds any, without counting)."""
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.infra.online_stores.sqlite import SqliteOnlineStore, _table_id

    provider = store._get_provider()
    if isinstance(provider.online_store, SqliteOnlineStore):
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


def historical_features(
    store: Any, entity_df: pd.DataFrame, contract: DatasetContract
) -> pd.DataFrame:
    """Point-in-time join through the feature service: for each (entity key, timestamp)
    row the newest feature values at or before that timestamp (within the TTL). Rows
    without any feature value are dropped; the rest come sorted by (timestamp, key), rows
    of the same key and timestamp in the offline store's order (the project's store, in
    offline_store.py: the order given)."""
    key, stamp, columns = contract.entity.key, contract.timestamp, contract.feature_columns
    feature_view(store, contract)
    check_entity_keys(entity_df, contract, "the entity rows")
    if stamp not in entity_df.columns:
        raise StageInputError(f"the entity rows have no {stamp} column (dataset.timestamp)")
    service = store.get_feature_service(FEATURE_SERVICE)
    table = store.get_historical_features(entity_df=entity_df, features=service).to_arrow()
    others = [c for c in entity_df.columns if c not in (key, stamp)]
    table = table.select([key, stamp, *others, *columns])
    # In Arrow, not pandas: one conversion at the end, not a copy of every column per step.
    unknown = None  # no feature history (every feature null or NaN): cannot train
    for column in columns:
        missing = pc.is_null(table[column], nan_is_null=True)
        unknown = missing if unknown is None else pc.and_(unknown, missing)
    if unknown is not None and pc.any(unknown).as_py():
        table = table.filter(pc.invert(unknown))
    # a stable sort: rows with the same key and timestamp keep the entity rows' order
    table = table.take(pc.sort_indices(table, sort_keys=[(stamp, "ascending"), (key, "ascending")]))
    return table.to_pandas()


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
    `features`: the table in memory, or its parquet (FeatureFiles: a run reads every
    row's key and timestamp, the parts it writes from and the sampled entities' rows)."""
    from .feature_table import FeatureFrame, checked_index

    view = feature_view(store, contract)
    table = FeatureFrame(features) if isinstance(features, pd.DataFrame) else features
    index = checked_index(table, contract)
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
        window = table.since(contract.timestamp, pd.Timestamp(start))
        window = window.loc[window[contract.timestamp] < pd.Timestamp(end)]
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
    from .feature_table import newest_rows

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
    from .feature_table import newest_rows

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


def freshness(store: Any, contract: DatasetContract) -> str | None:
    """Until when the online store holds materialized features (ISO), if ever."""
    end = store.get_feature_view(contract.feature_view).most_recent_end_time
    return end.isoformat() if end else None
