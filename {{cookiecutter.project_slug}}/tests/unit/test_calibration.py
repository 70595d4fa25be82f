"""calibration.py: fitting on the validation split, applying, storing as JSON, and the
threshold chosen on calibrated scores (training.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from {{ cookiecutter.package_name }}.calibration import (
    CALIBRATION_FILE,
    Calibration,
    CalibrationFileError,
    fit_calibration,
    logit,
    read_calibration,
    write_calibration,
)
from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.metrics import brier_score, expected_calibration_error
from {{ cookiecutter.package_name }}.model import (
    META_FILE,
    best_f1_threshold,
    load_model,
    predict_proba,
    save_model,
)
from {{ cookiecutter.package_name }}.split import time_split
from {{ cookiecutter.package_name }}.training import train_model

from conftest import training_frame

METHODS = ("isotonic", "platt")


def miscalibrated(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """0/1 labels drawn with known probabilities, scores that rank the rows as those
    probabilities do but are not them (overconfident and too high, as scale_pos_weight
    makes them), and the probabilities."""
    rng = np.random.default_rng(seed)
    truth = rng.beta(1.0, 6.0, rows)  # about 14% positive
    y = (rng.random(rows) < truth).astype(np.int64)
    raw = 1 / (1 + np.exp(-(2.5 * logit(truth) + 2.0)))
    return y, raw.astype(np.float32), truth


@pytest.mark.parametrize("method", METHODS)
def test_calibration_fitted_on_validation_rows_improves_the_brier_score_of_others(method) -> None:
    y_valid, raw_valid, _ = miscalibrated(4000, seed=1)
    y_test, raw_test, truth = miscalibrated(4000, seed=2)
    calibration = fit_calibration(method, y_valid, raw_valid)
    assert calibration.method == method and calibration.rows == 4000
    assert calibration.positive_rate == pytest.approx(y_valid.mean())
    calibrated = calibration.apply(raw_test)
    before, after = brier_score(y_test, raw_test), brier_score(y_test, calibrated)
    # the Brier score of the true probabilities is the floor (the labels' own noise): of
    # the raw scores' excess over it, calibration removes most
    floor = brier_score(y_test, truth)
    assert after - floor < 0.2 * (before - floor), (floor, before, after)
    ece_before = expected_calibration_error(y_test, raw_test)
    assert expected_calibration_error(y_test, calibrated) < 0.3 * ece_before
    assert calibrated.min() >= 0 and calibrated.max() <= 1
    if method == "platt":  # a monotone map of the log-odds: the ranking is kept
        assert roc_auc_score(y_test, calibrated) == pytest.approx(roc_auc_score(y_test, raw_test))


def test_none_is_the_identity_and_fits_nothing() -> None:
    y, raw, _ = miscalibrated(100, seed=3)
    none = fit_calibration("none", y, raw)
    assert none == Calibration() and none.apply(raw) is raw


def test_isotonic_applies_as_sklearn_predicts() -> None:
    from sklearn.isotonic import IsotonicRegression

    y, raw, _ = miscalibrated(3000, seed=4)
    calibration = fit_calibration("isotonic", y, raw)
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
        raw.astype(np.float64), y
    )
    grid = np.concatenate([np.linspace(-0.5, 1.5, 500), raw[:200]])
    np.testing.assert_allclose(calibration.apply(grid), fitted.predict(grid), atol=1e-12)


@pytest.mark.parametrize("method", ["none", *METHODS])
def test_a_stored_calibration_reads_back_exactly(method, tmp_path: Path) -> None:
    y, raw, _ = miscalibrated(2000, seed=5)
    calibration = fit_calibration(method, y, raw)
    path = tmp_path / CALIBRATION_FILE
    write_calibration(calibration, path)
    assert json.loads(path.read_text())["method"] == method  # plain JSON, no pickle
    loaded = read_calibration(path, "the test model")
    assert loaded == calibration
    np.testing.assert_array_equal(loaded.apply(raw), calibration.apply(raw))  # bit for bit
    first = path.read_bytes()
    write_calibration(loaded, path)
    assert path.read_bytes() == first  # the same calibration, the same bytes (its sha256)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"method": "magic"}',
        '{"method": "isotonic", "x": [0.5, 0.1], "y": [0.0, 1.0]}',  # x decreasing
        '{"method": "isotonic", "x": [0.1, 0.5], "y": [0.9, 0.1]}',  # y decreasing
        '{"method": "isotonic", "x": [0.1, 0.5], "y": [0.0]}',  # lengths differ
        '{"method": "isotonic", "x": [0.1, 0.5], "y": [0.0, 1.5]}',  # not a probability
        '{"method": "isotonic", "x": [0.1, NaN], "y": [0.0, 1.0]}',
        '{"method": "platt", "a": -1.0, "b": 0.0}',  # would reverse the ranking
        '{"method": "platt", "a": "1.0", "b": 0.0}',  # a string is not a number
        '{"method": "platt", "a": 1.0}',
        '{"method": "none", "a": 1.0, "b": 0.0}',
        '{"method": "none", "pickle": "gASV"}',
    ],
)
def test_an_unusable_calibration_file_is_refused_naming_it(content, tmp_path: Path) -> None:
    path = tmp_path / CALIBRATION_FILE
    path.write_text(content)
    with pytest.raises(CalibrationFileError, match=f"the calibration of the test model \\({path}"):
        read_calibration(path, "the test model")


def test_a_single_class_cannot_be_calibrated() -> None:
    with pytest.raises(StageInputError, match="both classes in the validation split"):
        fit_calibration("isotonic", np.zeros(50), np.linspace(0, 1, 50))


# --- the model's calibration: fitted by training, saved beside it ----------------------


@pytest.fixture(scope="module")
def splits(tiny_raw, split_config, contract):
    return time_split(training_frame(tiny_raw, contract), split_config, contract)


@pytest.mark.parametrize("method", METHODS)
def test_training_calibrates_on_the_valid_split_and_thresholds_calibrated_scores(
    method, splits, train_config, contract, tmp_path: Path
) -> None:
    label = contract.label.column
    booster, meta = train_model(
        splits, train_config.model_copy(update={"calibration": method}), contract
    )
    calibration = meta.calibration
    valid_raw = predict_proba(booster, splits.valid)
    refit = fit_calibration(method, splits.valid[label].to_numpy(), valid_raw)
    assert calibration == refit  # the valid split's, nothing else's
    y_valid = splits.valid[label].to_numpy()
    assert meta.threshold == best_f1_threshold(y_valid, calibration.apply(valid_raw))
    # train.scale_pos_weight: auto inflates the raw scores; calibrated, they are frequencies
    y_test, test_raw = splits.test[label].to_numpy(), predict_proba(booster, splits.test)
    assert brier_score(y_test, calibration.apply(test_raw)) < brier_score(y_test, test_raw)

    save_model(booster, meta, tmp_path)
    assert json.loads((tmp_path / META_FILE).read_text())["calibration"] == method
    _, loaded = load_model(tmp_path, contract)
    assert loaded.calibration == calibration and loaded.threshold == meta.threshold


def test_a_model_dir_whose_calibration_is_missing_or_other_is_refused(
    splits, train_config, contract, tmp_path: Path
) -> None:
    booster, meta = train_model(
        splits, train_config.model_copy(update={"calibration": "platt"}), contract
    )
    save_model(booster, meta, tmp_path)
    (tmp_path / CALIBRATION_FILE).unlink()
    with pytest.raises(StageInputError, match=f"{CALIBRATION_FILE} not found.*dvc repro train"):
        load_model(tmp_path, contract)
    write_calibration(Calibration(), tmp_path / CALIBRATION_FILE)
    with pytest.raises(StageInputError, match="names the calibration 'platt' but"):
        load_model(tmp_path, contract)
