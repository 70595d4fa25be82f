"""Stage `training_set`: label events joined point-in-time with their features through
the Feast feature service."""

from __future__ import annotations

import logging

from ..config import PathsConfig
from ..feature_store import historical_features, open_store
from ..files import read_parquet, write_parquet

log = logging.getLogger(__name__)


def run(paths: PathsConfig) -> int:
    """Write the training set; return its number of rows."""
    labels = read_parquet(paths.label_table, "featurize")
    frame = historical_features(open_store(), labels)
    write_parquet(frame, paths.training_set)
    log.info(
        "training set: %d rows (of %d labels) -> %s", len(frame), len(labels), paths.training_set
    )
    return len(frame)
