"""Stage `training_set`: matured label events joined point-in-time with their features
through the Feast feature service, one part file per label day (partitions.py).

A label counts only once its outcome is known: days younger than
`dataset.label.horizon_days` at the window's end are held back (split.matured_days),
so the newest test days of the time split are the newest matured days.

`paths.training_set` is a folder of daily part files, read as one table. A daily run
joins only the day that has just matured and drops the day that left the window: a
day's rows depend on its own label events and the features at or before them, and
each label event's own feature row (featurize builds both from the same raw row) is
the newest one at its time, whatever older days the window holds. A day is joined
again when featurize rebuilt it (its key in featurize's manifest); every day is, when
this code, the Feast definitions (features/) or the contract change (fingerprint).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from .. import contract as contract_module
from .. import feature_store, features, offline_store, partitions
from ..config import PathsConfig, SplitConfig, Window
from ..contract import DatasetContract
from ..errors import StageInputError
from ..feature_store import FEATURE_REPO, historical_features, open_store
from ..partitions import DayFiles
from ..split import matured_days

log = logging.getLogger(__name__)


def code_fingerprint(contract: DatasetContract) -> str:
    """What every day's rows depend on besides its labels and features: this code, the
    Feast definitions and the contract."""
    modules = [feature_store, offline_store, features, contract_module, partitions]
    repo = [FEATURE_REPO / "definitions.py", FEATURE_REPO / "feature_store.yaml"]
    return partitions.fingerprint(
        [*modules, Path(__file__), *repo], contract=contract.model_dump(mode="json")
    )


def featurized_days(paths: PathsConfig) -> tuple[str, dict[dt.date, dict[str, Any]]]:
    """featurize's fingerprint and its days (key, rows), from its manifest."""
    manifest = partitions.read_manifest(paths.features)
    if manifest is None:
        raise StageInputError(
            f"{paths.features / partitions.MANIFEST} not found: it is written by the "
            "'featurize' stage. Run `dvc repro featurize` (or `dvc pull`)."
        )
    days = {dt.date.fromisoformat(day): entry for day, entry in manifest["days"].items()}
    return str(manifest.get("fingerprint")), days


def split_by_day(frame: pd.DataFrame, stamp: str, days: list[dt.date]) -> dict[dt.date, Any]:
    """The rows of each day (UTC) of `frame`, which is sorted by `stamp`."""
    bounds = [pd.Timestamp(day, tz="UTC") for day in [*days, days[-1] + dt.timedelta(days=1)]]
    cuts = pd.to_datetime(frame[stamp], utc=True).searchsorted(bounds, side="left")
    return {
        day: frame.iloc[cuts[i] : cuts[i + 1]].reset_index(drop=True) for i, day in enumerate(days)
    }


def join_days(
    paths: PathsConfig, days: list[dt.date], contract: DatasetContract, out: DayFiles
) -> dict[dt.date, int]:
    """Join the label events of `days` with their features through Feast; write one part
    file a day; return the rows of each."""
    label_files = DayFiles(paths.label_table)
    labels = pd.concat([pd.read_parquet(label_files.path(day)) for day in days], ignore_index=True)
    frame = historical_features(open_store(), labels, contract)
    wanted = [contract.label.column, *contract.slices, *contract.feature_columns]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise StageInputError(
            f"the joined training set lacks {missing} (params.yaml dataset): re-run "
            "`dvc repro featurize` and check features/definitions.py serves the contract"
        )
    rows = {}
    for day, part in split_by_day(frame, contract.timestamp, days).items():
        partitions.write_part(part, out.path(day))
        rows[day] = len(part)
    return rows


def run(paths: PathsConfig, window: Window, split: SplitConfig, contract: DatasetContract) -> int:
    """Write the part files of the matured days not joined yet (key, timestamp, label,
    slice columns, model features); return the training set's number of rows."""
    features_fingerprint, featurized = featurized_days(paths)
    days = matured_days(
        {day: int(entry.get("rows", 0)) for day, entry in featurized.items()},
        contract,
        window,
        split,
    )
    fingerprint = code_fingerprint(contract)
    wanted = {day: f"{features_fingerprint}:{featurized[day]['key']}" for day in days}
    out = DayFiles(paths.training_set)
    plan = partitions.plan(paths.training_set, fingerprint, wanted, [out])
    entries = dict(plan.kept_entries)
    if plan.build:
        joined = join_days(paths, plan.build, contract, out)
        entries.update(
            {day.isoformat(): {"key": wanted[day], "rows": n} for day, n in joined.items()}
        )
    partitions.record(paths.training_set, fingerprint, entries)
    rows = sum(int(entry["rows"]) for entry in entries.values())
    labels = sum(int(featurized[day].get("rows", 0)) for day in days)
    log.info(
        "training set: %s; %d rows (of %d matured labels) over %d days -> %s",
        plan.describe(),
        rows,
        labels,
        len(days),
        paths.training_set,
    )
    return rows
