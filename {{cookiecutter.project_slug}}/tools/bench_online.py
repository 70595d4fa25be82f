"""`python -m tools.bench online`: the materialize stage's load into the online store,
through Feast, against raw writes of the same rows, side by side.

On `entities` distinct entities of the contract (one newest row each, as materialize
writes them), `materialize.chunk_rows` at a time as the stage does, each path into a
fresh store of its own, for SQLite and (`--redis`, a redis-server started here) Redis:

- **project**: `FeatureStore.write_to_online_store`, what materialize calls, with the
  project's provider and online store (src/<package>/online_store.py);
- **stock** (`--stock`): the same call with Feast's own provider and store
  (`provider: local`, `type: sqlite` / `redis`); then again split into Feast's
  conversion of the frame to protos (`_convert_arrow_to_proto`) and its store's write;
- **bare**: the rows the project's store wrote, read back beforehand (not timed) and
  written raw: SQLite, upserted with `executemany` into an empty copy of its table (one
  row per entity), one transaction per chunk; Redis, pipelined HSETs of the same hashes,
  one pipeline per chunk, and **bare_checked**: the same after a pipeline of HMGETs of
  the stored timestamps, the read Feast's rule (write only newer rows) needs;
- **bare_feast_rows** (SQLite, `--stock`): the rows Feast's own store wrote (one per
  entity and feature) upserted the same way: what Feast's table layout costs at best.

`layer_ratios.online_load` in bench.json gets every figure, and project / bare and
stock / bare beside the target (project <= 2x bare). Nothing here asserts a time.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from rich.table import Table

from {{ cookiecutter.package_name }}.config import Params, Window
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.feature_store import open_store
from {{ cookiecutter.package_name }}.features import build_features
from {{ cookiecutter.package_name }}.logs import console

from .local_servers import redis_server

TARGET = 2.0  # project / bare
# The project's provider and online stores (features/feature_store.yaml)
PROVIDER = "{{ cookiecutter.package_name }}.online_store.FrameWriteProvider"
SQLITE_STORE = "{{ cookiecutter.package_name }}.online_store.WideSqliteOnlineStore"
REDIS_STORE = "{{ cookiecutter.package_name }}.online_store.FastRedisOnlineStore"


def newest_rows(params: Params, entities: int) -> pd.DataFrame:
    """`entities` distinct entities of the contract, one feature row each."""
    from .bench import contract_raw

    contract = params.dataset
    day = Window(end_date=params.interval.end_date, days=1).dates()
    features = build_features(contract_raw(params, entities, day), contract).head(entities)
    features[contract.entity.key] = contract.key_values(list(range(1, len(features) + 1)))
    return features[[contract.entity.key, contract.timestamp, *contract.feature_columns]]


def scratch_store(
    root: Path, frame: pd.DataFrame, contract: DatasetContract, online: dict, stock: bool
) -> Any:
    """A Feast repository under `root` over `frame` with the `online` store and the
    project's provider (Feast's own with `stock`), applied."""
    repo = root / "features"
    shutil.copytree("features", repo, ignore=shutil.ignore_patterns("state", "__pycache__"))
    params = {"dataset": contract.model_dump(mode="json"), "paths": {"features": "data"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "data").mkdir()
    frame.to_parquet(root / "data" / "features.parquet", index=False, coerce_timestamps="us")
    config = yaml.safe_load((repo / "feature_store.yaml").read_text())
    config["provider"] = "local" if stock else PROVIDER
    config["online_store"] = online
    (repo / "feature_store.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return open_store(repo)


def _chunks(frame: pd.DataFrame, rows: int) -> list[pd.DataFrame]:
    return [frame.iloc[i : i + rows] for i in range(0, len(frame), rows)]


def timed_load(store: Any, view: str, chunks: list[pd.DataFrame]) -> float:
    """Seconds of write_to_online_store over the chunks, as materialize calls it."""
    started = time.perf_counter()
    for chunk in chunks:
        store.write_to_online_store(view, chunk, transform_on_write=False)
    return time.perf_counter() - started


def stock_split(store: Any, view_name: str, chunks: list[pd.DataFrame]) -> tuple[float, float]:
    """Feast's own path in its two parts: (frame -> protos, protos -> store) seconds."""
    provider, view = store._get_provider(), store.get_feature_view(view_name)
    convert = write = 0.0
    for chunk in chunks:
        started = time.perf_counter()
        rows = provider._prep_rows_to_write_for_ingestion(view, chunk)
        convert += time.perf_counter() - started
        started = time.perf_counter()
        provider.online_write_batch(store.config, view, rows, None)
        write += time.perf_counter() - started
    return convert, write


def bare_upserts(source: Path, table: str, target: Path, transactions: int) -> float:
    """Seconds to upsert the rows of `source`'s `table` into an empty copy of it (same
    schema and indexes) in `target`, on its primary key, in `transactions` transactions
    (reading them is not timed)."""
    with sqlite3.connect(source) as read, sqlite3.connect(target) as conn:
        for (sql,) in read.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL", (table,)
        ):
            conn.execute(sql)
        conn.commit()
        info = read.execute(f'PRAGMA table_info("{table}")').fetchall()
        columns = [row[1] for row in info]
        keys = [row[1] for row in sorted(info, key=lambda row: row[5]) if row[5]]
        quoted = {c: '"' + c.replace('"', '""') + '"' for c in columns}
        upsert = (
            f'INSERT INTO "{table}" ({", ".join(quoted.values())}) '
            f"VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT({', '.join(quoted[k] for k in keys)}) DO UPDATE SET "
            + ", ".join(f"{quoted[c]} = excluded.{quoted[c]}" for c in columns if c not in keys)
        )
        (rows,) = read.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()
        chunk_rows = max(1, -(-rows // max(1, transactions)))
        cursor = read.execute(f'SELECT * FROM "{table}" ORDER BY rowid')
        seconds = 0.0
        while chunk := cursor.fetchmany(chunk_rows):
            started = time.perf_counter()
            with conn:
                conn.executemany(upsert, chunk)
            seconds += time.perf_counter() - started
    return seconds


def bench_sqlite(params: Params, frame: pd.DataFrame, scratch: Path, stock: bool) -> dict:
    from feast.infra.online_stores.sqlite import _table_id

    from {{ cookiecutter.package_name }}.online_store import wide_table_name

    contract = params.dataset
    chunks = _chunks(frame, params.materialize.chunk_rows)
    view = contract.feature_view
    figures: dict[str, Any] = {"entities": len(frame), "features": len(contract.feature_columns)}
    online = {"type": SQLITE_STORE, "path": "state/online_store.db"}
    store = scratch_store(scratch / "project", frame, contract, online, stock=False)
    figures["online_store"] = store.config.online_store.type
    figures["project_seconds"] = timed_load(store, view, chunks)
    table = wide_table_name(store.config, store.get_feature_view(view))
    source = scratch / "project" / "features" / "state" / "online_store.db"
    figures["bare_seconds"] = bare_upserts(source, table, scratch / "bare.db", len(chunks))
    if stock:
        online = {"type": "sqlite", "path": "state/online_store.db"}
        store = scratch_store(scratch / "stock", frame, contract, online, stock=True)
        figures["stock_seconds"] = timed_load(store, view, chunks)
        table = _table_id(store.project, store.get_feature_view(view))
        source = scratch / "stock" / "features" / "state" / "online_store.db"
        figures["bare_feast_rows_seconds"] = bare_upserts(
            source, table, scratch / "bare-feast-rows.db", len(chunks)
        )
        again = scratch_store(scratch / "stock-split", frame, contract, online, stock=True)
        convert, write = stock_split(again, view, chunks)
        figures["stock_convert_seconds"], figures["stock_write_seconds"] = convert, write
    paths = ["project", "bare", "bare_feast_rows", "stock", "stock_convert", "stock_write"]
    return _per_entity(figures, paths)


def bench_redis(params: Params, frame: pd.DataFrame, scratch: Path, stock: bool) -> dict | None:
    """Feast's Redis store and the project's against raw pipelined HSETs of the same
    hashes; None without a redis-server."""
    import redis

    contract, view = params.dataset, params.dataset.feature_view
    chunks = _chunks(frame, params.materialize.chunk_rows)
    with redis_server(Path()) as address:
        if address is None:
            console.print("[yellow]no redis-server here: Redis is not measured[/]")
            return None
        host, port = address.split(":")
        client = redis.Redis(host=host, port=int(port))
        figures: dict[str, Any] = {
            "entities": len(frame),
            "features": len(contract.feature_columns),
        }
        if stock:
            online = {"type": "redis", "connection_string": address}
            store = scratch_store(scratch / "redis-stock", frame, contract, online, stock=True)
            figures["stock_seconds"] = timed_load(store, view, chunks)
            client.flushall()
            convert, write = stock_split(store, view, chunks)
            figures["stock_convert_seconds"], figures["stock_write_seconds"] = convert, write
            client.flushall()
        online = {"type": REDIS_STORE, "connection_string": address}
        store = scratch_store(scratch / "redis", frame, contract, online, stock=False)
        figures["online_store"] = store.config.online_store.type
        figures["project_seconds"] = timed_load(store, view, chunks)
        keys = list(client.scan_iter(count=10_000))
        pairs = [(key, client.hgetall(key)) for key in keys]
        client.flushall()
        chunk = params.materialize.chunk_rows
        started = time.perf_counter()
        for i in range(0, len(pairs), chunk):
            with client.pipeline(transaction=False) as pipe:
                for key, mapping in pairs[i : i + chunk]:
                    pipe.hset(key, mapping=mapping)
                pipe.execute()
        figures["bare_seconds"] = time.perf_counter() - started
        client.flushall()
        figures["bare_checked_seconds"] = checked_hsets(client, pairs, chunk, view)
    paths = ["project", "bare", "bare_checked", "stock", "stock_convert", "stock_write"]
    return _per_entity(figures, paths)


def checked_hsets(client: Any, pairs: list[tuple[bytes, dict]], chunk: int, view: str) -> float:
    """Seconds of raw writes with Feast's rule: per chunk, a pipeline of HMGETs of the
    stored timestamp field, then one of the HSETs (every row is new here)."""
    started = time.perf_counter()
    for i in range(0, len(pairs), chunk):
        with client.pipeline(transaction=False) as pipe:
            for key, _ in pairs[i : i + chunk]:
                pipe.hmget(key, f"_ts:{view}")
            pipe.execute()
            for key, mapping in pairs[i : i + chunk]:
                pipe.hset(key, mapping=mapping)
            pipe.execute()
    return time.perf_counter() - started


def _per_entity(figures: dict, names: list[str]) -> dict:
    for name in names:
        if f"{name}_seconds" in figures:
            figures[f"{name}_ms_per_entity"] = (
                1000 * figures[f"{name}_seconds"] / figures["entities"]
            )
    bare = figures["bare_seconds"]
    for name in ("project", "stock", "stock_write"):
        if f"{name}_seconds" in figures:
            figures[f"{name}_over_bare"] = figures[f"{name}_seconds"] / bare
    if "bare_checked_seconds" in figures:  # against raw writes that also read timestamps
        checked = figures["bare_checked_seconds"]
        figures["project_over_bare_checked"] = figures["project_seconds"] / checked
        figures["stock_over_bare_checked"] = figures.get("stock_seconds", float("nan")) / checked
    return figures


def bench_online(params: Params, entities: list[int], stock: bool, redis: bool) -> dict:
    """The figures per size (`sqlite`, and `redis` when asked), printed and returned."""
    results: dict[str, Any] = {"target_over_bare": TARGET, "sizes": {}}
    for size in entities:
        frame = newest_rows(params, size)
        scratch = Path(tempfile.mkdtemp(prefix="bench-online-"))
        try:
            found = {"sqlite": bench_sqlite(params, frame, scratch, stock)}
            if redis and (figures := bench_redis(params, frame, scratch, stock)) is not None:
                found["redis"] = figures
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        results["sizes"][str(len(frame))] = found
        print_online(len(frame), found)
    return results


def print_online(entities: int, found: dict[str, dict]) -> None:
    table = Table(title=f"online-store load of {entities:,} entities (target: <= {TARGET}x bare)")
    for column in ("store", "path", "seconds", "ms / entity", "over bare"):
        table.add_column(column, justify="left" if column in ("store", "path") else "right")
    for store, figures in found.items():
        for path in (
            "project",
            "stock",
            "stock_convert",
            "stock_write",
            "bare",
            "bare_feast_rows",
            "bare_checked",
        ):
            if f"{path}_seconds" not in figures:
                continue
            ratio = figures.get(f"{path}_over_bare")
            table.add_row(
                store,
                path,
                f"{figures[f'{path}_seconds']:.2f}",
                f"{figures[f'{path}_ms_per_entity']:.4f}",
                _ratio(ratio, figures.get(f"{path}_over_bare_checked")),
            )
    console.print(table)


def _ratio(ratio: float | None, checked: float | None) -> str:
    if ratio is None:
        return ""
    return f"{ratio:.2f}x" + ("" if checked is None else f" ({checked:.2f}x checked)")


def register(out: Path, results: dict[str, Any]) -> None:
    """Put the figures under `layer_ratios.online_load` of the JSON report `out`."""
    report = json.loads(out.read_text()) if out.is_file() else {}
    report.setdefault("layer_ratios", {})["online_load"] = results
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
