"""champion.py without a registry: where a version's threshold comes from, scoring by name."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.champion import (
    CHAMPION,
    DEFAULT_THRESHOLD,
    RUN_THRESHOLD_PARAM,
    THRESHOLD_TAG,
    ChampionModel,
    booster_scores,
    load_version,
    version_threshold,
)
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.model import FeatureMismatchError


class FakeClient:
    def __init__(self, params: dict[str, str], champion: str = "3") -> None:
        self.params = params
        self.champion = champion

    def get_run(self, run_id: str) -> SimpleNamespace:
        return SimpleNamespace(data=SimpleNamespace(params=self.params))

    def get_model_version(self, name: str, number: str) -> SimpleNamespace:
        return SimpleNamespace(name=name, version=number, run_id="r", tags={THRESHOLD_TAG: "0.4"})

    def get_model_version_by_alias(self, name: str, alias: str) -> SimpleNamespace:
        assert alias == CHAMPION
        return SimpleNamespace(version=self.champion)


def booster_of(features: list[str]):
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.random((20, len(features))), columns=features)
    return xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=np.arange(20) % 2), 2)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A fake registry: version number -> the booster mlflow.xgboost loads for it."""
    import mlflow
    import mlflow.xgboost

    boosters: dict[str, object] = {}
    monkeypatch.setattr(mlflow.xgboost, "load_model", lambda uri: boosters[uri.rsplit("/", 1)[-1]])
    client = FakeClient({})
    monkeypatch.setattr(mlflow, "MlflowClient", lambda: client)
    return {"boosters": boosters, "client": client}


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
    registry["boosters"]["3"] = booster_of([*rest, "retired_feature"])
    with pytest.raises(FeatureMismatchError) as failure:
        load_version(registry["client"], "m", "3", contract)
    message = str(failure.value)
    assert message.startswith("version 3 of model 'm' was trained on other features")
    assert f"it lacks: ['{first}']" in message
    assert "no longer produces: ['retired_feature']" in message
    registry["boosters"]["4"] = booster_of(list(reversed(contract.feature_columns)))
    loaded = load_version(registry["client"], "m", "4", contract)
    assert (loaded.version, loaded.threshold) == ("4", 0.4)


def test_the_champion_is_never_served_on_other_features(registry, contract) -> None:
    registry["boosters"]["3"] = booster_of(contract.feature_columns)
    registry["boosters"]["5"] = booster_of(["retired_feature"])
    champion = ChampionModel("m", contract, refresh_seconds=0)
    assert champion.get().version == "3"
    registry["client"].champion = "5"  # the alias moves to a model of another contract
    for _ in range(2):  # every call fails (and retries): the old model is not served silently
        with pytest.raises(FeatureMismatchError, match="version 5 of model 'm'"):
            champion.get()
    registry["client"].champion = "3"
    assert champion.get().version == "3"


def test_another_contract_is_checked_by_its_own_features(registry, contract) -> None:
    other = DatasetContract.model_validate(
        {
            "entity": {"name": "account", "key": "ref", "dtype": "string"},
            "timestamp": "seen_at",
            "label": {"column": "defaulted", "positive": "yes"},
            "categorical": {"zz_region": {"values": ["north", "south"], "nullable": True}},
        }
    )
    registry["boosters"]["6"] = booster_of(other.feature_columns)
    assert load_version(registry["client"], "m", "6", other).version == "6"
    with pytest.raises(FeatureMismatchError) as failure:
        load_version(registry["client"], "m", "6", contract)
    assert "no longer produces: ['zz_region_north', 'zz_region_south']" in str(failure.value)
