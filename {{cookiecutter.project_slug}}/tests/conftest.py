"""Shared fixtures: tiny, deterministic data and configs pointing at tmp_path."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
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


@pytest.fixture(params=with_second_contract("string_keyed"))
def any_key_contract(request: pytest.FixtureRequest, contract: DatasetContract) -> DatasetContract:
    """The project's contract, then the same with a string entity key."""
    if request.param == "project":
        return contract
    entity = EntitySpec(name="account", key="account_ref", dtype="string")
    return contract.model_copy(update={"entity": entity})


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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A real redis-server on 127.0.0.1 (installed by scripts/test-services.sh)."""
    if shutil.which("redis-server") is None:
        subprocess.run([str(PROJECT_ROOT / "scripts" / "test-services.sh")], check=False)
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed and could not be installed here")
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):  # bounded wait for start-up
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def online_store(request: pytest.FixtureRequest) -> Iterator[None]:
    """The online store the pipeline's stages write to, ready for a module's real runs: for
    a Redis store (features/feature_store.yaml) a real redis-server, flushed (other modules
    materialize into the same Feast project there), its address reaching every stage
    process (dvc, Airflow tasks) through FEAST_REDIS_CONNECTION; nothing for SQLite."""
    if "type: redis" not in (PROJECT_ROOT / "features" / "feature_store.yaml").read_text():
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


def make_feast_repo(
    root: Path,
    features_frame: pd.DataFrame,
    online: str,
    redis: str | None = None,
    contract: DatasetContract | None = None,
) -> Path:
    """A scratch project holding a copy of features/ over `features_frame`, its params.yaml
    declaring `contract` (default: the project's dataset section). On Redis, the server is
    emptied first: every test's Feast project has the same name, and Feast keeps an online
    value whose timestamp is newer than the one being written."""
    if online == "redis":
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
        "sqlite": "  type: sqlite\n  path: state/online_store.db\n",
        "redis": f"  type: redis\n  connection_string: {redis}\n",
    }[online]
    text = (repo / "feature_store.yaml").read_text()
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
