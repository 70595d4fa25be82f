"""Fixtures of the tools' tests: small deterministic raw data from the demo generator."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.datagen import generate_day


@pytest.fixture(scope="session")
def tiny_raw() -> pd.DataFrame:
    """Ten daily batches of 300 rows."""
    end = dt.date(2026, 3, 31)
    days = [end - dt.timedelta(days=i) for i in range(10)]
    return pd.concat(
        [generate_day(day, rows=300, n_customers=2000, seed=7) for day in sorted(days)],
        ignore_index=True,
    )
