"""Which rows a monitoring run judges: the windows, and the sample scored.

Drift is judged on the current window (`Windows.drift_start` on), model quality on the
matured window (the newest days whose labels are known by the window's end).

A large window's batch rows are featurized and scored only for the rows drift and model
quality are judged on.

Drift and model quality read at most `monitor.sample_rows` current and labelled rows
(checks.py draws them uniformly). Featurizing and scoring every batch row of a large
window only to draw a sample afterwards is most of a monitoring run's cost, so the
batch rows are drawn first: as many as their share of the current rows (batches and
served predictions together) in a uniform draw of `sample_rows`. Data quality still
reads every row of the window (a rare new category must not slip through a sample):
its columns come straight from the raw rows (`raw_view`), which needs no model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import MonitoringConfig
from ..contract import DatasetContract
from ..derived import compute_derived
from .columns import MonitoredColumns


def window_start(frame: pd.DataFrame, days: int, column: str) -> pd.Timestamp | None:
    """The first instant of the newest `days` calendar days (UTC) present in `frame`."""
    if frame.empty:
        return None
    return frame[column].max().floor("D") - pd.Timedelta(days=days - 1)


@dataclass(frozen=True)
class Windows:
    """Drift: rows from `drift_start` on. Quality: rows in [quality_start, known_before)."""

    drift_start: pd.Timestamp | None
    quality_start: pd.Timestamp | None
    known_before: pd.Timestamp | None

    @classmethod
    def of(
        cls, raw: pd.DataFrame, contract: DatasetContract, days: int, end_date: dt.date | None
    ) -> Windows:
        """Drift: the newest `days` days of `raw`. Quality: the newest `days` days whose
        labels are known at the end of `end_date`."""
        quality_start, known_before = quality_window(contract, end_date, days)
        return cls(window_start(raw, days, contract.timestamp), quality_start, known_before)

    def with_drift_from(self, frame: pd.DataFrame, column: str, days: int) -> Windows:
        """The same matured window, with the drift window of `frame`'s newest days."""
        return Windows(window_start(frame, days, column), self.quality_start, self.known_before)

    def scope(self, frame: pd.DataFrame, column: str) -> pd.DataFrame:
        """The rows either window needs (scored once for both)."""
        starts = [s for s in (self.drift_start, self.quality_start) if s is not None]
        if not starts:
            return frame.iloc[:0]
        return frame.loc[frame[column] >= min(starts)].reset_index(drop=True)

    def split(self, view: pd.DataFrame, columns: MonitoredColumns) -> tuple[pd.DataFrame, ...]:
        """(current rows, labels not yet known masked; labelled rows of the matured window)."""
        ts, label = view[columns.timestamp], columns.label
        current = view.loc[ts >= self.drift_start] if self.drift_start is not None else view[:0]
        current = current.reset_index(drop=True)
        if self.known_before is None:
            return current, view.iloc[:0]
        current.loc[current[columns.timestamp] >= self.known_before, label] = np.nan
        matured = view.loc[(ts >= self.quality_start) & (ts < self.known_before)]
        return current, matured.loc[matured[label].notna()].reset_index(drop=True)


def quality_window(
    contract: DatasetContract, end_date: dt.date | None, days: int
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """[start, known_before): the newest `days` days whose labels are known at `end_date`."""
    if end_date is None:
        return None, None
    known_before = contract.label_known_before(end_date)
    return known_before - pd.Timedelta(days=days), known_before


def raw_view(raw: pd.DataFrame, columns: MonitoredColumns) -> pd.DataFrame:
    """The monitored columns of raw rows, as `data.monitoring_view` shows them for the
    features built from those rows: numeric columns (a missing value stays missing),
    derived features from them, categories as the rows hold them."""
    contract = columns.contract
    numeric = pd.DataFrame(
        {
            c: pd.to_numeric(raw[c], errors="coerce").astype("float64").to_numpy()
            for c in contract.numeric
        },
        index=range(len(raw)),
    )
    out = pd.concat([numeric, compute_derived(contract.derived, numeric)], axis=1)
    for col in columns.categorical:
        out[col] = raw[col].astype(object).where(raw[col].notna(), None).to_numpy()
    return out[columns.monitored]


def share_of_sample(rows: int, other_rows: int, sample_rows: int) -> int:
    """How many of `rows` a uniform draw of `sample_rows` from `rows + other_rows` takes,
    in expectation (all of them when there is no sampling or no more rows than that)."""
    total = rows + other_rows
    if not sample_rows or total <= sample_rows:
        return rows
    return min(rows, int(np.ceil(sample_rows * rows / total)))


def sample_positions(length: int, rows: int, seed: int) -> np.ndarray:
    """The positions `sample` draws from a frame of `length` rows: at most `rows` drawn
    uniformly with `seed` (0: every position, in order)."""
    if rows and length > rows:
        return pd.Series(np.arange(length)).sample(rows, random_state=seed).to_numpy()
    return np.arange(length)


def sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most `rows` rows drawn uniformly (0: all rows)."""
    if rows and len(frame) > rows:
        return frame.iloc[sample_positions(len(frame), rows, seed)].reset_index(drop=True)
    return frame.reset_index(drop=True)


def raw_needed_from(
    newest_raw: pd.Timestamp,
    contract: DatasetContract,
    days: int,
    end_date: dt.date | None,
    served: pd.DataFrame | None = None,
) -> pd.Timestamp:
    """The oldest instant whose raw rows a run reads, the raw rows' newest being
    `newest_raw`: the start of their drift window, of the matured window, and of the
    drift window of the `served` predictions (their labels come from raw rows of the
    same day). Every start is a midnight (UTC), so whole days of raw rows are read."""
    end_date = end_date or newest_raw.date()
    starts = [newest_raw.floor("D") - pd.Timedelta(days=days - 1)]
    starts.append(quality_window(contract, end_date, days)[0])
    if served is not None:
        starts.append(window_start(served, days, contract.timestamp))
    return min(s for s in starts if s is not None)


def split_raw(
    scoped: pd.DataFrame, columns: MonitoredColumns, windows: Windows
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The raw rows of the drift window and the labelled raw rows of the matured window
    (`windows`: data.Windows)."""
    ts = scoped[columns.timestamp]
    drift = scoped.loc[ts >= windows.drift_start] if windows.drift_start is not None else scoped[:0]
    if windows.known_before is None:
        return drift, scoped[:0]
    matured = scoped.loc[(ts >= windows.quality_start) & (ts < windows.known_before)]
    return drift, matured.loc[matured[columns.label].notna()]


def draw_sizes(
    raw: pd.DataFrame,
    windows: Windows,
    columns: MonitoredColumns,
    cfg: MonitoringConfig,
    served: tuple[int, int],
) -> tuple[int, int, int] | None:
    """How many current and labelled batch rows of `raw` to score: their share of a
    uniform draw of monitor.sample_rows beside the `served` (current, labelled) rows, and
    the seed to draw them with; None: score them all."""
    if not cfg.sample_rows:
        return None
    drift, matured = split_raw(windows.scope(raw, columns.timestamp), columns, windows)
    return (
        share_of_sample(len(drift), served[0], cfg.sample_rows),
        share_of_sample(len(matured), served[1], cfg.sample_rows),
        cfg.seed,
    )
