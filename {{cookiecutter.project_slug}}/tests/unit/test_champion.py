"""champion.py: where a version's threshold comes from, scoring by name, and loading a
version from a real (SQLite) registry only when its features and bytes are the registered ones."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.calibration import CALIBRATION_FILE, Calibration
from {{ cookiecutter.package_name }}.champion import (
    CALIBRATION_DIGEST_TAG,
    DEFAULT_THRESHOLD,
    DIGEST_TAG,
    RUN_THRESHOLD_PARAM,
    THRESHOLD_TAG,
    ChampionModel,
    ModelIntegrityError,
    booster_scores,
    load_version,
    version_threshold,
)
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.model import FeatureMismatchError

from conftest import booster_of


class FakeClient:
    def __init__(self, params: dict[str, str]) -> None:
        self.params = params

    def get_run(self, run_id: str) -> SimpleNamespace:
        return SimpleNamespace(data=SimpleNamespace(params=self.params))


def version(tags: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(name="m", version="3", run_id="r", tags=tags)


def test_the_version_tag_is_the_threshold() -> None:
    client = FakeClient({RUN_THRESHOLD_PARAM: "0.2"})
    assert version_threshold(client, version({THRESHOLD_TAG: "0.37"})) == 0.37


def test_a_version_registered_by_hand_falls_back_to_the_run_param() -> None:
    assert version_threshold(FakeClient({RUN_THRESHOLD_PARAM: "0.2"}), version({})) == 0.2
    assert version_threshold(FakeClient({}), version({})) == DEFAULT_THRESHOLD


def test_booster_scores_reads_features_by_name() -> None:
    import xgboost as xgb

    x = pd.DataFrame({"a": [0.0, 1.0, 0.0, 1.0], "b": [1.0, 1.0, 0.0, 0.0]})
    booster = xgb.train(
        {"objective": "binary:logistic"},
        xgb.DMatrix(x, label=[0, 1, 0, 1]),
        num_boost_round=2,
    )
    scores = booster_scores(booster, x[["b", "a"]].assign(extra=1.0))
    assert np.allclose(scores, booster.predict(xgb.DMatrix(x)))
    with pytest.raises(StageInputError, match="lack features the model reads: \\['b'\\]"):
        booster_scores(booster, x[["a"]])


def test_a_version_trained_on_other_features_fails_to_load(registry, contract) -> None:
    first, *rest = contract.feature_columns
    retired = registry.add(booster_of([*rest, "retired_feature"]))
    with pytest.raises(FeatureMismatchError) as failure:
        load_version(registry.client, registry.name, retired, contract)
    message = str(failure.value)
    assert message.startswith(
        f"version {retired} of model '{registry.name}' was trained on other features"
    )
    assert f"it lacks: ['{first}']" in message
    assert "no longer produces: ['retired_feature']" in message
    reordered = registry.add(booster_of(list(reversed(contract.feature_columns))))
    loaded = load_version(registry.client, registry.name, reordered, contract)
    assert (loaded.version, loaded.threshold) == (reordered, 0.4)


def test_the_champion_is_never_served_on_other_features(registry, contract) -> None:
    good = registry.add(booster_of(contract.feature_columns))
    other = registry.add(booster_of(["retired_feature"]))
    registry.champion(good)
    champion = ChampionModel(registry.name, contract, refresh_seconds=0)
    assert champion.get().version == good
    registry.champion(other)  # the alias moves to a model of another contract
    for _ in range(2):  # every call fails (and retries): the old model is not served silently
        with pytest.raises(
            FeatureMismatchError, match=f"version {other} of model '{registry.name}'"
        ):
            champion.get()
    registry.champion(good)
    assert champion.get().version == good


def test_another_contract_is_checked_by_its_own_features(registry, contract) -> None:
    other = DatasetContract.model_validate(
        {
            "entity": {"name": "account", "key": "ref", "dtype": "string"},
            "timestamp": "seen_at",
            "label": {"column": "defaulted", "positive": "yes"},
            "categorical": {"zz_region": {"values": ["north", "south"], "nullable": True}},
        }
    )
    version = registry.add(booster_of(other.feature_columns))
    assert load_version(registry.client, registry.name, version, other).version == version
    with pytest.raises(FeatureMismatchError) as failure:
        load_version(registry.client, registry.name, version, contract)
    assert "no longer produces: ['zz_region_north', 'zz_region_south']" in str(failure.value)


def test_registering_records_the_model_files_sha256(registry, contract) -> None:
    version = registry.add(booster_of(contract.feature_columns))
    tags = registry.client.get_model_version(registry.name, version).tags
    assert tags[DIGEST_TAG] == hashlib.sha256(registry.model_file(version).read_bytes()).hexdigest()


def test_a_tampered_model_file_is_refused_naming_both_digests(registry, contract) -> None:
    version = registry.add(booster_of(contract.feature_columns))
    registry.champion(version)
    champion = ChampionModel(registry.name, contract, refresh_seconds=0)
    assert champion.get().version == version
    recorded = registry.client.get_model_version(registry.name, version).tags[DIGEST_TAG]
    path = registry.model_file(version)
    path.write_bytes(booster_of(list(reversed(contract.feature_columns))).save_raw("ubj"))
    tampered = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ModelIntegrityError) as failure:
        load_version(registry.client, registry.name, version, contract)
    message = str(failure.value)
    assert f"version {version} of model '{registry.name}'" in message
    assert tampered in message and recorded in message
    fresh = ChampionModel(registry.name, contract, refresh_seconds=0)  # a service starting now
    with pytest.raises(ModelIntegrityError):
        fresh.get()


def test_a_version_without_a_recorded_digest_is_not_loaded(registry, contract) -> None:
    import mlflow
    import mlflow.xgboost

    with mlflow.start_run() as run:
        mlflow.xgboost.log_model(
            booster_of(contract.feature_columns),
            name="model",
            model_format="ubj",
            pip_requirements=[],
        )
    by_hand = mlflow.register_model(f"runs:/{run.info.run_id}/model", registry.name).version
    with pytest.raises(
        ModelIntegrityError, match=f"version {by_hand} of model '{registry.name}' records no"
    ):
        load_version(registry.client, registry.name, str(by_hand), contract)


ISOTONIC = Calibration(method="isotonic", x=[0.1, 0.4, 0.8], y=[0.02, 0.1, 0.6], rows=100)
CALIBRATION_PATH = f"extra_files/{CALIBRATION_FILE}"


def test_a_version_carries_its_calibration_checked_by_its_sha256(registry, contract) -> None:
    booster = booster_of(contract.feature_columns)
    version = registry.add(booster, ISOTONIC)
    stored = registry.model_file(version, CALIBRATION_PATH)
    tags = registry.client.get_model_version(registry.name, version).tags
    assert tags[CALIBRATION_DIGEST_TAG] == hashlib.sha256(stored.read_bytes()).hexdigest()
    loaded = load_version(registry.client, registry.name, version, contract)
    assert loaded.calibration == ISOTONIC
    rows = pd.DataFrame(np.random.default_rng(0).random((8, len(contract.feature_columns))))
    rows.columns = contract.feature_columns
    np.testing.assert_array_equal(
        booster_scores(loaded.booster, rows, loaded.calibration),
        ISOTONIC.apply(booster_scores(booster, rows)),
    )
    registry.champion(version)
    assert ChampionModel(registry.name, contract, refresh_seconds=0).get().calibration == ISOTONIC


def test_a_tampered_or_missing_calibration_is_refused(registry, contract) -> None:
    version = registry.add(booster_of(contract.feature_columns), ISOTONIC)
    stored = registry.model_file(version, CALIBRATION_PATH)
    recorded = registry.client.get_model_version(registry.name, version).tags[
        CALIBRATION_DIGEST_TAG
    ]
    stored.write_text(stored.read_text().replace("0.6", "0.9"))  # a valid, other calibration
    with pytest.raises(ModelIntegrityError) as failure:
        load_version(registry.client, registry.name, version, contract)
    message = str(failure.value)
    assert f"version {version} of model '{registry.name}': its calibration" in message
    assert recorded in message and hashlib.sha256(stored.read_bytes()).hexdigest() in message
    stored.unlink()
    with pytest.raises(ModelIntegrityError, match="its calibration: its file is missing"):
        load_version(registry.client, registry.name, version, contract)


def test_a_version_logged_without_a_calibration_scores_uncalibrated(registry, contract) -> None:
    version = registry.add(booster_of(contract.feature_columns))  # as before calibrations
    tags = registry.client.get_model_version(registry.name, version).tags
    assert CALIBRATION_DIGEST_TAG not in tags
    assert load_version(registry.client, registry.name, version, contract).calibration == (
        Calibration()
    )
