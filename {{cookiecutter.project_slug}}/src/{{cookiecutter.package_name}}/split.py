"""Label maturity and the time-aware split.

A label counts only once its outcome is known: `matured_labels` keeps the label
events older than `dataset.label.horizon_days` before the window's end (the
training set holds no others). `time_split` then makes the newest of those days
the test set and the days before them validation, so training never sees a row
newer than any validation or test row. A split by time cannot stratify: the
class balance of each part is reported instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from .config import SplitConfig, Window
from .contract import DatasetContract
from .errors import StageInputError

log = logging.getLogger(__name__)

_FIX = (
    "Widen data.window_days, shorten dataset.label.horizon_days (labels younger than it "
    "are held back) or reduce split.valid_days / split.test_days in params.yaml."
)


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame

    def summary(self, label: str) -> dict[str, dict[str, float]]:
        """Rows and positive rate (of the 0/1 column `label`) of each part."""
        return {
            name: {
                "rows": len(part),
                "positive_rate": float(part[label].mean()) if len(part) else 0.0,
            }
            for name, part in (("train", self.train), ("valid", self.valid), ("test", self.test))
        }


def days_needed(cfg: SplitConfig) -> int:
    """Days of data the split needs: validation, test and at least one to train on."""
    return cfg.valid_days + cfg.test_days + 1


def _timestamps(frame: pd.DataFrame, contract: DatasetContract) -> pd.Series:
    column = contract.timestamp
    if column not in frame.columns:
        raise StageInputError(
            f"the rows lack the timestamp column {column!r} (dataset.timestamp): "
            "re-run the stage that wrote them"
        )
    return pd.to_datetime(frame[column], utc=True)


def matured_labels(
    labels: pd.DataFrame, contract: DatasetContract, window: Window, cfg: SplitConfig
) -> pd.DataFrame:
    """The label events whose outcome is known by the end of the window; a
    StageInputError when too few days of them are left for the time split."""
    known_before = contract.label_known_before(window.end_date)
    young = _timestamps(labels, contract) >= known_before
    kept = labels.loc[~young].reset_index(drop=True)
    horizon = contract.label.horizon_days
    if young.any():
        log.info(
            "held back %d of %d label events from %s on: their outcome is not known by the "
            "end of %s (dataset.label.horizon_days: %d)",
            int(young.sum()),
            len(labels),
            known_before.date(),
            window.end_date,
            horizon,
        )
    else:
        log.info("every label event is matured (dataset.label.horizon_days: %d)", horizon)
    check_matured_days(_timestamps(kept, contract).dt.floor("D").nunique(), contract, window, cfg)
    return kept


def matured_days(
    rows_by_day: Mapping[dt.date, int], contract: DatasetContract, window: Window, cfg: SplitConfig
) -> list[dt.date]:
    """The days of the window (with rows) whose label events are all matured by its end:
    `matured_labels` by whole days (the horizon is whole days); a StageInputError when
    too few are left for the time split."""
    known_before = contract.label_known_before(window.end_date).date()
    in_window = {day: rows for day, rows in rows_by_day.items() if rows and day in window.dates()}
    days = sorted(day for day in in_window if day < known_before)
    held = [day for day in in_window if day >= known_before]
    if held:
        log.info(
            "held back the label events of %d days from %s on (%d events): their outcome is "
            "not known by the end of %s (dataset.label.horizon_days: %d)",
            len(held),
            known_before,
            sum(in_window[day] for day in held),
            window.end_date,
            contract.label.horizon_days,
        )
    check_matured_days(len(days), contract, window, cfg)
    return days


def check_matured_days(
    days: int, contract: DatasetContract, window: Window, cfg: SplitConfig
) -> None:
    """A StageInputError when `days` days of matured labels are too few for the split."""
    if days >= days_needed(cfg):
        return
    horizon = contract.label.horizon_days
    known_before = contract.label_known_before(window.end_date)
    raise StageInputError(
        f"only {days} days of the window have matured labels: an outcome is known "
        f"dataset.label.horizon_days ({horizon}) after its event, so of the window "
        f"(data.window_days: {window.days}, ending {window.end_date}) only the events "
        f"before {known_before.date()} count, and the time split needs "
        f"{days_needed(cfg)} days (split.valid_days: {cfg.valid_days} + split.test_days: "
        f"{cfg.test_days} + 1 to train on). {_FIX}"
    )


def time_split(frame: pd.DataFrame, cfg: SplitConfig, contract: DatasetContract) -> Splits:
    """The newest `split.test_days` days with data are the test set, the
    `split.valid_days` before them validation, every earlier day training."""
    days = _timestamps(frame, contract).dt.floor("D")
    unique_days = days.drop_duplicates().sort_values().to_list()
    if len(unique_days) < days_needed(cfg):
        raise StageInputError(
            f"time split needs at least {days_needed(cfg)} days of data (split.valid_days: "
            f"{cfg.valid_days}, split.test_days: {cfg.test_days}, plus one to train on); "
            f"got {len(unique_days)}. {_FIX}"
        )
    test_start = unique_days[-cfg.test_days]
    valid_start = unique_days[-(cfg.test_days + cfg.valid_days)]
    return Splits(
        train=frame.loc[days < valid_start].reset_index(drop=True),
        valid=frame.loc[(days >= valid_start) & (days < test_start)].reset_index(drop=True),
        test=frame.loc[days >= test_start].reset_index(drop=True),
    )
