"""`python -m tools.bench serve`: single-id POST /predict over HTTP against the bare work
it wraps, on the SQLite and the Redis online store side by side, in one run.

Per online store:

- **bare**: Feast's documented online read (`get_online_features(features=<feature
  service>, entity_rows=[{key: id}]).to_dict()`) and XGBoost's `inplace_predict` on the
  row, in this process, with the service's configuration: the same Feast repository and
  registry settings, the feature service fetched once, the champion's booster set up as
  the service sets it (serving_booster: one thread);
- **http**: `POST /predict {"ids": [id]}` to the service in a process of its own, started
  as `make serve` starts it (serving.* settings, serving.rollout and serving.access_log
  included, an API key checked on every request, the rate limit metered but set too high
  to refuse, Prometheus metrics, every prediction logged), from Python's own http.client on one
  keep-alive connection: the lightest client at hand, so the figure is the service's
  (httpx would add about 0.3 ms of its own per request).

Both run in alternating blocks, so a busy spell of the machine hits both alike. The
project's own online store (features/feature_store.yaml) is measured as it is; the other
kind is a copy of the Feast repository in a scratch directory with the project's feature
table materialized into it by the project's `materialize` (Redis: a redis-server started
on 127.0.0.1 for the run). Figures are printed beside the reference targets and written
as JSON; nothing here asserts a time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from {{ cookiecutter.package_name }}.config import Params, load_params
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.logs import console

from .local_servers import free_port, redis_server

STORES = ("sqlite", "redis")
# The project's online stores (features/feature_store.yaml)
SQLITE_STORE = "{{ cookiecutter.package_name }}.online_store.WideSqliteOnlineStore"
REDIS_STORE = "{{ cookiecutter.package_name }}.online_store.FastRedisOnlineStore"
# Reference targets (printed beside the figures, never asserted): HTTP p99 of one id per
# online store, and HTTP p99 over the bare read + predict p99.
HTTP_P99_TARGET_MS = {"sqlite": 10.0, "redis": 5.0}
P99_RATIO_TARGET = 1.3
WARMUP = 20  # untimed requests per path before timing (first reads load and compile)
BLOCK = 50  # requests per path before switching to the other one
START_SECONDS = 120  # bounded wait for the service process to answer /health


def served_ids(feature_table: Path, contract: DatasetContract) -> np.ndarray:
    """The distinct entity ids of the feature table, typed as /predict takes them."""
    key = contract.entity.key
    ids = pd.read_parquet(feature_table, columns=[key])[key].drop_duplicates()
    return np.asarray(contract.key_values(ids.tolist()), dtype=object)


def store_copy(
    params: Params,
    kind: str,
    root: Path,
    redis_address: str | None = None,
    feature_repo: Path = Path("features"),
) -> Path:
    """A copy of the project's Feast repository in `root` whose online store is `kind`
    (SQLite inside `root`, or the Redis at `redis_address`), over the project's feature
    table, which the project's `materialize` loads into it. Returns the repository."""
    import yaml

    from {{ cookiecutter.package_name }}.feature_store import open_store
    from {{ cookiecutter.package_name }}.files import read_parquet
    from {{ cookiecutter.package_name }}.materialization import materialize

    repo = root / "features"
    shutil.copytree(feature_repo, repo, ignore=shutil.ignore_patterns("state", "__pycache__"))
    # features/definitions.py reads `dataset` and <paths.features>/features.parquet
    scratch_params = {
        "dataset": params.dataset.model_dump(mode="json"),
        "paths": {"features": str(params.paths.features.resolve())},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(scratch_params, sort_keys=False))
    online = {
        "sqlite": f"  type: {SQLITE_STORE}\n  path: state/online_store.db\n",
        "redis": f"  type: {REDIS_STORE}\n  connection_string: {redis_address}\n",
    }[kind]
    text = (repo / "feature_store.yaml").read_text()
    head, rest = text.split("online_store:", 1)
    tail = rest[rest.index("offline_store:") :]
    (repo / "feature_store.yaml").write_text(f"{head}online_store:\n{online}{tail}")
    features = read_parquet(params.paths.feature_table, "featurize")
    cfg = params.materialize
    materialize(open_store(repo), features, params.dataset, cfg.chunk_rows, cfg.verify_entities)
    return repo


def run_service(params_file: Path, repo: Path, port: int, keys: str, log_path: Path) -> None:
    """The service as `serve` runs it, on `repo`'s online store (in a process of its own:
    bench_serving's child; its output goes to the file on its stderr)."""
    import uvicorn

    from {{ cookiecutter.package_name }} import tracking
    from {{ cookiecutter.package_name }}.api_keys import Gatekeeper, parse_entries
    from {{ cookiecutter.package_name }}.challenger import Challenger
    from {{ cookiecutter.package_name }}.champion import ChampionModel
    from {{ cookiecutter.package_name }}.config import RateLimitConfig
    from {{ cookiecutter.package_name }}.feature_store import open_store
    from {{ cookiecutter.package_name }}.logs import setup_logging
    from {{ cookiecutter.package_name }}.serving import create_app

    setup_logging()
    p = load_params(params_file)
    cfg = p.serving
    tracking.setup_mlflow(p.mlflow)
    name = p.mlflow.registered_model
    champion = ChampionModel(name, p.dataset, cfg.refresh_seconds)
    rollout = Challenger(name, p.dataset, cfg.rollout, cfg.refresh_seconds, cfg.canary_share)
    rollout.get(champion.get().version)
    unmetered = RateLimitConfig(requests_per_second=1e9, burst=10**9)
    gate = Gatekeeper(parse_entries(keys, "bench"), unmetered)
    store = open_store(repo, apply=False)  # the bench applied the definitions
    app = create_app(
        store,
        champion,
        log_path,
        p.dataset,
        gate,
        cfg.max_body_bytes,
        log_retention_days=cfg.prediction_log_retention_days,
        challenger=rollout,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info", access_log=cfg.access_log)


def _child_main(params_file: str, repo: str, port: int, keys: str, log_path: str) -> None:
    """Entry of the service process: stdout and stderr to the file already on stderr."""
    os.dup2(2, 1)
    run_service(Path(params_file), Path(repo), port, keys, Path(log_path))


class Client:
    """POST /predict on a keep-alive connection (http.client), with an API key."""

    def __init__(self, port: int, api_key: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def reconnect(self) -> None:
        """A fresh connection: uvicorn closes one idle for 5 s (its keep-alive timeout)."""
        self.connection.close()
        self.connection.connect()

    def predict(self, ids: list[Any]) -> bytes:
        payload = json.dumps({"ids": ids})
        try:
            self.connection.request("POST", "/predict", payload, self.headers)
            response = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.reconnect()  # closed by the server while idle: once more, on a new one
            self.connection.request("POST", "/predict", payload, self.headers)
            response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST /predict answered {response.status}: {body[:300]!r}")
        return body

    def close(self) -> None:
        self.connection.close()


def wait_for_health(port: int, process: Any, output: Path) -> None:
    """Return once GET /health answers (bounded); RuntimeError when the process died."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        if not process.is_alive():
            raise RuntimeError(f"the service exited at start-up:\n{output.read_text()[-3000:]}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the service did not answer on port {port} in {START_SECONDS} s")
        time.sleep(0.2)


@contextlib.contextmanager
def service_process(params_file: Path, repo: Path, keys: str, scratch: Path) -> Iterator[int]:
    """The service on `repo` in a child process; yields its port once /health answers."""
    port = free_port()
    output = scratch / f"service-{port}.log"
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, as `make serve`
    args = (str(params_file), str(repo), port, keys, str(scratch / f"predictions-{port}.jsonl"))
    with output.open("w") as stream:
        saved = os.dup(2)
        os.dup2(stream.fileno(), 2)  # the child inherits it as its stderr
        try:
            process = context.Process(target=_child_main, args=args, daemon=True)
            process.start()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    try:
        wait_for_health(port, process, output)
        yield port
    finally:
        process.terminate()
        process.join(timeout=10)


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.array(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def measure_store(
    store: Any,
    booster: Any,
    port: int,
    api_key: str,
    ids: np.ndarray,
    contract: DatasetContract,
    requests: int,
    batch: int,
    seed: int = 0,
) -> dict[str, float]:
    """Single-id latency of the bare read + predict and of POST /predict (alternating
    blocks of BLOCK, each path on its own random ids), then batch throughput over HTTP."""
    from {{ cookiecutter.package_name }}.features import FEATURE_SERVICE

    key, names = contract.entity.key, booster.feature_names
    service = store.get_feature_service(FEATURE_SERVICE)  # once, as the service does
    rng = np.random.default_rng(seed)
    bare_ids = rng.choice(ids, size=requests + WARMUP).tolist()
    http_ids = rng.choice(ids, size=requests + WARMUP).tolist()
    reads: list[float] = []
    bare: list[float] = []
    http: list[float] = []

    def bare_call(entity: Any) -> tuple[float, float]:
        started = time.perf_counter()
        values = store.get_online_features(features=service, entity_rows=[{key: entity}]).to_dict()
        read = time.perf_counter()
        booster.inplace_predict(np.array([[values[n][0] for n in names]], dtype=np.float32))
        return read - started, time.perf_counter() - started

    client = Client(port, api_key)
    try:

        def http_call(entity: Any) -> float:
            started = time.perf_counter()
            client.predict([entity])
            return time.perf_counter() - started

        for entity in bare_ids[:WARMUP]:
            bare_call(entity)
        for entity in http_ids[:WARMUP]:
            http_call(entity)
        for number, start in enumerate(range(WARMUP, WARMUP + requests, BLOCK)):
            block = slice(start, min(start + BLOCK, WARMUP + requests))

            def run_bare(block: slice = block) -> None:
                for entity in bare_ids[block]:
                    read, total = bare_call(entity)
                    reads.append(read)
                    bare.append(total)

            def run_http(block: slice = block) -> None:
                client.reconnect()  # untimed: the connection idled through a bare block
                http.extend(http_call(entity) for entity in http_ids[block])

            first, second = (run_bare, run_http) if number % 2 == 0 else (run_http, run_bare)
            first()
            second()
        batches = max(requests // batch, 10)
        chunks = [rng.choice(ids, size=batch).tolist() for _ in range(batches)]
        started = time.perf_counter()
        for chunk in chunks:
            client.predict(chunk)
        batch_seconds = time.perf_counter() - started
    finally:
        client.close()

    http_p50, http_p99 = percentiles(http)
    bare_p50, bare_p99 = percentiles(bare)
    read_p50, read_p99 = percentiles(reads)
    return {
        "requests": float(requests),
        "http_p50_ms": http_p50,
        "http_p99_ms": http_p99,
        "bare_p50_ms": bare_p50,
        "bare_p99_ms": bare_p99,
        "feast_read_p50_ms": read_p50,
        "feast_read_p99_ms": read_p99,
        "p50_ratio_http_over_bare": http_p50 / bare_p50,
        "p99_ratio_http_over_bare": http_p99 / bare_p99,
        f"batch_{batch}_entities_per_second": batches * batch / batch_seconds,
    }


def bench_serving(
    params: Params,
    requests: int,
    batch: int,
    stores: tuple[str, ...] = STORES,
    params_file: Path = Path("params.yaml"),
) -> dict[str, Any]:
    """The figures of every online store in `stores` (the project's own store among them
    as it is, the others as scratch copies), measured in one run. The top-level figures
    are the project's own store's (as before Redis was measured beside it); `stores`
    holds each store's, `targets` the reference targets, `machine` the cores and load."""
    from {{ cookiecutter.package_name }} import tracking
    from {{ cookiecutter.package_name }}.api_keys import new_key
    from {{ cookiecutter.package_name }}.champion import ChampionModel
    from {{ cookiecutter.package_name }}.feature_store import open_store
    from {{ cookiecutter.package_name }}.serving import serving_booster

    unknown = sorted(set(stores) - set(STORES))
    if unknown:
        raise ValueError(f"unknown online store(s) {unknown}; choose from {list(STORES)}")
    contract = params.dataset
    tracking.setup_mlflow(params.mlflow)
    champion = ChampionModel(params.mlflow.registered_model, contract)
    booster = serving_booster(champion.get())  # as the service scores with it
    ids = served_ids(params.paths.feature_table, contract)
    own = open_store()
    own_kind = "redis" if own.config.online_store.type.endswith("RedisOnlineStore") else "sqlite"
    api_key, digest_line = new_key("bench")
    load_before = os.getloadavg()[0]
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp, contextlib.ExitStack() as stack:
        scratch = Path(tmp)
        for kind in stores:
            repo = Path("features").resolve()
            if kind != own_kind:
                address = stack.enter_context(redis_server()) if kind == "redis" else None
                if kind == "redis" and address is None:
                    console.print("[yellow]no redis-server here: Redis is not measured[/]")
                    continue
                console.print(f"materializing the feature table into a scratch {kind} store")
                repo = store_copy(params, kind, scratch / kind, address)
            store = own if kind == own_kind else open_store(repo, apply=False)
            with service_process(params_file.resolve(), repo, digest_line, scratch) as port:
                figures[kind] = measure_store(
                    store, booster, port, api_key, ids, contract, requests, batch
                )
    report: dict[str, Any] = {
        **figures.get(own_kind, {}),
        "online_store": own_kind,
        "stores": figures,
        "targets": {
            "http_p99_ms": HTTP_P99_TARGET_MS,
            "p99_ratio_http_over_bare": P99_RATIO_TARGET,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m_before": load_before,
            "load_average_1m_after": os.getloadavg()[0],
        },
    }
    print_serving(report, batch)
    return report


def print_serving(report: dict[str, Any], batch: int) -> None:
    """The figures per store, each target beside its figure."""
    stores, machine = report["stores"], report["machine"]
    table = Table(
        title=f"POST /predict, one id per request, against the bare Feast read + predict "
        f"({machine['cpus']} cores, load {machine['load_average_1m_before']:.1f} before, "
        f"{machine['load_average_1m_after']:.1f} after)"
    )
    table.add_column("measure")
    for kind in stores:
        table.add_column(kind, justify="right")
        table.add_column("target", justify="right")
    rows = [
        ("bare p50 ms (read + predict)", "bare_p50_ms", None),
        ("bare p99 ms", "bare_p99_ms", None),
        ("  Feast read alone p50 ms", "feast_read_p50_ms", None),
        ("  Feast read alone p99 ms", "feast_read_p99_ms", None),
        ("HTTP p50 ms", "http_p50_ms", None),
        ("HTTP p99 ms", "http_p99_ms", "http_p99_ms"),
        ("HTTP / bare at p50", "p50_ratio_http_over_bare", None),
        ("HTTP / bare at p99", "p99_ratio_http_over_bare", "p99_ratio_http_over_bare"),
        (f"ids per second, {batch} per request", f"batch_{batch}_entities_per_second", None),
    ]
    targets = report["targets"]
    for label, key, target in rows:
        cells = [label]
        for kind, figures in stores.items():
            cells.append(f"{figures[key]:,.2f}")
            if target == "http_p99_ms":
                cells.append(f"<= {targets['http_p99_ms'][kind]:g}")
            elif target:
                cells.append(f"<= {targets[target]:g}")
            else:
                cells.append("")
        table.add_row(*cells)
    console.print(table)
