from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.datagen import CONTRACTS, KEY, LABEL, RAW_COLUMNS, TIMESTAMP, generate_day

DAY = dt.date(2026, 3, 1)


def test_batch_has_the_raw_schema_and_is_deterministic() -> None:
    first = generate_day(DAY, rows=500, population=2000, seed=1)
    again = generate_day(DAY, rows=500, population=2000, seed=1)
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == list(RAW_COLUMNS)
    assert {str(t) for t in first.dtypes} <= set(RAW_COLUMNS.values()) | {"object"}
    assert not first.equals(generate_day(DAY, rows=500, population=2000, seed=2))


def test_batch_keys_are_unique_and_inside_the_day() -> None:
    batch = generate_day(DAY, rows=1500, population=2000, seed=3)
    assert not batch.duplicated([KEY, TIMESTAMP]).any()
    assert batch[KEY].is_unique  # one snapshot per entity per day
    assert (batch[TIMESTAMP].dt.date == DAY).all()


def test_labels_are_imbalanced_but_not_degenerate(tiny_window) -> None:
    demo = pd.concat(
        [generate_day(day, rows=400, population=3000, seed=7) for day in tiny_window.dates()]
    )
    rate = demo[LABEL].mean()
    assert 0.03 < rate < 0.25
    assert set(demo[LABEL].unique()) == {0, 1}


def test_covariate_drift_shifts_inputs_only_after_its_start() -> None:
    kwargs = dict(rows=2000, population=4000, seed=5, drift_start=DAY, covariate_drift=1.0)
    before = generate_day(DAY - dt.timedelta(days=1), **kwargs)
    after = generate_day(DAY, **kwargs)
    plain = generate_day(DAY, rows=2000, population=4000, seed=5)
    assert after["monthly_charges"].mean() > 1.2 * plain["monthly_charges"].mean()
    assert (after["contract"] == CONTRACTS[0]).mean() > (
        plain["contract"] == CONTRACTS[0]
    ).mean() + 0.1
    undrifted = generate_day(DAY - dt.timedelta(days=1), rows=2000, population=4000, seed=5)
    pd.testing.assert_frame_equal(before, undrifted)


def test_concept_drift_changes_labels_not_inputs() -> None:
    kwargs = dict(rows=2000, population=4000, seed=5)
    plain = generate_day(DAY, **kwargs)
    drifted = generate_day(DAY, **kwargs, drift_start=DAY, concept_drift=1.0)
    inputs = [c for c in plain.columns if c != LABEL]
    pd.testing.assert_frame_equal(plain[inputs], drifted[inputs])
    assert (plain[LABEL] != drifted[LABEL]).mean() > 0.05


def test_more_rows_than_population_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot exceed"):
        generate_day(DAY, rows=11, population=10, seed=1)
