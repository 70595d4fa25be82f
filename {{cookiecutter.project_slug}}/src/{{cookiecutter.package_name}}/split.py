"""Time-aware split: the newest days are the test set, the days before them validation.

Training never sees a row newer than any validation or test row. Within the
time split the class balance of each part is reported, since a split by time
cannot stratify; the test set is the latest holdout the promotion gate uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .config import SplitConfig
from .errors import StageInputError
from .features import LABEL, TIMESTAMP


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "rows": len(part),
                "positive_rate": float(part[LABEL].mean()) if len(part) else 0.0,
            }
            for name, part in (("train", self.train), ("valid", self.valid), ("test", self.test))
        }


def time_split(frame: pd.DataFrame, cfg: SplitConfig) -> Splits:
    days = frame[TIMESTAMP].dt.floor("D")
    unique_days = days.drop_duplicates().sort_values().to_list()
    needed = cfg.valid_days + cfg.test_days + 1
    if len(unique_days) < needed:
        raise StageInputError(
            f"time split needs at least {needed} days of data (valid_days={cfg.valid_days}, "
            f"test_days={cfg.test_days}, plus one to train on); got {len(unique_days)}. "
            "Increase data.window_days or reduce split.*_days in params.yaml."
        )
    test_start = unique_days[-cfg.test_days]
    valid_start = unique_days[-(cfg.test_days + cfg.valid_days)]
    return Splits(
        train=frame.loc[days < valid_start].reset_index(drop=True),
        valid=frame.loc[(days >= valid_start) & (days < test_start)].reset_index(drop=True),
        test=frame.loc[days >= test_start].reset_index(drop=True),
    )
