from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.features import build_features, build_labels
from {{ cookiecutter.package_name }}.model import (
    MODEL_FILE,
    load_model,
    predict_proba,
    resolve_device,
    save_model,
)
from {{ cookiecutter.package_name }}.split import Splits, time_split
from {{ cookiecutter.package_name }}.training import train_model
from tools.point_in_time import point_in_time_join


@pytest.fixture(scope="module")
def splits(tiny_raw: pd.DataFrame, split_config) -> Splits:
    frame = point_in_time_join(build_labels(tiny_raw), build_features(tiny_raw))
    return time_split(frame, split_config)


def test_training_learns_and_round_trips_through_ubjson(
    splits, train_config, tmp_path: Path
) -> None:
    booster, meta = train_model(splits, train_config)
    assert meta.device == "cpu"
    assert 0.0 < meta.threshold < 1.0
    assert meta.scale_pos_weight > 1.0  # the minority class is up-weighted
    assert meta.best_iteration + 1 == booster.num_boosted_rounds()
    path = save_model(booster, meta, tmp_path)
    assert path.name == MODEL_FILE
    assert path.read_bytes()[:1] == b"{"  # UBJSON object marker, not a pickle
    loaded, loaded_meta = load_model(tmp_path)
    np.testing.assert_allclose(
        predict_proba(loaded, splits.test), predict_proba(booster, splits.test)
    )
    assert loaded_meta == meta
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(splits.test["churned"], predict_proba(loaded, splits.test)) > 0.65


def test_training_is_deterministic_on_cpu(splits, train_config) -> None:
    first, _ = train_model(splits, train_config)
    second, _ = train_model(splits, train_config)
    np.testing.assert_array_equal(
        predict_proba(first, splits.test), predict_proba(second, splits.test)
    )


def test_max_bin_other_than_the_default_trains(splits, train_config) -> None:
    # train and valid matrices must share max_bin (XGBoost rejects a mismatch)
    booster, meta = train_model(splits, train_config.model_copy(update={"max_bin": 32}))
    assert meta.xgb_params["max_bin"] == 32
    assert booster.num_boosted_rounds() == meta.best_iteration + 1


def test_local_engine_records_itself(splits, train_config) -> None:
    _, meta = train_model(splits, train_config)
    assert (meta.engine, meta.workers) == ("local", 1)


def test_single_class_training_data_is_rejected(splits, train_config) -> None:
    one_class = Splits(splits.train.assign(churned=0), splits.valid, splits.test)
    with pytest.raises(StageInputError, match="single class"):
        train_model(one_class, train_config)


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
