"""A reference point-in-time join in pandas (merge_asof), for the tests{% if cookiecutter.include_benchmark == "yes" %} and the bench{% endif %}.

The pipeline's training set comes from Feast (stages/training_set.py); this is the
same join done directly: for each label event (entity, timestamp) the newest
feature row of that entity at or before the timestamp, never after, so no feature
value from the future leaks into a training row. The tests build training sets
with it without a feature store{% if cookiecutter.include_benchmark == "yes" %}; the bench times Feast against it{% endif %}.
"""

from __future__ import annotations

import pandas as pd

from {{ cookiecutter.package_name }}.contract import DatasetContract


def point_in_time_join(
    labels: pd.DataFrame,
    features: pd.DataFrame,
    contract: DatasetContract,
    ttl: pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Attach to every label row the latest features known at its timestamp (and no
    older than `ttl`, the feature view's, when given)."""
    key, timestamp, columns = contract.entity.key, contract.timestamp, contract.feature_columns
    left = labels.sort_values(timestamp, kind="stable")
    right = features[[key, timestamp, *columns]].sort_values(timestamp, kind="stable")
    joined = pd.merge_asof(left, right, on=timestamp, by=key, direction="backward", tolerance=ttl)
    missing = joined[columns].isna().all(axis=1)
    if missing.any():
        joined = joined.loc[~missing]  # a label with no feature history cannot be trained on
    return joined.sort_values([timestamp, key], kind="stable").reset_index(drop=True)
