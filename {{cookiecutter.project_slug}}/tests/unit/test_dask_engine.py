"""The `dask` training engine (dask_engine.py) on real two-worker Dask clusters.

Tolerance: the Dask engine trains on two workers, whose quantile sketches and
histograms are merged, so its trees differ slightly from the local engine's; its
test ROC AUC must be within AUC_TOLERANCE (0.02) of the local engine's.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from {{ cookiecutter.package_name }} import dask_engine
from {{ cookiecutter.package_name }}.config import DaskConfig, TrainConfig
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.errors import ClusterError, PipelineError
from {{ cookiecutter.package_name }}.features import build_features
from {{ cookiecutter.package_name }}.model import MODEL_FILE, load_model, predict_proba, save_model
from {{ cookiecutter.package_name }}.split import Splits, time_split
from {{ cookiecutter.package_name }}.training import train_model

from tools.local_servers import free_port

AUC_TOLERANCE = 0.02  # |test ROC AUC (dask) - test ROC AUC (local)|, see the README


@pytest.fixture(scope="module")
def splits(tiny_raw: pd.DataFrame, split_config, contract: DatasetContract) -> Splits:
    """The time split of the tiny window's rows: features and label (each entity appears
    once a day, so the point-in-time join of a label is its own row's features)."""
    label = contract.label.column
    frame = build_features(tiny_raw, contract).assign(**{label: tiny_raw[label].to_numpy()})
    return time_split(frame, split_config, contract)


@pytest.fixture(scope="module")
def dask_config(train_config: TrainConfig) -> TrainConfig:
    return train_config.model_copy(update={"engine": "dask"})


@pytest.fixture(scope="module")
def scheduler_address() -> Iterator[str]:
    """A running two-worker cluster, reached through dask.scheduler_address."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def dask_model(splits, dask_config, scheduler_address, contract):
    return train_model(
        splits,
        dask_config,
        contract,
        DaskConfig(scheduler_address=scheduler_address, partitions=4),
    )


def test_dask_engine_matches_the_local_engine(splits, train_config, dask_model, contract) -> None:
    local, local_meta = train_model(splits, train_config, contract)
    booster, meta = dask_model
    assert (meta.engine, meta.workers, meta.device) == ("dask", 2, "cpu")
    assert meta.xgb_params == local_meta.xgb_params  # same params
    assert meta.feature_names == contract.feature_columns == booster.feature_names
    assert meta.split_summary == local_meta.split_summary
    assert meta.best_iteration + 1 == booster.num_boosted_rounds()
    assert 0.0 < meta.threshold < 1.0
    y = splits.test[contract.label.column]
    local_auc = roc_auc_score(y, predict_proba(local, splits.test))
    dask_auc = roc_auc_score(y, predict_proba(booster, splits.test))
    assert abs(dask_auc - local_auc) <= AUC_TOLERANCE, (dask_auc, local_auc)
    assert dask_auc > 0.6


def test_dask_model_is_saved_as_ubjson_and_loads_for_local_prediction(
    splits, dask_model, contract, tmp_path: Path
) -> None:
    booster, meta = dask_model
    path = save_model(booster, meta, tmp_path)
    assert path.name == MODEL_FILE
    assert path.read_bytes()[:1] == b"{"  # UBJSON object marker, not a pickle
    loaded, loaded_meta = load_model(tmp_path, contract)
    assert loaded_meta == meta
    np.testing.assert_allclose(
        predict_proba(loaded, splits.test), predict_proba(booster, splits.test)
    )


def test_local_cluster_is_started_and_cuda_falls_back_to_cpu(
    splits, dask_config, contract, caplog
) -> None:
    # No GPU here: device cuda on the Dask engine trains on CPU workers, with a warning.
    # scheduler_address null: the engine starts (and closes) a LocalCluster of n_workers.
    cfg = dask_config.model_copy(update={"device": "cuda"})
    with caplog.at_level(logging.WARNING):
        booster, meta = train_model(splits, cfg, contract, DaskConfig(n_workers=2))
    assert "train.device is 'cuda' but no usable CUDA GPU was found" in caplog.text
    assert (meta.engine, meta.workers, meta.device) == ("dask", 2, "cpu")
    assert meta.xgb_params["device"] == "cpu"
    y = splits.test[contract.label.column]
    assert roc_auc_score(y, predict_proba(booster, splits.test)) > 0.6


def test_workers_without_gpu_fall_back_to_cpu(scheduler_address, caplog) -> None:
    from distributed import Client

    with Client(scheduler_address, set_as_default=False) as client:
        assert dask_engine.workers_device(client, "cpu") == "cpu"
        assert dask_engine.workers_device(client, "auto") == "cpu"
        assert "no usable CUDA GPU" not in caplog.text  # auto falls back silently
        assert dask_engine.workers_device(client, "cuda") == "cpu"
    assert "Dask workers have no usable CUDA GPU" in caplog.text


def test_gpu_machine_starts_one_cuda_worker_per_gpu(monkeypatch) -> None:
    # The GPU path itself needs a GPU and dask-cuda; check the choice it makes.
    from distributed import LocalCluster

    started: dict = {}

    def fake_cuda_cluster(**options):
        started.update(options)
        return LocalCluster(n_workers=1, processes=False, dashboard_address=":0")

    fake = types.ModuleType("dask_cuda")
    fake.LocalCUDACluster = fake_cuda_cluster  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dask_cuda", fake)
    monkeypatch.setattr(dask_engine, "cuda_usable", lambda: True)
    monkeypatch.setattr(dask_engine.importlib.util, "find_spec", lambda name: object())
    assert dask_engine.local_cluster_device("auto") == "cuda"
    cfg = DaskConfig(n_workers=3, threads_per_worker=2, memory_limit="1GiB")
    with dask_engine.dask_client(cfg, "cuda") as client:
        assert len(client.scheduler_info()["workers"]) == 1
    assert started == {"threads_per_worker": 2, "memory_limit": "1GiB", "dashboard_address": ":0"}


def test_gpu_without_dask_cuda_warns_and_uses_cpu(monkeypatch, caplog) -> None:
    monkeypatch.setattr(dask_engine, "cuda_usable", lambda: True)
    monkeypatch.setattr(dask_engine.importlib.util, "find_spec", lambda name: None)
    assert dask_engine.local_cluster_device("auto") == "cpu"
    assert "dask-cuda is not installed (pip install dask-cuda)" in caplog.text


@pytest.mark.parametrize(
    "address", ["tcp://127.0.0.1:{port}", "tcp://no-such-host.invalid:8786", "http://{port}"]
)
def test_unreachable_scheduler_fails_fast_and_clearly(
    splits, dask_config, contract, address
) -> None:
    address = address.format(port=free_port())
    started = time.monotonic()
    with pytest.raises(ClusterError) as failure:
        train_model(splits, dask_config, contract, DaskConfig(scheduler_address=address))
    assert time.monotonic() - started < 5  # refused / unknown host: no retry loop
    message = str(failure.value)
    assert address in message
    assert "dask.scheduler_address" in message
    assert "\n" not in message  # one paragraph; the CLI prints it without a traceback
    assert isinstance(failure.value, PipelineError)


@contextmanager
def tcp_server(reply: bytes | None) -> Iterator[str]:
    """Something that is not a Dask scheduler: it answers `reply`, or nothing at all."""
    server = socket.create_server(("127.0.0.1", 0))
    connections: list[socket.socket] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                connections.append(conn)
                if reply is not None:
                    conn.sendall(reply)
                    conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for conn in connections:
            conn.close()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4, "does not answer as a Dask scheduler"),
        (None, "no reply within 0.5 s"),
    ],
)
def test_something_else_at_the_scheduler_address_fails_clearly(
    splits, dask_config, contract, monkeypatch, reply, reason
) -> None:
    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT", 0.5)
    with tcp_server(reply) as address:
        started = time.monotonic()
        with pytest.raises(ClusterError, match=reason) as failure:
            train_model(splits, dask_config, contract, DaskConfig(scheduler_address=address))
    assert time.monotonic() - started < 5
    assert address in str(failure.value)
    assert "dask.scheduler_address" in str(failure.value)


def test_local_engine_does_not_import_distributed(contract: DatasetContract) -> None:
    code = """
import sys
import numpy as np, pandas as pd
import {{ cookiecutter.package_name }}.cli
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.split import Splits
from {{ cookiecutter.package_name }}.training import train_model

contract = DatasetContract.model_validate_json(CONTRACT)
features, label = contract.feature_columns, contract.label.column
rng = np.random.default_rng(0)
def part(n):
    frame = pd.DataFrame(rng.random((n, len(features))), columns=features)
    return frame.assign(**{label: np.arange(n) % 2})
cfg = TrainConfig(
    engine="local", device="cpu", num_boost_round=3, early_stopping_rounds=2, learning_rate=0.3,
    max_depth=2, min_child_weight=1, subsample=1, colsample_bytree=1, reg_lambda=1, max_bin=16,
)
train_model(Splits(part(200), part(50), part(50)), cfg, contract)
assert "distributed" not in sys.modules, "the local engine imported dask.distributed"
"""
    contract_json = contract.model_dump_json()
    subprocess.run([sys.executable, "-c", f"CONTRACT = {contract_json!r}\n{code}"], check=True)
