"""Feast access: one feature service feeds training (historical, point-in-time
correct) and serving (online, after materialization).

The definitions live in features/definitions.py; every stage applies them
before use (idempotent), so a fresh clone needs no manual `feast apply`.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import StageInputError
from .features import ENTITY, FEATURE_COLUMNS, FEATURE_SERVICE, TIMESTAMP
from .logs import progress

log = logging.getLogger(__name__)

FEATURE_REPO = Path("features")
FEATURE_VIEW = "customer_features"
DEFAULT_REDIS = "127.0.0.1:6379"


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
        store.apply(_definitions(repo))
    return store


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


def materialize(store: Any, features: pd.DataFrame, chunk_rows: int = 50_000) -> dict[str, Any]:
    """Load feature values newer than the last materialization into the online store.

    Like `feast materialize`, but in bounded memory: the online store keeps one value
    per customer, so only each customer's newest row in the window is written, in
    chunks of `chunk_rows` (Feast's own materialize holds every row of the window and
    its protobuf form at once: ~4.7 GB for 1M rows). The window is then recorded in
    the registry exactly as `feast materialize` records it.
    """
    view = store.get_feature_view(FEATURE_VIEW)
    latest = features[TIMESTAMP].max().to_pydatetime()
    end = latest + dt.timedelta(seconds=1)
    start = view.most_recent_end_time or features[TIMESTAMP].min().to_pydatetime()
    in_window = (features[TIMESTAMP] >= pd.Timestamp(start)) & (
        features[TIMESTAMP] < pd.Timestamp(end)
    )
    written = 0
    if start >= end:
        log.info("online store already holds features up to %s: nothing to materialize", start)
    else:
        newest = (
            features.loc[in_window, [ENTITY, TIMESTAMP, *FEATURE_COLUMNS]]
            .sort_values(TIMESTAMP, kind="stable")
            .drop_duplicates(ENTITY, keep="last")
        )
        with progress() as bar:
            task = bar.add_task("materialize (customers)", total=len(newest))
            for offset in range(0, len(newest), chunk_rows):
                chunk = newest.iloc[offset : offset + chunk_rows]
                store.write_to_online_store(FEATURE_VIEW, chunk, transform_on_write=False)
                written += len(chunk)
                bar.advance(task, len(chunk))
        store.registry.apply_materialization(view, store.project, start, end)
    return {
        "feature_view": FEATURE_VIEW,
        "feature_service": FEATURE_SERVICE,
        "online_store": store.config.online_store.type,
        "window_start": start.isoformat(),
        "materialized_until": end.isoformat(),
        "rows_in_window": int(in_window.sum()),
        "customers_written": written,
    }


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
