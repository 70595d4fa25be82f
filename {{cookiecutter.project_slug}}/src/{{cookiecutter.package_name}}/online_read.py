"""Online reads from the Feast store: what the service reads per request, and the same
read as a frame for checks (materialization.verify_online) and scripts.

The service fetches the feature service once (feature_service) and reads through it
(read_online): plain arrays, no DataFrame, no registry lookup per request. Feast's
registry cache keeps the definitions in memory and re-reads the registry file only when
it changed (a materialization writes it) or after its cache_ttl_seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .contract import DatasetContract
from .features import FEATURE_SERVICE


@dataclass(frozen=True)
class OnlineRows:
    """Feature values read from the online store: the ids it knows (in the order asked),
    their values (float64, one row per known id, one column per feature of `columns`,
    contract.feature_columns; NaN where a value is missing) and the ids it does not know."""

    ids: list[Any]
    values: np.ndarray
    unknown: list[Any]
    columns: list[str]

    def rows(self, mask: np.ndarray) -> OnlineRows:
        """The known ids where `mask` (one bool per id) is true, with their values."""
        ids = [i for i, keep in zip(self.ids, mask, strict=True) if keep]
        return OnlineRows(ids, self.values[mask], [], self.columns)


def feature_service(store: Any) -> Any:
    """The project's feature service, to fetch once and pass to every read: asking the
    registry for it per read re-reads the registry file each time (and makes Feast
    resolve the features anew: its resolution cache is dropped on every registry read)."""
    return store.get_feature_service(FEATURE_SERVICE)


def read_online(
    store: Any, service: Any, ids: list[int] | list[str], contract: DatasetContract
) -> OnlineRows:
    """The newest online values of `ids` through `service` (feature_service), as arrays;
    ids are keyed as dataset.entity.dtype says (int or str)."""
    key, columns = contract.entity.key, contract.feature_columns
    ids = contract.key_values(list(ids))
    if not ids:
        return OnlineRows([], np.empty((0, len(columns))), [], columns)
    response = store.get_online_features(features=service, entity_rows=[{key: i} for i in ids])
    values = response.to_dict()
    # a missing value (None) becomes NaN; an id without any value is unknown online
    matrix = np.array([values[c] for c in columns], dtype=np.float64).T
    unknown = np.isnan(matrix).all(axis=1)
    if not unknown.any():
        return OnlineRows(ids, matrix, [], columns)
    return OnlineRows(
        [i for i, u in zip(ids, unknown, strict=True) if not u],
        matrix[~unknown],
        [i for i, u in zip(ids, unknown, strict=True) if u],
        columns,
    )


def online_features(
    store: Any, ids: list[int] | list[str], contract: DatasetContract
) -> tuple[pd.DataFrame, list[int] | list[str]]:
    """Feature rows (key, then contract.feature_columns) for the ids known online, and the
    unknown ids: read_online as a frame, for checks and scripts (the service reads arrays)."""
    key, columns = contract.entity.key, contract.feature_columns
    rows = read_online(store, feature_service(store), ids, contract)
    frame = pd.DataFrame(rows.values, columns=columns)
    frame.insert(0, key, rows.ids)
    return frame, rows.unknown
