from __future__ import annotations

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import SplitConfig
from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.split import time_split


def test_split_is_by_time_with_no_future_rows_in_training(
    tiny_raw: pd.DataFrame, split_config
) -> None:
    splits = time_split(tiny_raw, split_config)
    assert splits.train["event_timestamp"].max() < splits.valid["event_timestamp"].min()
    assert splits.valid["event_timestamp"].max() < splits.test["event_timestamp"].min()
    assert len(splits.train) + len(splits.valid) + len(splits.test) == len(tiny_raw)
    assert splits.test["event_timestamp"].dt.floor("D").nunique() == split_config.test_days
    summary = splits.summary()
    assert summary["test"]["rows"] == len(splits.test)
    assert 0 < summary["train"]["positive_rate"] < 1


def test_too_few_days_is_a_clear_error(tiny_raw: pd.DataFrame) -> None:
    with pytest.raises(StageInputError, match="needs at least"):
        time_split(tiny_raw, SplitConfig(valid_days=20, test_days=20))
