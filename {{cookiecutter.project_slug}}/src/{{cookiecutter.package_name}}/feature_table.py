"""The feature table as `materialize` reads it: each part only when a run needs it.

A daily run writes the rows newer than the last materialization (the new day), and
checks the online store against the whole table: every entity counted, a sample of
them read back. So `FeatureFiles` (the featurize stage's parquet: a folder of day
parts, or one file) reads every row's key and timestamp, the rows from an instant on
(only the parts whose footers show rows that new: parquet_parts.py), and the rows of
given entities; never the whole table unless the whole window is written.
`FeatureFrame` answers the same from a DataFrame in memory. Both give rows in the
table's order, as a read of the whole table would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .contract import DatasetContract
from .errors import StageInputError
from .feature_store import check_entity_keys
from .files import require
from .parquet_parts import files_from


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
        import pyarrow.dataset as ds

        self.path = require(path, "featurize")
        self._dataset = ds.dataset(self.path, format="parquet")

    @property
    def columns(self) -> list[str]:
        return list(self._dataset.schema.names)

    def index(self, key: str, stamp: str) -> pd.DataFrame:
        return self._dataset.to_table(columns=[key, stamp]).to_pandas()

    def since(self, stamp: str, start: pd.Timestamp) -> pd.DataFrame:
        import pyarrow.dataset as ds

        parts = files_from([Path(f) for f in self._dataset.files], stamp, start)
        if not parts:
            return self._dataset.schema.empty_table().to_pandas()
        frame = ds.dataset(parts, schema=self._dataset.schema, format="parquet").to_table()
        rows = frame.to_pandas()
        return rows.loc[rows[stamp] >= start]

    def of(self, key: str, keys: Sequence[Any]) -> pd.DataFrame:
        import pyarrow.dataset as ds

        return self._dataset.to_table(filter=ds.field(key).isin(list(keys))).to_pandas()


def checked_index(table: FeatureFrame | FeatureFiles, contract: DatasetContract) -> pd.DataFrame:
    """The key and timestamp of every row of the table, once the table is checked: the
    contract's key (typed, never empty), timestamp and features, and rows."""
    key, stamp = contract.entity.key, contract.timestamp
    if key not in table.columns:  # named with the table's columns
        check_entity_keys(pd.DataFrame(columns=table.columns), contract, "the feature table")
    missing = [c for c in [stamp, *contract.feature_columns] if c not in table.columns]
    index = table.index(key, stamp) if not missing else pd.DataFrame(columns=[key])
    check_entity_keys(index, contract, "the feature table")
    if missing or not len(index):
        what = f"lacks {missing[:5]} (params.yaml dataset)" if missing else "has no rows"
        raise StageInputError(f"the feature table {what}: run `dvc repro featurize`")
    return index
