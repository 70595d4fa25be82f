"""Training set: labels joined point-in-time-correctly with features.

For each label event (customer, timestamp) take the newest feature row of that
customer at or before the timestamp, never after: no feature value from the
future leaks into a training row.
"""

from __future__ import annotations

import pandas as pd

from .features import ENTITY, FEATURE_COLUMNS, TIMESTAMP


def point_in_time_join(labels: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Attach to every label row the latest features known at its timestamp."""
    left = labels.sort_values(TIMESTAMP, kind="stable")
    right = features[[ENTITY, TIMESTAMP, *FEATURE_COLUMNS]].sort_values(TIMESTAMP, kind="stable")
    joined = pd.merge_asof(left, right, on=TIMESTAMP, by=ENTITY, direction="backward")
    missing = joined[FEATURE_COLUMNS[0]].isna()
    if missing.any():
        joined = joined.loc[~missing]  # a label with no feature history cannot be trained on
    return joined.sort_values([TIMESTAMP, ENTITY], kind="stable").reset_index(drop=True)
