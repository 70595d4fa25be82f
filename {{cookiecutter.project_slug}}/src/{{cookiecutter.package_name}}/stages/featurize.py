"""Stage `featurize`: model features and label events from the raw batches."""

from __future__ import annotations

import logging

import pandas as pd

from ..batches import raw_batch_files
from ..config import PathsConfig
from ..contract import DatasetContract
from ..errors import StageInputError
from ..features import build_features, build_labels
from ..files import ParquetStream

log = logging.getLogger(__name__)


def run(paths: PathsConfig, contract: DatasetContract) -> int:
    """Write the feature table and the label events; return the number of rows."""
    # One daily batch at a time: memory stays at one day's rows, whatever the window.
    with (
        ParquetStream(paths.feature_table) as features,
        ParquetStream(paths.label_table) as labels,
    ):
        for path in raw_batch_files(paths.raw):
            raw = pd.read_parquet(path)
            try:
                features.write(build_features(raw, contract))
                labels.write(build_labels(raw, contract))
            except ValueError as exc:
                raise StageInputError(f"featurize {path.name}: {exc}") from exc
    log.info(
        "wrote %d feature rows x %d features to %s",
        features.rows,
        len(contract.feature_columns),
        paths.features,
    )
    return features.rows
