"""The `dask` training engine: xgboost.dask on a Dask cluster.

`params.yaml: dask` says which cluster: a running scheduler (`scheduler_address`),
or, when that is null, a LocalCluster started for the run (a LocalCUDACluster,
one worker per GPU, when the device is CUDA and dask-cuda is installed). The
splits are cut into partitions spread over the workers, XGBoost trains on them
with the parameters of the local engine (train.xgb_params) and early-stops on
the valid split; the result is a plain Booster, saved and used as any other.

Only `train.engine: dask` imports this module, so the local engine never loads
dask.distributed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import logging
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xgboost as xgb

from .config import DaskConfig, TrainConfig
from .contract import DatasetContract
from .errors import ClusterError
from .model import Fit, cuda_usable, feature_matrix, xgb_params
from .split import Splits

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds to reach train.dask.scheduler_address before giving up


def local_cluster_device(requested: str) -> str:
    """The device of a LocalCluster started here: CUDA needs a usable GPU and dask-cuda."""
    if requested == "cpu":
        return "cpu"
    if not cuda_usable():
        reason = "no usable CUDA GPU was found"
    elif importlib.util.find_spec("dask_cuda") is None:
        reason = "dask-cuda is not installed (pip install dask-cuda)"
    else:
        return "cuda"
    if requested == "cuda" or reason.startswith("dask-cuda"):
        log.warning(
            "train.device is '%s' but %s: the Dask engine trains on CPU workers", requested, reason
        )
    return "cpu"


def workers_device(client: Client, requested: str) -> str:
    """The device on a running cluster: CUDA when every worker can train on a GPU."""
    if requested == "cpu":
        return "cpu"
    try:
        usable = client.run(cuda_usable)  # needs this package on the workers (the project's env)
    except Exception as exc:  # a worker without the package or without XGBoost
        log.warning("could not probe the Dask workers for a GPU: %s", exc)
        usable = {}
    if usable and all(usable.values()):
        return "cuda"
    if requested == "cuda":
        without = sorted(worker for worker, ok in usable.items() if not ok) or "unknown"
        log.warning(
            "train.device is 'cuda' but Dask workers have no usable CUDA GPU (%s): training on CPU",
            without,
        )
    return "cpu"


def _connect(address: str) -> Client:
    """A client of the scheduler at `address`, or a ClusterError within about CONNECT_TIMEOUT."""
    from distributed import Client
    from distributed.comm import connect, get_address_host_port

    where = f"the Dask scheduler at {address} (params.yaml: train.dask.scheduler_address)"
    hint = (
        "Start the scheduler or fix the address (the scheduler's port, 8786 by default, "
        "not its dashboard's); with train.dask.scheduler_address: null the train stage starts "
        "a local cluster itself."
    )
    # A plain TCP connection first: refused or unknown hosts fail at once, where the
    # Dask client would retry until its timeout.
    try:
        host, port = get_address_host_port(address)
    except ValueError as exc:  # unknown scheme, or one without host:port (inproc://)
        if "scheme" in str(exc):
            raise ClusterError(f"cannot use {where}: {exc}. {hint}") from None
    else:
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
                pass
        except OSError as exc:
            raise ClusterError(f"cannot reach {where}: {exc}. {hint}") from None

    # Then Dask's handshake: something else listening there (a web server, the
    # dashboard's port) fails here, before a Client is half built.
    async def handshake() -> None:
        comm = await connect(address, timeout=CONNECT_TIMEOUT)
        await comm.close()

    try:
        # connect() bounds the connection, not the reply: bound the whole handshake. Its
        # own thread, so that it also works where an event loop runs (a notebook).
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, asyncio.wait_for(handshake(), CONNECT_TIMEOUT)).result()
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as exc:
        if isinstance(exc, TimeoutError):
            reason = f"no reply within {CONNECT_TIMEOUT:g} s"
        else:
            reason = str(exc) if isinstance(exc, OSError) else type(exc).__name__
        raise ClusterError(
            f"{address} (params.yaml: train.dask.scheduler_address) does not answer as a Dask "
            f"scheduler: {reason}. {hint}"
        ) from None


@contextmanager
def dask_client(cfg: DaskConfig, device: str = "cpu") -> Iterator[Client]:
    """A client of the configured cluster; a LocalCluster started here is closed on exit.

    `device` only matters for a LocalCluster: "cuda" starts dask_cuda's
    LocalCUDACluster (one worker per visible GPU) instead of a LocalCluster.
    """
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO chatter, per run
    if cfg.scheduler_address is not None:
        client = _connect(cfg.scheduler_address)
        try:
            yield client
        finally:
            client.close()
        return
    options: dict[str, Any] = {
        "threads_per_worker": cfg.threads_per_worker,
        "memory_limit": cfg.memory_limit,
        "dashboard_address": ":0",  # any free port (the link is logged)
    }
    if device == "cuda":
        from dask_cuda import LocalCUDACluster

        cluster = LocalCUDACluster(**options)
    else:
        cluster = LocalCluster(n_workers=cfg.n_workers, **options)
    try:
        with Client(cluster, set_as_default=False) as client:
            log.info("Dask dashboard (needs bokeh): %s", client.dashboard_link)
            yield client
    finally:
        cluster.close()


def _to_cluster(
    client: Client, frame: pd.DataFrame, partitions: int, contract: DatasetContract
) -> tuple[Any, set[str]]:
    """The rows of `frame` (features as float32, and the label) as a Dask DataFrame whose
    partitions are spread over the workers (scatter places them round robin), and the
    workers that hold them."""
    import dask.dataframe as dd

    features = contract.feature_columns
    data = pd.DataFrame(feature_matrix(frame, features), columns=features)
    data[contract.label.column] = frame[contract.label.column].to_numpy()
    bounds = np.linspace(0, len(data), min(partitions, len(data)) + 1).astype(int)
    parts = [data.iloc[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    futures = client.scatter(parts)
    holders = {worker for held in client.who_has(futures).values() for worker in held}
    return dd.from_delayed(futures, meta=data.iloc[:0], verify_meta=False), holders


def _worker_count(client: Client, dask_cfg: DaskConfig) -> int:
    workers = len(client.scheduler_info()["workers"])
    if workers == 0:
        raise ClusterError(
            f"the Dask cluster at {dask_cfg.scheduler_address} has no workers "
            "(params.yaml: train.dask.scheduler_address): start some, then re-run train"
        )
    log.info("Dask cluster has %d workers", workers)
    return workers


def train_on_dask(
    splits: Splits,
    cfg: TrainConfig,
    dask_cfg: DaskConfig,
    scale_pos_weight: float,
    contract: DatasetContract,
) -> Fit:
    """The `dask` engine: the same XGBoost parameters and early stopping as the local one."""
    from xgboost import dask as dxgb

    local = dask_cfg.scheduler_address is None
    device = local_cluster_device(cfg.device) if local else "cpu"
    with dask_client(dask_cfg, device) as client, client.as_current():
        if not local:
            device = workers_device(client, cfg.device)
        partitions = dask_cfg.partitions or _worker_count(client, dask_cfg)
        log.info(
            "Dask cluster: %s, %d partitions per split, device %s",
            dask_cfg.scheduler_address or "LocalCluster started for this run",
            partitions,
            device,
        )
        params = xgb_params(cfg, device, scale_pos_weight)
        train, train_workers = _to_cluster(client, splits.train, partitions, contract)
        valid, valid_workers = _to_cluster(client, splits.valid, partitions, contract)
        workers = len(train_workers | valid_workers)  # xgboost.dask trains on these
        features, label = contract.feature_columns, contract.label.column
        dtrain = dxgb.DaskQuantileDMatrix(
            client,
            train[features],
            train[label],
            feature_names=features,
            max_bin=cfg.max_bin,
        )
        dvalid = dxgb.DaskQuantileDMatrix(
            client,
            valid[features],
            valid[label],
            feature_names=features,
            max_bin=cfg.max_bin,
            ref=dtrain,
        )
        result = dxgb.train(
            client,
            params,
            dtrain,
            num_boost_round=cfg.num_boost_round,
            evals=[(dvalid, "valid")],
            early_stopping_rounds=cfg.early_stopping_rounds,
            verbose_eval=False,
        )
    booster: xgb.Booster = result["booster"]
    booster.set_param({"device": "cpu"})  # this process may have no GPU, whatever the workers had
    best = int(booster.best_iteration)
    # The valid split is in memory here: score it locally, as the saved model will be used.
    valid_scores = booster.predict(
        xgb.DMatrix(feature_matrix(splits.valid, features), feature_names=features),
        iteration_range=(0, best + 1),
    )
    return Fit(booster, device, params, result["history"], valid_scores, workers=workers)
