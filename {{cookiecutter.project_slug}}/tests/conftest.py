"""Shared fixtures: tiny, deterministic data and configs pointing at tmp_path."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.config import (
    Params,
    PromotionConfig,
    SplitConfig,
    TrainConfig,
    Window,
    load_params,
)
from {{ cookiecutter.package_name }}.contract import DatasetContract, EntitySpec
from {{ cookiecutter.package_name }}.contract_rows import contract_frame

from other_contracts import LOAN, with_second_contract
from tools import local_servers

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_params() -> Params:
    return load_params(PROJECT_ROOT / "params.yaml")


@pytest.fixture(scope="session")
def tiny_window() -> Window:
    return Window(end_date=dt.date(2026, 3, 31), days=24)


@pytest.fixture(scope="session")
def contract(project_params: Params) -> DatasetContract:
    """The project's dataset contract (params.yaml `dataset`): tests build frames from it."""
    return project_params.dataset


@pytest.fixture(scope="module", params=with_second_contract("loan"))
def any_contract(request: pytest.FixtureRequest, contract: DatasetContract) -> DatasetContract:
    """The project's contract, then one unlike it (tests/other_contracts.py LOAN)."""
    return contract if request.param == "project" else LOAN


def string_keyed(contract: DatasetContract) -> DatasetContract:
    """`contract` with a string entity key."""
    entity = EntitySpec(name="account", key="account_ref", dtype="string")
    return contract.model_copy(update={"entity": entity})


@pytest.fixture(params=with_second_contract("string_keyed"))
def any_key_contract(request: pytest.FixtureRequest, contract: DatasetContract) -> DatasetContract:
    """The project's contract, then the same with a string entity key."""
    return contract if request.param == "project" else string_keyed(contract)


@pytest.fixture(scope="session")
def tiny_raw(tiny_window: Window, contract: DatasetContract) -> pd.DataFrame:
    """Conformed raw rows of the tiny window, satisfying the project's contract."""
    return contract_frame(contract, tiny_window.dates(), 400, population=3000, seed=7)


@pytest.fixture(scope="session")
def split_config() -> SplitConfig:
    return SplitConfig(valid_days=4, test_days=4)


@pytest.fixture(scope="session")
def train_config(project_params: Params) -> TrainConfig:
    return project_params.train.model_copy(
        update={"num_boost_round": 60, "early_stopping_rounds": 10, "device": "cpu", "nthread": 2}
    )


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A real redis-server on 127.0.0.1 (installed by scripts/test-services.sh)."""
    with local_servers.redis_server(PROJECT_ROOT) as address:
        if address is None:
            pytest.skip("redis-server is not installed and could not be installed here")
        yield address


@pytest.fixture(scope="module")
def online_store(request: pytest.FixtureRequest) -> Iterator[None]:
    """The online store the pipeline's stages write to, ready for a module's real runs: for
    a Redis store (features/feature_store.yaml) a real redis-server, flushed (other modules
    materialize into the same Feast project there), its address reaching every stage
    process (dvc, Airflow tasks) through FEAST_REDIS_CONNECTION; nothing for SQLite."""
    config = yaml.safe_load((PROJECT_ROOT / "features" / "feature_store.yaml").read_text())
    if not config["online_store"]["type"].endswith(("redis", "RedisOnlineStore")):
        yield
        return
    import redis

    address = request.getfixturevalue("redis_server")
    host, port = address.split(":")
    redis.Redis(host=host, port=int(port)).flushall()
    before = os.environ.get("FEAST_REDIS_CONNECTION")
    os.environ["FEAST_REDIS_CONNECTION"] = address
    yield
    if before is None:
        os.environ.pop("FEAST_REDIS_CONNECTION", None)
    else:
        os.environ["FEAST_REDIS_CONNECTION"] = before


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium; installs Debian's `chromium` package when missing and allowed."""
    if found := find_chromium():
        return found
    if not shutil.which("apt-get"):
        pytest.skip("Chromium is not installed and apt-get is not available to install it")
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif (
        shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], check=False).returncode == 0
    ):
        prefix = ["sudo", "-n"]
    else:
        pytest.skip("Chromium is not installed; installing it needs root or passwordless sudo")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, env=env, timeout=1800, check=False
        )
        if done.returncode != 0:
            pytest.skip(f"could not install Chromium ({' '.join(command)}): {done.stderr[-400:]}")
    found = find_chromium()
    if not found:
        pytest.skip("apt-get installed chromium but no chromium binary is on PATH")
    return found


# The project's SQLite online store (features/feature_store.yaml, src/.../online_store.py).
SQLITE_STORE = "{{ cookiecutter.package_name }}.online_store.WideSqliteOnlineStore"
REDIS_STORE = "{{ cookiecutter.package_name }}.online_store.FastRedisOnlineStore"


def make_feast_repo(
    root: Path,
    features_frame: pd.DataFrame,
    online: str,
    redis: str | None = None,
    contract: DatasetContract | None = None,
) -> Path:
    """A scratch project holding a copy of features/ over `features_frame`, its params.yaml
    declaring `contract` (default: the project's dataset section). `online`: sqlite or redis
    (the project's stores), sqlite-stock or redis-stock (Feast's own provider and store). On Redis, the server is
    emptied first: every test's Feast project has the same name, and Feast keeps an online
    value whose timestamp is newer than the one being written."""
    if online.startswith("redis"):
        import redis as redis_client

        host, port = str(redis).split(":")
        redis_client.Redis(host=host, port=int(port)).flushall()
    repo = root / "features"
    shutil.copytree(
        PROJECT_ROOT / "features", repo, ignore=shutil.ignore_patterns("state", "__pycache__")
    )
    if contract is None:
        dataset = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())["dataset"]
    else:
        dataset = contract.model_dump(mode="json")
    (root / "params.yaml").write_text(
        yaml.safe_dump({"dataset": dataset, "paths": {"features": "data"}}, sort_keys=False)
    )
    (root / "data").mkdir()
    features_frame.to_parquet(
        root / "data" / "features.parquet", index=False, coerce_timestamps="us"
    )
    online_block = {
        "sqlite": f"  type: {SQLITE_STORE}\n  path: state/online_store.db\n",
        "sqlite-stock": "  type: sqlite\n  path: state/online_store.db\n",
        "redis": f"  type: {REDIS_STORE}\n  connection_string: {redis}\n",
        "redis-stock": f"  type: redis\n  connection_string: {redis}\n",
    }[online]
    text = (repo / "feature_store.yaml").read_text()
    if online.endswith("-stock"):  # Feast's own provider and online store
        text = re.sub(r"(?m)^provider: .*$", "provider: local", text)
    head, rest = text.split("online_store:", 1)
    tail = rest[rest.index("offline_store:") :]
    (repo / "feature_store.yaml").write_text(f"{head}online_store:\n{online_block}{tail}")
    return repo


@pytest.fixture(scope="session")
def tiny_features(tiny_raw: pd.DataFrame, contract: DatasetContract) -> pd.DataFrame:
    from {{ cookiecutter.package_name }}.features import build_features

    return build_features(tiny_raw, contract)


# --- the promotion gate's registry: a training set, models trained and logged as train does


def training_frame(raw: pd.DataFrame, contract: DatasetContract) -> pd.DataFrame:
    """What the training set holds: features, the label and the slice columns of each row
    (each entity appears once a day, so the point-in-time join is the row itself); also
    the raw categorical columns, which tests may name as slices."""
    from {{ cookiecutter.package_name }}.features import build_features

    features = build_features(raw, contract)
    extra = [contract.label.column, *contract.slices, *contract.categorical]
    return features.assign(
        **{c: raw[c].to_numpy() for c in dict.fromkeys(extra) if c not in features}
    )


def promotion_params(
    root: Path, project: Params, raw: pd.DataFrame, split: SplitConfig, gate: PromotionConfig
) -> Params:
    """Params with every path under `root` and the promotion gate `gate`, and the training
    set of `raw` written there (point MLFLOW_TRACKING_URI at a store of your own)."""
    paths = project.paths.model_copy(
        update={k: root / v for k, v in project.paths.model_dump().items()}
    )
    params = project.model_copy(update={"paths": paths, "split": split, "promote": gate})
    paths.training_set.parent.mkdir(parents=True)
    training_frame(raw, project.dataset).to_parquet(paths.training_set, index=False)
    return params


def train_and_log(p: Params, cfg: TrainConfig) -> str:
    """What the train stage does: fit, save (UBJSON), log the run, write mlflow_run.json."""
    from {{ cookiecutter.package_name }} import tracking
    from {{ cookiecutter.package_name }}.files import write_json
    from {{ cookiecutter.package_name }}.model import save_model
    from {{ cookiecutter.package_name }}.split import time_split
    from {{ cookiecutter.package_name }}.training import train_model

    splits = time_split(pd.read_parquet(p.paths.training_set), p.split, p.dataset)
    booster, meta = train_model(splits, cfg, p.dataset)
    save_model(booster, meta, p.paths.model_dir)
    tracking.setup_mlflow(p.mlflow)
    sample = splits.train[p.dataset.feature_columns].head(5).astype("float32")
    run_id = tracking.log_training(booster, meta, {}, sample, tags={})
    write_json({"run_id": run_id}, p.paths.model_dir / tracking.RUN_FILE)
    return run_id


def aliases(p: Params) -> dict[str, str]:
    """alias -> version of the registered model `p.mlflow.registered_model`."""
    import mlflow

    model = mlflow.MlflowClient().get_registered_model(p.mlflow.registered_model)
    return {alias: str(version) for alias, version in model.aliases.items()}


@pytest.fixture(scope="module", params=with_second_contract("string_keyed"))
def serving_setup(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    contract: DatasetContract,
    tiny_window: Window,
    tiny_raw: pd.DataFrame,
    split_config: SplitConfig,
    train_config: TrainConfig,
) -> dict:
    """For the project's contract, then a string-keyed one: a real Feast store (SQLite,
    materialized), a real MLflow registry (SQLite in tmp) holding two versions trained
    here (`versions`; the first is `champion`) and the service over them (`http`)."""
    import mlflow
    from fastapi.testclient import TestClient

    from {{ cookiecutter.package_name }} import tracking
    from {{ cookiecutter.package_name }}.champion import CHAMPION, ChampionModel, register
    from {{ cookiecutter.package_name }}.config import MlflowConfig
    from {{ cookiecutter.package_name }}.feature_store import open_store
    from {{ cookiecutter.package_name }}.features import build_features, build_labels
    from {{ cookiecutter.package_name }}.materialization import materialize
    from {{ cookiecutter.package_name }}.serving import create_app
    from {{ cookiecutter.package_name }}.split import time_split
    from {{ cookiecutter.package_name }}.training import train_model

    from tools.point_in_time import point_in_time_join

    if request.param == "project":
        raw = tiny_raw
    else:
        contract = string_keyed(contract)
        raw = contract_frame(contract, tiny_window.dates(), 300, population=2000, seed=5)
    features = build_features(raw, contract)
    root = tmp_path_factory.mktemp(f"serving-{request.param}")
    store = open_store(make_feast_repo(root, features, "sqlite", contract=contract))
    materialize(store, features, contract)
    model = f"serving-test-{request.param}"
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    tracking.setup_mlflow(
        MlflowConfig(
            tracking_uri=mlflow.get_tracking_uri(), experiment="t", registered_model=model
        ),
        root,
    )
    labelled = point_in_time_join(build_labels(raw, contract), features, contract)
    splits = time_split(labelled, split_config, contract)
    client = mlflow.MlflowClient()
    versions = []
    for depth in (3, 5):  # two versions, to see the alias move
        cfg = train_config.model_copy(update={"max_depth": depth})
        booster, meta = train_model(splits, cfg, contract)
        sample = splits.train[contract.feature_columns].head(5).astype("float32")
        run_id = tracking.log_training(booster, meta, {"train.max_depth": depth}, sample, {})
        versions.append(str(register(client, model, run_id, meta.threshold).version))
    client.set_registered_model_alias(model, CHAMPION, versions[0])
    champion = ChampionModel(model, contract, refresh_seconds=0)
    log_path = root / "logs" / "predictions.jsonl"
    return {
        "contract": contract,
        "features": features,
        "labelled": labelled,  # the training set the versions were trained on (time_split)
        "model": model,
        "store": store,
        "http": TestClient(create_app(store, champion, log_path, contract)),
        "client": client,
        "versions": versions,
        "log": log_path,
        "root": root,
    }


def known_ids(setup: dict, n: int) -> list[int | str]:
    """`n` ids the online store of `serving_setup` holds."""
    key = setup["contract"].entity.key
    return setup["features"][key].drop_duplicates().head(n).tolist()


def predict(setup: dict, ids: list, http: object = None) -> dict:
    """POST /predict to `http` (default: setup's service); asserts a 200."""
    response = (http or setup["http"]).post("/predict", json={"ids": ids})
    assert response.status_code == 200, response.text
    return response.json()


def booster_of(features: list[str]):
    """A tiny XGBoost booster reading `features` (by name)."""
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.random((20, len(features))), columns=features)
    return xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=np.arange(20) % 2), 2)


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    """One real MLflow store (SQLite, local artifacts) for the module: creating one costs
    seconds; each test registers a model of its own name in it."""
    import mlflow

    root = tmp_path_factory.mktemp("registry")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("t", (root / "a").as_uri()))
    yield mlflow.MlflowClient(), root / "a"
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def registry(mlflow_store, request: pytest.FixtureRequest) -> Registry:
    """A model of the test's own name in the module's MLflow store."""
    client, artifacts = mlflow_store
    return Registry(client, artifacts, "m-" + re.sub(r"[^\w-]", "-", request.node.name))


class Registry:
    """add() logs a booster and registers it as a version of model `name`."""

    def __init__(self, client: object, artifacts: Path, name: str) -> None:
        self.client, self.artifacts, self.name = client, artifacts, name

    def add(self, booster: object, calibration: object = None) -> str:
        """Log and register `booster`, with `calibration` (calibration.Calibration) among
        its files when given (as the train stage logs every model)."""
        import tempfile

        import mlflow
        import mlflow.xgboost

        from {{ cookiecutter.package_name }}.calibration import CALIBRATION_FILE, write_calibration
        from {{ cookiecutter.package_name }}.champion import register

        with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
            extra = []
            if calibration is not None:
                write_calibration(calibration, Path(tmp) / CALIBRATION_FILE)
                extra = [str(Path(tmp) / CALIBRATION_FILE)]
            mlflow.xgboost.log_model(
                booster, name="model", model_format="ubj", pip_requirements=[], extra_files=extra
            )
        return str(register(self.client, self.name, run.info.run_id, 0.4).version)

    def model_file(self, version: str, name: str = "model.ubj") -> Path:
        """Where the registry keeps the version's model file (what an attacker would edit),
        or another of its files (`name`: a path inside the model's artifacts)."""
        source = self.client.get_model_version(self.name, version).source  # models:/<model id>
        model_id = source.removeprefix("models:/")
        (path,) = self.artifacts.glob(f"**/{model_id}/artifacts/{name}")
        return path

    def champion(self, version: str) -> None:
        from {{ cookiecutter.package_name }}.champion import CHAMPION

        self.client.set_registered_model_alias(self.name, CHAMPION, version)
