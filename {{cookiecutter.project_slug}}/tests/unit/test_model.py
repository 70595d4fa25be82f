"""Training (local engine), UBJSON round trip and scoring by feature name, driven by the
contract: the project's and another one (string keys, nullable columns, other names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from {{ cookiecutter.package_name }}.config import SplitConfig
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_frame
from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.features import build_features
from {{ cookiecutter.package_name }}.model import (
    MODEL_FILE,
    FeatureMismatchError,
    load_model,
    predict_matrix,
    predict_proba,
    resolve_device,
    save_model,
)
from {{ cookiecutter.package_name }}.split import Splits, time_split
from {{ cookiecutter.package_name }}.training import train_model

OTHER = DatasetContract.model_validate(
    {
        "entity": {"name": "account", "key": "account_ref", "dtype": "string"},
        "timestamp": "seen_at",
        "label": {"column": "defaulted", "positive": "yes", "horizon_days": 3},
        "numeric": {"balance": {"nullable": True}, "age_days": {}},
        "categorical": {"region": {"values": ["north", "south-east"], "nullable": True}},
        "slices": ["region", "channel"],
    }
)


def training_frame(raw: pd.DataFrame, contract: DatasetContract) -> pd.DataFrame:
    """What the training set holds: features, the label and the slice columns of each row
    (each entity appears once a day, so the point-in-time join is the row itself)."""
    features = build_features(raw, contract)
    extra = [c for c in [contract.label.column, *contract.slices] if c not in features]
    return features.assign(**{c: raw[c].to_numpy() for c in extra})


@pytest.fixture(scope="module")
def splits(tiny_raw: pd.DataFrame, split_config, contract) -> Splits:
    return time_split(training_frame(tiny_raw, contract), split_config, contract)


def test_training_learns_and_round_trips_through_ubjson(
    splits, train_config, contract, tmp_path: Path
) -> None:
    booster, meta = train_model(splits, train_config, contract)
    assert meta.feature_names == contract.feature_columns
    assert booster.feature_names == contract.feature_columns
    assert meta.device == "cpu"
    assert 0.0 < meta.threshold < 1.0
    assert meta.scale_pos_weight > 1.0  # the minority class is up-weighted
    assert meta.best_iteration + 1 == booster.num_boosted_rounds()
    path = save_model(booster, meta, tmp_path)
    assert path.name == MODEL_FILE
    assert path.read_bytes()[:1] == b"{"  # UBJSON object marker, not a pickle
    loaded, loaded_meta = load_model(tmp_path, contract)
    np.testing.assert_allclose(
        predict_proba(loaded, splits.test), predict_proba(booster, splits.test)
    )
    assert loaded_meta == meta
    label = contract.label.column
    assert meta.split_summary["train"]["positive_rate"] == pytest.approx(splits.train[label].mean())
    assert roc_auc_score(splits.test[label], predict_proba(loaded, splits.test)) > 0.6


def test_another_contract_trains_on_its_own_columns(tiny_window, train_config) -> None:
    raw = contract_frame(OTHER, tiny_window.dates(), 300, seed=11, null_share=0.1)
    frame = training_frame(raw, OTHER)
    splits = time_split(frame, SplitConfig(valid_days=4, test_days=4), OTHER)
    booster, meta = train_model(splits, train_config, OTHER)
    assert meta.feature_names == OTHER.feature_columns
    assert "balance_missing" in meta.feature_names
    scores = predict_proba(booster, splits.test)
    assert roc_auc_score(splits.test[OTHER.label.column], scores) > 0.6


def test_a_model_of_another_contract_fails_to_load_naming_the_difference(
    splits, train_config, contract, tmp_path: Path
) -> None:
    booster, meta = train_model(splits, train_config, contract)
    first, *rest = contract.feature_columns
    # trained when the contract had a feature it no longer has, and lacked its first one
    meta.feature_names = [*rest, "retired_feature"]
    save_model(booster, meta, tmp_path)
    with pytest.raises(FeatureMismatchError) as failure:
        load_model(tmp_path, contract)
    message = str(failure.value)
    assert f"it lacks: ['{first}']" in message
    assert "no longer produces: ['retired_feature']" in message
    assert str(tmp_path) in message and "dvc repro train" in message
    assert isinstance(failure.value, StageInputError)  # the CLI prints it without a traceback
    # the same features in another order load: models are scored by name
    meta.feature_names = list(reversed(contract.feature_columns))
    save_model(booster, meta, tmp_path)
    assert load_model(tmp_path, contract)[1].feature_names == meta.feature_names


def test_scoring_reads_features_by_name_and_names_a_missing_one(splits, train_config, contract):
    booster, _ = train_model(splits, train_config, contract)
    shuffled = splits.test[list(reversed(contract.feature_columns))]
    np.testing.assert_allclose(
        predict_proba(booster, shuffled), predict_proba(booster, splits.test)
    )
    last = contract.feature_columns[-1]
    with pytest.raises(FeatureMismatchError, match=rf"lack features the model reads: \['{last}'\]"):
        predict_proba(booster, splits.test.drop(columns=last))
    # the service's path (plain arrays, one thread) scores exactly as predict_proba does
    booster.set_param({"nthread": 1})
    columns = list(shuffled.columns)
    matrix = shuffled.to_numpy(dtype="float64")
    np.testing.assert_array_equal(
        predict_matrix(booster, matrix, columns), predict_proba(booster, splits.test)
    )
    assert predict_matrix(booster, matrix[:0], columns).shape == (0,)
    with pytest.raises(FeatureMismatchError, match=rf"lack features the model reads: \['{last}'\]"):
        predict_matrix(booster, matrix[:, 1:], columns[1:])


def test_training_is_deterministic_on_cpu(splits, train_config, contract) -> None:
    first, _ = train_model(splits, train_config, contract)
    second, _ = train_model(splits, train_config, contract)
    np.testing.assert_array_equal(
        predict_proba(first, splits.test), predict_proba(second, splits.test)
    )


def test_max_bin_other_than_the_default_trains(splits, train_config, contract) -> None:
    # train and valid matrices must share max_bin (XGBoost rejects a mismatch)
    booster, meta = train_model(splits, train_config.model_copy(update={"max_bin": 32}), contract)
    assert meta.xgb_params["max_bin"] == 32
    assert booster.num_boosted_rounds() == meta.best_iteration + 1


def test_local_engine_records_itself(splits, train_config, contract) -> None:
    _, meta = train_model(splits, train_config, contract)
    assert (meta.engine, meta.workers) == ("local", 1)


def test_single_class_training_data_is_rejected(splits, train_config, contract) -> None:
    label = contract.label.column
    one_class = Splits(splits.train.assign(**{label: 0}), splits.valid, splits.test)
    with pytest.raises(StageInputError, match=f"single class of {label}"):
        train_model(one_class, train_config, contract)


def test_device_resolution_falls_back_to_cpu_without_a_gpu(monkeypatch, caplog) -> None:
    import {{ cookiecutter.package_name }}.model as train_module

    assert resolve_device("cpu") == "cpu"
    monkeypatch.setattr(train_module, "cuda_usable", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cuda") == "cpu"
    assert "no usable CUDA GPU" in caplog.text
    monkeypatch.setattr(train_module, "cuda_usable", lambda: True)
    assert resolve_device("auto") == "cuda"


def test_cuda_probe_matches_this_machine() -> None:
    # On a machine without a GPU the probe must say so (and training stays on CPU).
    import shutil

    from {{ cookiecutter.package_name }}.model import cuda_usable

    if shutil.which("nvidia-smi") is None:
        assert cuda_usable() is False
