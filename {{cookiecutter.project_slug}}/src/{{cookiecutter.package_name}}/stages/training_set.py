"""Stage `training_set`: matured label events joined point-in-time with their features
through the Feast feature service.

A label counts only once its outcome is known: events younger than
`dataset.label.horizon_days` at the window's end are held back (split.matured_labels),
so the newest test days of the time split are the newest matured days.
"""

from __future__ import annotations

import logging

from ..config import PathsConfig, SplitConfig, Window
from ..contract import DatasetContract
from ..errors import StageInputError
from ..feature_store import historical_features, open_store
from ..files import read_parquet, write_parquet
from ..split import matured_labels

log = logging.getLogger(__name__)


def run(paths: PathsConfig, window: Window, split: SplitConfig, contract: DatasetContract) -> int:
    """Write the training set (key, timestamp, label, slice columns, model features);
    return its number of rows."""
    labels = read_parquet(paths.label_table, "featurize")
    matured = matured_labels(labels, contract, window, split)
    frame = historical_features(open_store(), matured, contract)
    wanted = [contract.label.column, *contract.slices, *contract.feature_columns]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise StageInputError(
            f"the joined training set lacks {missing} (params.yaml dataset): re-run "
            "`dvc repro featurize` and check features/definitions.py serves the contract"
        )
    write_parquet(frame, paths.training_set)
    log.info(
        "training set: %d rows (of %d matured labels) -> %s",
        len(frame),
        len(matured),
        paths.training_set,
    )
    return len(frame)
