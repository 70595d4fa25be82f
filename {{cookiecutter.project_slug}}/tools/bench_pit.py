"""`python -m tools.bench pit`: the point-in-time join of the training set, through Feast
and the project's offline store, against the same join done bare with pandas.merge_asof.

On `rows` label rows and as many feature rows of the contract (10 daily batches, the
project's revisit ratio), in a scratch copy of the Feast repository (features/):

- **layer**: `feature_store.historical_features`, what the training_set stage calls:
  Feast's historical retrieval through the feature service with the offline store that
  features/feature_store.yaml names, then the drop of rows without features and the sort;
- **bare**: tools/point_in_time.py, `pandas.merge_asof` on the two frames already in
  memory, the same drop and sort (no Feast, no file read);
- **stock** (`--stock`): the layer with Feast's own DuckDB offline store (`type: duckdb`),
  the figure before the project's store.

Layer and bare alternate over `rounds` rounds in this process, so a busy spell of the
machine hits both; the medians give `layer_ratios.pit` in bench.json. Memory (`--memory`):
each path once more in a fresh process of its own (`python -m tools.bench_pit`), its
peak resident memory against the size of its input in memory (label and feature frames).
Nothing here asserts a time.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import yaml
from rich.table import Table

from {{ cookiecutter.package_name }}.config import Params, Window
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.logs import console

PATHS = ("bare", "layer", "stock")
# Reference targets, printed beside the figures, never asserted.
RATIO_TARGET = 2.0  # layer seconds / bare seconds
MEMORY_TARGET = 3.0  # a path's peak working memory / its input's size in memory
TOOLS_ROOT = Path(__file__).resolve().parents[1]  # the project root: `python -m tools...`


def scratch_repo(
    scratch: Path, features: pd.DataFrame, labels: pd.DataFrame, contract: DatasetContract
) -> Path:
    """`scratch` as a project: params.yaml (the contract; its feature table under data/),
    the rows as parquet and a copy of the Feast repository; also features/stock.yaml,
    the same repository on Feast's DuckDB offline store. Returns the repository."""
    repo = scratch / "features"
    shutil.copytree(
        TOOLS_ROOT / "features", repo, ignore=shutil.ignore_patterns("state", "__pycache__")
    )
    scratch_params = {"dataset": contract.model_dump(mode="json"), "paths": {"features": "data"}}
    (scratch / "params.yaml").write_text(yaml.safe_dump(scratch_params, sort_keys=False))
    (scratch / "data").mkdir()
    features.to_parquet(scratch / "data" / "features.parquet", index=False, coerce_timestamps="us")
    labels.to_parquet(scratch / "labels.parquet", index=False, coerce_timestamps="us")
    text = (repo / "feature_store.yaml").read_text()
    kind = yaml.safe_load(text)["offline_store"]["type"]
    (repo / "stock.yaml").write_text(text.replace(f"type: {kind}", "type: duckdb"))
    return repo


def join(path: str, scratch: Path, contract: DatasetContract, **frames: Any) -> pd.DataFrame:
    """One point-in-time join of the scratch rows by `path` (bare, layer or stock)."""
    from {{ cookiecutter.package_name }}.feature_store import historical_features, open_store

    from .point_in_time import point_in_time_join

    if path == "bare":
        return point_in_time_join(frames["labels"], frames["features"], contract)
    repo = scratch / "features"
    store = frames.get(path) or open_store(
        repo, repo / "stock.yaml" if path == "stock" else None, apply=False
    )
    return historical_features(store, frames["labels"], contract)


def _reset_peak() -> bool:
    """Restart the kernel's count of this process's peak resident memory (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_bytes(reset: bool) -> int:
    """Peak resident memory since _reset_peak (else since the process started)."""
    if reset:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def measure_memory(path: str, scratch: Path) -> dict[str, float]:
    """In this (fresh) process: read the label rows (and, bare, the feature rows), join
    them by `path`; the resident memory before reading and at its peak."""
    from {{ cookiecutter.package_name }}.feature_store import open_store

    from . import point_in_time  # noqa: F401  # imported before counting, as the store below

    contract = DatasetContract.model_validate(
        yaml.safe_load((scratch / "params.yaml").read_text())["dataset"]
    )
    labels, features = scratch / "labels.parquet", scratch / "data" / "features.parquet"
    stores = {}
    if path != "bare":  # Feast's imports and registry are not the join's memory
        repo = scratch / "features"
        stores[path] = open_store(repo, repo / "stock.yaml" if path == "stock" else None, False)
    gc.collect()
    start = psutil.Process().memory_info().rss
    reset = _reset_peak()
    frames = {"labels": pd.read_parquet(labels)}
    if path == "bare":
        frames["features"] = pd.read_parquet(features)
    started = time.perf_counter()
    joined = join(path, scratch, contract, **frames, **stores)
    seconds = time.perf_counter() - started
    peak = max(_peak_bytes(reset), start)
    return {
        "seconds": seconds,
        "start_rss_mb": start / 1e6,
        "peak_rss_mb": peak / 1e6,
        "working_mb": (peak - start) / 1e6,
        "rows_returned": float(len(joined)),
    }


def _memory_in_child(path: str, scratch: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench_pit", path, str(scratch)],
        cwd=TOOLS_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {path} memory run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _same_rows(layer: pd.DataFrame, bare: pd.DataFrame, contract: DatasetContract) -> bool:
    """The layer returned the bare join's rows: keys, timestamps and features."""
    if len(layer) != len(bare):
        return False
    for column in (contract.entity.key, contract.timestamp):  # timestamps: us against ns
        if not layer[column].eq(bare[column]).all():
            return False
    values = contract.feature_columns
    return bool(np.array_equal(layer[values].to_numpy(), bare[values].to_numpy(), equal_nan=True))


def bench_pit(
    params: Params, rows: int, rounds: int = 3, stock: bool = True, memory: bool = True
) -> dict[str, Any]:
    """Time the layer and the bare join side by side (and Feast's DuckDB store once),
    measure each one's memory in a process of its own; print and return the figures."""
    from {{ cookiecutter.package_name }}.feature_store import open_store
    from {{ cookiecutter.package_name }}.features import build_features, build_labels

    from .bench import contract_raw

    if rows < 100 or rounds < 1:
        raise ValueError(f"rows must be 100 or more and rounds 1 or more; got {rows}, {rounds}")
    contract = params.dataset
    raw = contract_raw(params, rows, Window(end_date=params.interval.end_date, days=10).dates())
    features, labels = build_features(raw, contract), build_labels(raw, contract)
    del raw
    load_before = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="bench-pit-"))
    try:
        repo = scratch_repo(scratch, features, labels, contract)
        frames: dict[str, Any] = {"labels": labels, "features": features, "layer": open_store(repo)}
        seconds: dict[str, list[float]] = {"bare": [], "layer": []}
        cpu: dict[str, list[float]] = {"bare": [], "layer": []}
        results: dict[str, pd.DataFrame] = {}
        for round_ in range(rounds):
            for path in ("bare", "layer") if round_ % 2 == 0 else ("layer", "bare"):
                gc.collect()
                started, cpu_started = time.perf_counter(), time.process_time()
                results[path] = join(path, scratch, contract, **frames)
                seconds[path].append(time.perf_counter() - started)
                cpu[path].append(time.process_time() - cpu_started)
        same = _same_rows(results["layer"], results["bare"], contract)
        figures: dict[str, Any] = {
            "rows": len(labels),
            "feature_rows": len(features),
            "rows_returned": len(results["layer"]),
            "same_as_merge_asof": same,
            "rounds": rounds,
            "layer_seconds": statistics.median(seconds["layer"]),
            "bare_seconds": statistics.median(seconds["bare"]),
            "layer_seconds_each": seconds["layer"],
            "bare_seconds_each": seconds["bare"],
            # CPU time of this process (every thread): less sensitive to a busy machine
            "layer_cpu_seconds": statistics.median(cpu["layer"]),
            "bare_cpu_seconds": statistics.median(cpu["bare"]),
        }
        figures["ratio"] = figures["layer_seconds"] / figures["bare_seconds"]
        ratios = [a / b for a, b in zip(seconds["layer"], seconds["bare"], strict=True)]
        figures["ratio_range"] = [min(ratios), max(ratios)]
        figures["offline_store"] = frames["layer"].config.offline_store.type
        results.clear()
        if stock:
            gc.collect()
            started = time.perf_counter()
            join("stock", scratch, contract, **frames)
            figures["stock_seconds"] = time.perf_counter() - started
            figures["stock_ratio"] = figures["stock_seconds"] / figures["bare_seconds"]
        if memory:
            sizes = {
                "labels_mb": labels.memory_usage(deep=True).sum() / 1e6,
                "features_mb": features.memory_usage(deep=True).sum() / 1e6,
            }
            figures["memory"] = {**sizes, "input_mb": sum(sizes.values())}
            for path in PATHS if stock else PATHS[:2]:
                run = _memory_in_child(path, scratch)
                run["working_over_input"] = run["working_mb"] / figures["memory"]["input_mb"]
                figures["memory"][path] = run
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    figures["targets"] = {"ratio": RATIO_TARGET, "working_over_input": MEMORY_TARGET}
    figures["machine"] = {
        "cores": os.cpu_count(),
        "load_average": [load_before, os.getloadavg()[0]],
    }
    print_pit(figures)
    return figures


def _verdict(value: float, target: float) -> str:
    return f"{value:.2f}x (target <= {target:g}x: {'met' if value <= target else 'missed'})"


def print_pit(figures: dict[str, Any]) -> None:
    machine = figures["machine"]
    table = Table(
        title=f"point-in-time join of {figures['rows']:,} label rows x "
        f"{figures['feature_rows']:,} feature rows ({machine['cores']} cores, load "
        f"{machine['load_average'][0]:.1f}-{machine['load_average'][1]:.1f}); "
        f"offline store {figures['offline_store']}"
    )
    for column in (
        "path",
        "seconds (median, range)",
        "over bare",
        "peak memory",
        "working / input",
    ):
        table.add_column(column, justify="right")
    memory = figures.get("memory", {})
    spans = {
        "bare": figures["bare_seconds_each"],
        "layer": figures["layer_seconds_each"],
        "stock": [figures["stock_seconds"]] if "stock_seconds" in figures else [],
    }
    labels = {
        "bare": "bare: merge_asof",
        "layer": "layer: project store",
        "stock": "before: Feast DuckDB",
    }
    for path in PATHS:
        if not spans[path]:
            continue
        each = spans[path]
        timing = f"{statistics.median(each):.2f} ({min(each):.2f}-{max(each):.2f})"
        over = {
            "bare": "1",
            "layer": _verdict(figures["ratio"], RATIO_TARGET),
            "stock": f"{figures.get('stock_ratio', 0):.2f}x",
        }[path]
        run = memory.get(path)
        peak = f"{run['peak_rss_mb']:,.0f} MB" if run else "-"
        working = _verdict(run["working_over_input"], MEMORY_TARGET) if run else "-"
        table.add_row(labels[path], timing, over, peak, working)
    console.print(table)
    if memory:
        console.print(
            f"input in memory: labels {memory['labels_mb']:,.0f} MB + features "
            f"{memory['features_mb']:,.0f} MB; working = peak resident memory minus the "
            "process's before reading any rows"
        )
    console.print(
        f"layer per round over bare: {figures['ratio_range'][0]:.2f}-"
        f"{figures['ratio_range'][1]:.2f}x; CPU seconds (median): layer "
        f"{figures['layer_cpu_seconds']:.2f}, bare {figures['bare_cpu_seconds']:.2f}; "
        f"same rows and values as merge_asof: {figures['same_as_merge_asof']}"
    )


def register(out: Path, figures: dict[str, Any]) -> None:
    """Put the figures under `layer_ratios.pit` of the JSON report `out`, keeping the rest."""
    report = json.loads(out.read_text()) if out.is_file() else {}
    report.setdefault("layer_ratios", {})["pit"] = figures
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":  # a memory run: python -m tools.bench_pit <path> <scratch dir>
    print(json.dumps(measure_memory(sys.argv[1], Path(sys.argv[2]))))
