"""Feast access: one feature service feeds training (historical, point-in-time
correct) and serving (online, after materialization).

The definitions live in features/definitions.py; every stage applies them
before use (idempotent), so a fresh clone needs no manual `feast apply`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import PipelineError, StageInputError
from .features import ENTITY, FEATURE_COLUMNS, FEATURE_SERVICE, TIMESTAMP
from .logs import progress

log = logging.getLogger(__name__)

FEATURE_REPO = Path("features")
FEATURE_VIEW = "customer_features"
DEFAULT_REDIS = "127.0.0.1:6379"
# Registry tag on the feature view: the schema fingerprint its online rows were written with.
ONLINE_SCHEMA_TAG = "online_schema"


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


def schema_fingerprint(store: Any, view: Any) -> str:
    """What the view's online rows depend on: entity join keys and types, feature names
    and types, the source path, the online store type and its entity key serialization.
    Feast itself keeps a view's materialization intervals across such a change."""
    spec = {
        "feature_view": view.name,
        "entities": sorted(
            [store.get_entity(name).join_key, store.get_entity(name).value_type.name]
            for name in view.entities
        ),
        "entity_columns": sorted([f.name, str(f.dtype)] for f in view.entity_columns),
        "features": sorted([f.name, str(f.dtype)] for f in view.features),
        "source": getattr(view.batch_source, "path", None),
        "online_store": store.config.online_store.type,
        "entity_key_serialization_version": store.config.entity_key_serialization_version,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _online_rows_present(store: Any, view: Any) -> bool:
    """Whether the online store holds any row of the view's table (SQLite; `feast apply`
    recreates a dropped table empty) or any entity key of the project (Redis); other
    stores are assumed to."""
    kind = store.config.online_store.type
    provider = store._get_provider()
    if kind == "sqlite":
        from feast.infra.online_stores.sqlite import _table_id

        conn = provider.online_store._get_conn(store.config)
        table = _table_id(
            store.project, view, store.config.registry.enable_online_feature_view_versioning
        )
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone():
            return False
        return conn.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone() is not None
    if kind == "redis":
        from feast.infra.online_stores.helpers import _redis_key_prefix

        client = provider.online_store._get_client(store.config.online_store)
        pattern = b"".join([_redis_key_prefix(view.join_keys), b"*", store.project.encode()])
        return next(iter(client.scan_iter(match=pattern, count=1000)), None) is not None
    return True


def _reset_online_table(store: Any, view: Any) -> None:
    """Drop the view's online rows and recreate its (empty) table, as `feast apply` does
    for a removed and an added view: SQLite drops the table, Redis deletes the view's
    fields (and its `_ts:` timestamps) from every entity key of the project."""
    provider = store._get_provider()
    entities = [store.get_entity(name) for name in view.entities]
    provider.update_infra(store.project, [view], [], [], entities, partial=True)
    provider.update_infra(store.project, [], [view], [], entities, partial=True)


def historical_features(store: Any, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join through the feature service: for each (customer, timestamp)
    row the newest feature values at or before that timestamp (within the TTL)."""
    service = store.get_feature_service(FEATURE_SERVICE)
    frame = store.get_historical_features(entity_df=entity_df, features=service).to_df()
    frame = frame.dropna(subset=FEATURE_COLUMNS, how="all")  # no feature history: cannot train
    others = [c for c in entity_df.columns if c not in (ENTITY, TIMESTAMP)]
    return (
        frame[[ENTITY, TIMESTAMP, *others, *FEATURE_COLUMNS]]
        .sort_values([TIMESTAMP, ENTITY], kind="stable")
        .reset_index(drop=True)
    )


def materialize(
    store: Any, features: pd.DataFrame, chunk_rows: int = 50_000, verify_entities: int = 200
) -> dict[str, Any]:
    """Load feature values newer than the last materialization into the online store.

    Like `feast materialize`, but in bounded memory: the online store keeps one value
    per customer, so only each customer's newest row in the window is written, in
    chunks of `chunk_rows` (Feast's own materialize holds every row of the window and
    its protobuf form at once: ~4.7 GB for 1M rows). The window is then recorded in
    the registry exactly as `feast materialize` records it.

    The online rows are tied to the view's schema (schema_fingerprint, recorded as the
    view's ONLINE_SCHEMA_TAG): when it changed, was never recorded, or the online table
    is gone, the view's online table is recreated and the whole window written again.
    Afterwards `verify_entities` sampled customers are read back (verify_online).
    """
    view = store.get_feature_view(FEATURE_VIEW)
    fingerprint = schema_fingerprint(store, view)
    latest = features[TIMESTAMP].max().to_pydatetime()
    end = latest + dt.timedelta(seconds=1)
    start = view.most_recent_end_time
    reset = _reset_reason(store, view, fingerprint)
    if reset:
        if start is not None:
            log.warning("online store reset: %s; materializing the whole window again", reset)
        _reset_online_table(store, view)
        start = features[TIMESTAMP].min().to_pydatetime()
    in_window = (features[TIMESTAMP] >= pd.Timestamp(start)) & (
        features[TIMESTAMP] < pd.Timestamp(end)
    )
    written = 0
    if start >= end:
        log.info("online store already holds features up to %s: nothing to materialize", start)
    else:
        written = _write_newest(store, features.loc[in_window], chunk_rows)
        store.registry.apply_materialization(view, store.project, start, end)
    try:
        checked = verify_online(store, features, verify_entities)
    except PipelineError:
        _record_online_schema(store, None)  # the next run rewrites the whole window
        raise
    _record_online_schema(store, fingerprint)
    return {
        "feature_view": FEATURE_VIEW,
        "feature_service": FEATURE_SERVICE,
        "online_store": store.config.online_store.type,
        "schema_fingerprint": fingerprint,
        "full_rewrite": bool(reset),
        "window_start": start.isoformat(),
        "materialized_until": end.isoformat(),
        "rows_in_window": int(in_window.sum()),
        "customers_written": written,
        "customers_verified": checked,
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
    if not _online_rows_present(store, view):
        return "the online store holds no rows (table/keys) for the view"
    return None


def _write_newest(store: Any, window: pd.DataFrame, chunk_rows: int) -> int:
    """Each customer's newest row of `window`, `chunk_rows` at a time; how many."""
    newest = (
        window[[ENTITY, TIMESTAMP, *FEATURE_COLUMNS]]
        .sort_values(TIMESTAMP, kind="stable")
        .drop_duplicates(ENTITY, keep="last")
    )
    written = 0
    with progress() as bar:
        task = bar.add_task("materialize (customers)", total=len(newest))
        for offset in range(0, len(newest), chunk_rows):
            chunk = newest.iloc[offset : offset + chunk_rows]
            store.write_to_online_store(FEATURE_VIEW, chunk, transform_on_write=False)
            written += len(chunk)
            bar.advance(task, len(chunk))
    return written


def _record_online_schema(store: Any, fingerprint: str | None) -> None:
    """Set (or clear) the view's ONLINE_SCHEMA_TAG in the registry; a tag-only change
    keeps the view's materialization intervals."""
    view = store.registry.get_feature_view(FEATURE_VIEW, store.project)
    tags = {k: v for k, v in view.tags.items() if k != ONLINE_SCHEMA_TAG}
    if fingerprint is not None:
        tags[ONLINE_SCHEMA_TAG] = fingerprint
    view.tags = tags
    store.registry.apply_feature_view(view, store.project)


def verify_online(store: Any, features: pd.DataFrame, sample: int, seed: int = 0) -> int:
    """Read back, through the feature service, the newest row of `sample` customers
    (seeded random choice) and raise a PipelineError when any is unknown online or
    holds other values. Memory: only the sampled customers' rows are copied."""
    ids = features[ENTITY].unique()
    if sample <= 0 or len(ids) == 0:
        return 0
    chosen = np.random.default_rng(seed).choice(ids, size=min(sample, len(ids)), replace=False)
    expected = (
        features.loc[features[ENTITY].isin(chosen), [ENTITY, TIMESTAMP, *FEATURE_COLUMNS]]
        .sort_values(TIMESTAMP, kind="stable")
        .drop_duplicates(ENTITY, keep="last")
        .set_index(ENTITY)
        .loc[chosen, FEATURE_COLUMNS]
    )
    online, unknown = online_features(store, [int(i) for i in chosen])
    online = online.set_index(ENTITY).reindex(expected.index)[FEATURE_COLUMNS]
    want = expected.to_numpy(dtype="float64")
    got = online.to_numpy(dtype="float64")
    same = np.isclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True).all(axis=1)
    differ = int((~same).sum()) - len(unknown)
    if unknown or differ:
        raise PipelineError(
            f"materialize: the online store does not hold what was materialized: of "
            f"{len(chosen)} sampled customers, {len(unknown)} are unknown online and "
            f"{differ} hold values other than their newest row in the feature table "
            f"(e.g. customer {int(expected.index[~same][0])}). The online store was "
            "changed or emptied behind Feast's back, or holds rows of an older feature "
            "schema. Its recorded schema is cleared, so the next run rewrites the whole "
            "window: try `dvc repro --force materialize`."
        )
    return len(chosen)


def online_features(store: Any, customer_ids: list[int]) -> tuple[pd.DataFrame, list[int]]:
    """Feature rows (FEATURE_COLUMNS order) for the known customers, and the unknown ids."""
    service = store.get_feature_service(FEATURE_SERVICE)
    values = store.get_online_features(
        features=service, entity_rows=[{ENTITY: int(i)} for i in customer_ids]
    ).to_dict()
    frame = pd.DataFrame({ENTITY: values[ENTITY], **{c: values[c] for c in FEATURE_COLUMNS}})
    unknown_mask = frame[FEATURE_COLUMNS].isna().all(axis=1)
    known = frame.loc[~unknown_mask].reset_index(drop=True)
    known[FEATURE_COLUMNS] = known[FEATURE_COLUMNS].astype("float64")
    return known, [int(i) for i in frame.loc[unknown_mask, ENTITY]]


def freshness(store: Any) -> str | None:
    """Until when the online store holds materialized features (ISO), if ever."""
    end = store.get_feature_view(FEATURE_VIEW).most_recent_end_time
    return end.isoformat() if end else None
