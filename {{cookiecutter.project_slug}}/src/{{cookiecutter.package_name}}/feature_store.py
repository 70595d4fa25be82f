"""Feast access: one feature service feeds training (historical, point-in-time
correct) and serving (online, after materialization).

features/definitions.py builds the Feast objects from the dataset contract; every
stage applies them before use (idempotent), so a fresh clone needs no manual
`feast apply`. The functions take the contract and check the definitions agree.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc

from .contract import DatasetContract
from .errors import ConfigError, StageInputError
from .features import FEATURE_SERVICE

FEATURE_REPO = Path("features")
DEFAULT_REDIS = "127.0.0.1:6379"
# Registry tag on the feature view: the schema fingerprint its online rows were written
# with (materialization.py); kept across `open_store`'s apply.
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


def freshness(store: Any, contract: DatasetContract) -> str | None:
    """Until when the online store holds materialized features (ISO), if ever."""
    end = store.get_feature_view(contract.feature_view).most_recent_end_time
    return end.isoformat() if end else None
