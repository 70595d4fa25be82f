"""Stage `featurize`: model features and label events from the raw batches, one file of
each per day (partitions.py).

`<paths.features>/features.parquet/` and `labels.parquet/` are folders of daily part
files, read as one table. A day is built once: a daily run builds the new day, keeps
the days whose raw batch is unchanged (its md5, as in `_manifest.json`) and drops the
days that left the window. A change of the contract or of the code that computes
features (fingerprint) rebuilds every day.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .. import contract as contract_module
from .. import derived, features, partitions
from ..batches import BATCH_PREFIX, raw_batch_files
from ..config import PathsConfig
from ..contract import DatasetContract
from ..errors import StageInputError
from ..features import build_features, build_labels
from ..files import file_digest
from ..logs import progress
from ..partitions import DayFiles

log = logging.getLogger(__name__)


def outputs(paths: PathsConfig) -> tuple[DayFiles, DayFiles]:
    """The feature and the label table: one part file per day each."""
    return DayFiles(paths.feature_table), DayFiles(paths.label_table)


def code_fingerprint(contract: DatasetContract) -> str:
    """What every day's files depend on besides its raw batch: this code and the contract."""
    modules = [features, derived, contract_module, partitions]
    return partitions.fingerprint(
        [*modules, Path(__file__)], contract=contract.model_dump(mode="json")
    )


def build_day(raw_file: Path, contract: DatasetContract) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The feature rows and label events of one raw batch."""
    raw = pd.read_parquet(raw_file)
    try:
        return build_features(raw, contract), build_labels(raw, contract)
    except ValueError as exc:
        raise StageInputError(f"featurize {raw_file.name}: {exc}") from exc


def run(paths: PathsConfig, contract: DatasetContract) -> int:
    """Write the feature and label files of the days not built yet; return the rows of
    the feature table."""
    raw_files = raw_batch_files(paths.raw)  # the StageInputError when there are none
    batches = DayFiles(paths.raw, BATCH_PREFIX).existing()
    if len(batches) != len(raw_files):
        raise StageInputError(f"{paths.raw} holds batch files not named batch_<YYYY-MM-DD>")
    fingerprint = code_fingerprint(contract)
    wanted = {day: file_digest(path) for day, path in batches.items()}
    feature_files, label_files = outputs(paths)
    plan = partitions.plan(paths.features, fingerprint, wanted, [feature_files, label_files])
    entries = dict(plan.kept_entries)
    # One daily batch at a time: memory stays at one day's rows, whatever the window.
    with progress() as bar:
        task = bar.add_task("featurize (days)", total=len(plan.build))
        for day in plan.build:
            feature_rows, labels = build_day(batches[day], contract)
            partitions.write_part(feature_rows, feature_files.path(day))
            partitions.write_part(labels, label_files.path(day))
            entries[day.isoformat()] = {"key": wanted[day], "rows": len(feature_rows)}
            bar.advance(task)
    partitions.record(paths.features, fingerprint, entries)
    rows = sum(int(entry["rows"]) for entry in entries.values())
    log.info(
        "featurize: %s; %d feature rows x %d features over %d days in %s",
        plan.describe(),
        rows,
        len(contract.feature_columns),
        len(entries),
        paths.features,
    )
    return rows
