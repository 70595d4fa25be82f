"""A reference point-in-time join in pandas (merge_asof), for the tests{% if cookiecutter.include_benchmark == "yes" %} and the bench{% endif %}.

The pipeline's training set comes from Feast (stages/training_set.py); this is the
same join done directly: for each label event (customer, timestamp) the newest
feature row of that customer at or before the timestamp, never after, so no feature
value from the future leaks into a training row. The tests build training sets
with it without a feature store{% if cookiecutter.include_benchmark == "yes" %}; the bench times Feast against it{% endif %}.
"""

from __future__ import annotations

import pandas as pd

from {{ cookiecutter.package_name }}.features import ENTITY, FEATURE_COLUMNS, TIMESTAMP


def point_in_time_join(labels: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Attach to every label row the latest features known at its timestamp."""
    left = labels.sort_values(TIMESTAMP, kind="stable")
    right = features[[ENTITY, TIMESTAMP, *FEATURE_COLUMNS]].sort_values(TIMESTAMP, kind="stable")
    joined = pd.merge_asof(left, right, on=TIMESTAMP, by=ENTITY, direction="backward")
    missing = joined[FEATURE_COLUMNS[0]].isna()
    if missing.any():
        joined = joined.loc[~missing]  # a label with no feature history cannot be trained on
    return joined.sort_values([TIMESTAMP, ENTITY], kind="stable").reset_index(drop=True)
