"""Tuning (tuning.py, stages/tune.py): the Optuna search on the time split's train/valid
days, its MLflow runs, the file train reads back, and the checks of params.yaml `tune`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import xgboost as xgb
from test_config import write_params

from {{ cookiecutter.package_name }}.config import ConfigError, Params, SplitConfig, TrainConfig
from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.model import training_matrices, xgb_params
from {{ cookiecutter.package_name }}.split import Splits, time_split
from {{ cookiecutter.package_name }}.stages import train as train_stage
from {{ cookiecutter.package_name }}.stages import tune as tune_stage
from {{ cookiecutter.package_name }}.training import train_model
from {{ cookiecutter.package_name }}.tune_config import TuneConfig
from {{ cookiecutter.package_name }}.tuning import (
    PruningCallback,
    Tuned,
    check_search_space,
    read_tuned,
    search,
    tuned_config,
)

from conftest import promotion_params, training_frame

TRIALS = 5


@pytest.fixture(scope="module")
def splits(tiny_raw: pd.DataFrame, split_config: SplitConfig, contract) -> Splits:
    return time_split(training_frame(tiny_raw, contract), split_config, contract)


@pytest.fixture(scope="module")
def train(train_config: TrainConfig) -> TrainConfig:
    """Few rounds and one thread: a trial costs well under a second on the tiny data (many
    threads on a busy machine cost more than they give here)."""
    return train_config.model_copy(
        update={"num_boost_round": 40, "early_stopping_rounds": 8, "nthread": 1}
    )


@pytest.fixture(scope="module")
def tune(project_params: Params) -> TuneConfig:
    return project_params.tune.model_copy(update={"enabled": True, "n_trials": TRIALS})


@pytest.fixture(scope="module")
def searched(splits, tune, train, contract) -> tuple[Tuned, list]:
    trials: list = []
    tuned = search(splits, tune, train, contract, on_trial=lambda _, t: trials.append(t))
    return tuned, trials


def test_trial_zero_is_trains_own_parameters_and_the_best_beats_it_on_valid(
    searched, splits, tune, train, contract
) -> None:
    tuned, trials = searched
    assert len(trials) == tuned.trials == TRIALS
    assert trials[0].params == {key: getattr(train, key) for key in tune.search_space}
    assert tuned.default_value == pytest.approx(trials[0].value)
    assert tuned.value >= tuned.default_value
    assert set(tuned.params) == set(tune.search_space)
    # train with the tuned values reproduces the best trial's score on the valid days, and
    # it is at least what params.yaml's own values reach
    _, default_meta = train_model(splits, train, contract)
    _, tuned_meta = train_model(splits, tuned_config(train, tuned), contract)
    assert default_meta.valid_metrics["valid_aucpr"] == pytest.approx(tuned.default_value)
    assert tuned_meta.valid_metrics["valid_aucpr"] == pytest.approx(tuned.value)
    assert tuned_meta.valid_metrics["valid_aucpr"] >= default_meta.valid_metrics["valid_aucpr"]


def test_the_same_seed_gives_the_same_search(searched, splits, tune, train, contract) -> None:
    tuned, trials = searched
    again: list = []
    repeat = search(splits, tune, train, contract, on_trial=lambda _, t: again.append(t))
    assert repeat.params == tuned.params
    assert repeat.value == tuned.value
    assert [t.params for t in again] == [t.params for t in trials]
    drawn: list = []
    other_seed = tune.model_copy(update={"seed": 7, "n_trials": 2})
    search(splits, other_seed, train, contract, on_trial=lambda _, t: drawn.append(t))
    assert drawn[0].params == trials[0].params  # trial 0: train's own, whatever the seed
    assert drawn[1].params != trials[1].params  # the sampler's draws follow the seed


def test_the_test_days_are_never_read(searched, splits, tune, train, contract) -> None:
    tuned, _ = searched
    scrambled = Splits(splits.train, splits.valid, splits.test.iloc[:0])
    assert search(scrambled, tune, train, contract).params == tuned.params


def test_the_search_trains_locally_whatever_the_engine(searched, splits, tune, train, contract):
    tuned, _ = searched
    on_dask = train.model_copy(update={"engine": "dask"})
    local = search(splits, tune, on_dask, contract)  # no cluster is started
    assert (local.params, local.value) == (tuned.params, tuned.value)


def test_train_without_the_tune_output_names_the_stage(project: Params) -> None:
    with pytest.raises(StageInputError, match=r"'tune' stage\. Run `dvc repro tune`"):
        train_stage.run(
            project.paths, project.split, project.train, project.mlflow, project.dataset
        )


def test_a_trial_behind_the_pruner_stops_early(splits, train, contract) -> None:
    import optuna

    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.01)
    )
    trial = study.ask()
    dtrain, dvalid = training_matrices(splits, train, contract)
    with pytest.raises(optuna.TrialPruned, match="round 0"):
        xgb.train(
            xgb_params(train, "cpu", 1.0),
            dtrain,
            num_boost_round=train.num_boost_round,
            evals=[(dvalid, "valid")],
            verbose_eval=False,
            callbacks=[PruningCallback(trial)],
        )
    assert list(trial.storage.get_trial(trial._trial_id).intermediate_values) == [0]


@pytest.fixture
def project(
    tmp_path: Path, tiny_raw: pd.DataFrame, split_config, project_params: Params, train
) -> Iterator[Params]:
    """Params with every path under tmp_path, a training set there, its own MLflow store."""
    p = promotion_params(tmp_path, project_params, tiny_raw, split_config, project_params.promote)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
        mp.chdir(tmp_path)
        yield p.model_copy(update={"train": train})


def runs(p: Params, query: str) -> list:
    import mlflow

    experiment = mlflow.get_experiment_by_name(p.mlflow.experiment)
    return mlflow.MlflowClient().search_runs([experiment.experiment_id], query)


def test_stage_logs_a_run_per_trial_and_train_uses_the_best(project: Params, tune) -> None:
    p = project
    tuned = tune_stage.run(
        p.paths, p.split, tune.model_copy(update={"n_trials": 3}), p.train, p.mlflow, p.dataset
    )
    written = json.loads(p.paths.tuned_params.read_text())
    assert written["enabled"] is True and written["params"] == tuned.params
    (parent,) = runs(p, "tags.stage = 'tune'")
    assert parent.info.run_id == tuned.mlflow_run_id
    assert parent.data.metrics["best_valid_aucpr"] == pytest.approx(tuned.value)
    children = runs(p, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == tuned.trials == 3
    assert {c.data.tags["stage"] for c in children} == {"tune.trial"}
    number = {int(c.data.params["trial.number"]): c for c in children}
    assert float(number[0].data.params["learning_rate"]) == p.train.learning_rate

    train_stage.run(p.paths, p.split, p.train, p.mlflow, p.dataset)
    (trained,) = runs(p, "tags.stage = 'train'")
    assert trained.data.params["tune.enabled"] == "True"
    assert trained.data.params["tune.tuned_keys"] == ",".join(sorted(tuned.params))
    assert trained.data.tags["tune.run_id"] == tuned.mlflow_run_id
    assert float(trained.data.params["train.max_depth"]) == tuned.params["max_depth"]
    assert trained.data.metrics["valid_aucpr"] == pytest.approx(tuned.value)


def test_stage_off_records_only_that_and_train_keeps_its_params(project: Params, tune) -> None:
    p = project
    off = tune.model_copy(update={"enabled": False})
    assert tune_stage.run(p.paths, p.split, off, p.train, p.mlflow, p.dataset) == Tuned(False)
    assert json.loads(p.paths.tuned_params.read_text()) == {"enabled": False}
    assert read_tuned(p.paths.tuned_params) == Tuned(enabled=False)
    assert tuned_config(p.train, read_tuned(p.paths.tuned_params)) == p.train
    train_stage.run(p.paths, p.split, p.train, p.mlflow, p.dataset)
    (trained,) = runs(p, "tags.stage = 'train'")
    assert trained.data.params["tune.enabled"] == "False"
    assert trained.data.params["tune.tuned_keys"] == "none"
    assert float(trained.data.params["train.learning_rate"]) == p.train.learning_rate
    assert runs(p, "tags.stage = 'tune'") == []


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"gamma": {"low": 0, "high": 1}}, r"search_space\.gamma.*should be 'learning_rate'"),
        ({"learning_rate": {"low": 0.3, "high": 0.1}}, r"low \(0\.3\) must be below high"),
        ({"reg_lambda": {"low": 0, "high": 5, "log": True}}, r"log range needs low > 0"),
        ({"max_depth": {"low": 3, "high": 7.5}}, r"max_depth is an integer"),
        ({"subsample": {"low": 0.5, "high": 1, "choices": [0.8]}}, r"either choices or low"),
        ({"subsample": {"low": 0.5}}, r"give low and high"),
        ({}, r"tune\.search_space"),
    ],
)
def test_bad_search_space_is_rejected_naming_the_key(
    tmp_path: Path, space: dict, message: str
) -> None:
    path = write_params(tmp_path, lambda p: p["tune"].update({"search_space": space}))
    with pytest.raises(ConfigError, match=message):
        from {{ cookiecutter.package_name }}.config import load_params

        load_params(path)


def test_space_must_hold_valid_train_values_and_trains_own(project_params: Params) -> None:
    train = project_params.train
    beyond = TuneConfig.model_validate({"search_space": {"subsample": {"low": 0.5, "high": 1.5}}})
    with pytest.raises(ConfigError, match=r"tune\.search_space\.subsample: 1\.5 is not a valid"):
        check_search_space(beyond, train)
    narrow = TuneConfig.model_validate({"search_space": {"learning_rate": {"choices": [0.2, 0.3]}}})
    with pytest.raises(ConfigError, match=r"train\.learning_rate \(0\.08\) lies outside"):
        check_search_space(narrow, train)
    with pytest.raises(ConfigError, match=r"lies outside"):
        tune_stage.run(
            project_params.paths,
            project_params.split,
            narrow,
            train,
            project_params.mlflow,
            project_params.dataset,
        )  # fails even while tuning is off: the next `enabled: true` would
