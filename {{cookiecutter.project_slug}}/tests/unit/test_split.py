"""Label maturity and the time split, on rows of the project's contract and of another one."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import SplitConfig, Window
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_frame
from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.features import build_labels
from {{ cookiecutter.package_name }}.split import days_needed, matured_labels, time_split

OTHER = DatasetContract.model_validate(
    {
        "entity": {"name": "account", "key": "account_ref", "dtype": "string"},
        "timestamp": "seen_at",
        "label": {"column": "defaulted", "positive": "yes", "horizon_days": 3},
        "numeric": {"balance": {"nullable": True}},
        "categorical": {"region": {"values": ["north", "south"], "nullable": True}},
        "slices": ["region", "channel"],
    }
)


@pytest.fixture(params=["project", "other"])
def any_contract(request: pytest.FixtureRequest, contract: DatasetContract) -> DatasetContract:
    return contract if request.param == "project" else OTHER


def with_horizon(contract: DatasetContract, days: int) -> DatasetContract:
    return contract.model_copy(
        update={"label": contract.label.model_copy(update={"horizon_days": days})}
    )


def labels_of(contract: DatasetContract, window: Window, rows: int = 40) -> pd.DataFrame:
    return build_labels(contract_frame(contract, window.dates(), rows, seed=5), contract)


def test_split_is_by_time_with_no_future_rows_in_training(any_contract, tiny_window) -> None:
    frame = labels_of(any_contract, tiny_window)
    cfg = SplitConfig(valid_days=4, test_days=3)
    splits = time_split(frame, cfg, any_contract)
    ts, label = any_contract.timestamp, any_contract.label.column
    assert splits.train[ts].max() < splits.valid[ts].min()
    assert splits.valid[ts].max() < splits.test[ts].min()
    assert len(splits.train) + len(splits.valid) + len(splits.test) == len(frame)
    assert splits.test[ts].dt.floor("D").nunique() == 3
    assert splits.valid[ts].dt.floor("D").nunique() == 4
    assert splits.test[ts].dt.date.max() == tiny_window.end_date
    summary = splits.summary(label)
    assert summary["test"]["rows"] == len(splits.test)
    assert summary["train"]["positive_rate"] == pytest.approx(splits.train[label].mean())
    assert 0 < summary["train"]["positive_rate"] < 1


def test_too_few_days_is_a_clear_error(contract, tiny_window) -> None:
    frame = labels_of(contract, tiny_window)
    with pytest.raises(StageInputError, match="needs at least 41 days") as failure:
        time_split(frame, SplitConfig(valid_days=20, test_days=20), contract)
    for key in ("split.valid_days", "split.test_days", "data.window_days", "horizon_days"):
        assert key in str(failure.value)


def test_a_missing_timestamp_column_is_named(any_contract, tiny_window) -> None:
    frame = labels_of(any_contract, tiny_window).drop(columns=any_contract.timestamp)
    with pytest.raises(StageInputError, match=rf"'{any_contract.timestamp}' \(dataset.timestamp\)"):
        time_split(frame, SplitConfig(valid_days=1, test_days=1), any_contract)


def test_immature_labels_are_held_back_before_the_split(any_contract, tiny_window, caplog) -> None:
    contract = with_horizon(any_contract, 5)
    labels = labels_of(contract, tiny_window)
    cfg = SplitConfig(valid_days=4, test_days=3)
    with caplog.at_level(logging.INFO, logger="{{ cookiecutter.package_name }}.split"):
        kept = matured_labels(labels, contract, tiny_window, cfg)
    known_before = pd.Timestamp("2026-03-27", tz="UTC")  # 2026-03-31 ends; 5 days to know
    assert known_before == contract.label_known_before(tiny_window.end_date)
    ts = contract.timestamp
    young = labels[ts] >= known_before
    assert young.sum() > 0 and kept[ts].max() < known_before
    assert len(kept) == len(labels) - young.sum()
    pd.testing.assert_frame_equal(kept, labels.loc[~young].reset_index(drop=True))
    assert (
        f"held back {young.sum()} of {len(labels)} label events from 2026-03-27 on" in caplog.text
    )
    # The test days are the newest matured days, not the newest days of the window.
    test = time_split(kept, cfg, contract).test
    assert sorted(test[ts].dt.date.unique()) == [dt.date(2026, 3, d) for d in (24, 25, 26)]


def test_labels_right_at_the_boundary_are_immature(contract, tiny_window) -> None:
    contract = with_horizon(contract, 2)
    labels = labels_of(contract, tiny_window, rows=5)
    known_before = contract.label_known_before(tiny_window.end_date)
    ts = contract.timestamp
    labels.loc[0, ts] = known_before  # its outcome is known only after the window
    labels.loc[1, ts] = known_before - pd.Timedelta(microseconds=1)
    kept = matured_labels(labels, contract, tiny_window, SplitConfig(valid_days=2, test_days=2))
    assert known_before not in set(kept[ts])
    assert (known_before - pd.Timedelta(microseconds=1)) in set(kept[ts])
    assert kept[ts].max() == known_before - pd.Timedelta(microseconds=1)


def test_horizon_zero_keeps_every_row_of_the_window(any_contract, tiny_window, caplog) -> None:
    contract = with_horizon(any_contract, 0)
    labels = labels_of(contract, tiny_window)
    with caplog.at_level(logging.INFO, logger="{{ cookiecutter.package_name }}.split"):
        kept = matured_labels(labels, contract, tiny_window, SplitConfig(valid_days=1, test_days=1))
    pd.testing.assert_frame_equal(kept, labels)
    assert "every label event is matured" in caplog.text


def test_a_horizon_that_eats_the_window_is_a_clear_error(any_contract, tiny_window) -> None:
    cfg = SplitConfig(valid_days=4, test_days=4)
    labels = labels_of(any_contract, tiny_window)
    # 24 days, 9 needed: a horizon of 15 leaves 9 days, 16 leaves 8.
    assert tiny_window.days - 15 == days_needed(cfg)
    matured_labels(labels, with_horizon(any_contract, 15), tiny_window, cfg)
    for horizon in (16, 24, 400):
        with pytest.raises(StageInputError) as failure:
            matured_labels(labels, with_horizon(any_contract, horizon), tiny_window, cfg)
        message = str(failure.value)
        assert message.startswith(f"only {max(tiny_window.days - horizon, 0)} days")
        for key in (
            f"dataset.label.horizon_days ({horizon})",
            "data.window_days: 24",
            "split.valid_days: 4",
            "split.test_days: 4",
        ):
            assert key in message


def test_no_labels_at_all_is_a_clear_error(contract, tiny_window) -> None:
    labels = labels_of(contract, tiny_window).iloc[:0]
    with pytest.raises(StageInputError, match="only 0 days"):
        matured_labels(labels, contract, tiny_window, SplitConfig(valid_days=1, test_days=1))


def test_the_training_set_stage_joins_only_matured_labels(
    contract, tiny_window, project_params, tmp_path, monkeypatch
) -> None:
    from {{ cookiecutter.package_name }}.batches import batch_path
    from {{ cookiecutter.package_name }}.features import build_features
    from {{ cookiecutter.package_name }}.files import write_parquet
    from {{ cookiecutter.package_name }}.stages import featurize, training_set

    raw = contract_frame(contract, tiny_window.dates(), 30, seed=9)
    features = build_features(raw, contract)
    paths = project_params.paths.model_copy(
        update={
            "raw": tmp_path / "raw",
            "features": tmp_path / "features",
            "training_set": tmp_path / "ts.parquet",
        }
    )
    for day, rows in raw.groupby(raw[contract.timestamp].dt.date):
        write_parquet(rows, batch_path(paths.raw, day))
    featurize.run(paths, contract)
    joined: list[pd.DataFrame] = []

    def join(store, entity_df, contract_):  # each row's own features: one row a day per entity
        joined.append(entity_df)
        keys = [contract_.entity.key, contract_.timestamp]
        return entity_df.merge(features, on=keys).sort_values(keys[::-1], kind="stable")

    monkeypatch.setattr(training_set, "open_store", lambda: None)
    monkeypatch.setattr(training_set, "historical_features", join)
    cfg = SplitConfig(valid_days=2, test_days=2)
    mature = with_horizon(contract, 6)
    rows = training_set.run(paths, tiny_window, cfg, mature)
    known_before = mature.label_known_before(tiny_window.end_date)
    assert joined[0][contract.timestamp].max() < known_before  # dropped before the join
    written = pd.read_parquet(paths.training_set)
    assert rows == len(written) == (raw[contract.timestamp] < known_before).sum()
    for column in [contract.label.column, *contract.slices, *contract.feature_columns]:
        assert column in written.columns
    with pytest.raises(StageInputError, match=r"dataset\.label\.horizon_days"):
        training_set.run(paths, tiny_window, cfg, with_horizon(contract, 20))
