"""Shared fixtures: tiny, deterministic data and configs pointing at tmp_path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import DataConfig, Params, SplitConfig, TrainConfig, load_params
from {{ cookiecutter.package_name }}.ingest import batch_days, fetch_batch

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_params() -> Params:
    return load_params(PROJECT_ROOT / "params.yaml")


@pytest.fixture(scope="session")
def tiny_data_config() -> DataConfig:
    return DataConfig(
        end_date=dt.date(2026, 3, 31), window_days=24, rows_per_day=400, n_customers=3000, seed=7
    )


@pytest.fixture(scope="session")
def tiny_raw(tiny_data_config: DataConfig) -> pd.DataFrame:
    days = batch_days(tiny_data_config)
    return pd.concat([fetch_batch(day, tiny_data_config) for day in days], ignore_index=True)


@pytest.fixture(scope="session")
def split_config() -> SplitConfig:
    return SplitConfig(valid_days=4, test_days=4)


@pytest.fixture(scope="session")
def train_config(project_params: Params) -> TrainConfig:
    return project_params.train.model_copy(
        update={"num_boost_round": 60, "early_stopping_rounds": 10, "device": "cpu", "nthread": 2}
    )
