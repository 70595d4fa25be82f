"""Fixtures of the tools' tests: rows built from a dataset contract, never from the
demo's column names. `contract` is the project's (params.yaml `dataset`) and a contract
unlike the demo's (tests/other_contracts.py: a string key, other names, a nullable
categorical, a label whose positive value is "yes"): every test using it runs on both."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import Params, Window, load_params
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_frame

from tests.other_contracts import LOAN, with_second_contract

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def project_params() -> Params:
    return load_params(PROJECT_ROOT / "params.yaml")


@pytest.fixture(scope="session", params=with_second_contract("other"))
def contract(request: pytest.FixtureRequest, project_params: Params) -> DatasetContract:
    return project_params.dataset if request.param == "project" else LOAN


@pytest.fixture(scope="session")
def params(project_params: Params, contract: DatasetContract) -> Params:
    """The project's params with `contract` as their dataset."""
    return project_params.model_copy(update={"dataset": contract})


@pytest.fixture(scope="session")
def tiny_window() -> Window:
    return Window(end_date=dt.date(2026, 3, 31), days=10)


@pytest.fixture(scope="session")
def tiny_raw(tiny_window: Window, contract: DatasetContract) -> pd.DataFrame:
    """Ten conformed daily batches of 300 rows."""
    return contract_frame(contract, tiny_window.dates(), 300, population=2000, seed=7)


@pytest.fixture(scope="session")
def tiny_features(tiny_raw: pd.DataFrame, contract: DatasetContract) -> pd.DataFrame:
    from {{ cookiecutter.package_name }}.features import build_features

    return build_features(tiny_raw, contract)
