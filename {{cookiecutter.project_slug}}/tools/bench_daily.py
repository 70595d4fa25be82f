"""The daily run and the dev loop of `make bench`, at each size, in the size's scratch
copy once its full run, no-op run and bare floor are measured (tools/bench_pipeline.py):

- **daily run**: the source gains the day after the window (rows of the contract, as
  the copy's others), interval.yaml `end_date` moves one day on (what the scheduled DAG
  does every day) and `dvc repro` is timed (`daily_run_seconds`), each stage's start-up
  and work recorded as in the full run. Against it, the bare work of that day
  (`python -m tools.bench bare --daily`): read the new batch and build its features,
  retrain on the window, predict the test days; plus one process start-up (the full
  bare run's). Their ratio is `daily_ratio`;
- **dev loop**: one `train.*` key changed in params.yaml (`train.learning_rate`) and
  `dvc repro` timed (`devloop_seconds`): what trying a model setting costs.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.table import Table

from {{ cookiecutter.package_name }}.config import INTERVAL_FILE, Params
from {{ cookiecutter.package_name }}.contract_rows import contract_frame, source_rows
from {{ cookiecutter.package_name }}.logs import console

from .bench import revisit_ratio
from .scratch import edit_params

if TYPE_CHECKING:
    from .bench_pipeline import SizeResult

DEVLOOP_KEY = "learning_rate"  # the train.* key the dev loop changes


def add_next_day(copy: Path, params: Params, rows: int) -> dt.date:
    """Append the day after the window to the copy's generated source rows (as
    bench_pipeline.sized_copy generates them); return that day."""
    from .bench_pipeline import BENCH_SOURCE, size_params

    contract, window = params.dataset, params.window
    sized = size_params(rows, window.days, revisit_ratio(params))
    day = window.end_date + dt.timedelta(days=1)
    frame = contract_frame(
        contract,
        [day],
        sized["rows_per_day"],
        population=sized["population"],
        seed=params.train.seed,
    )
    source = copy / BENCH_SOURCE
    rows_before = pd.read_parquet(source)
    pd.concat([rows_before, source_rows(contract, frame)], ignore_index=True).to_parquet(
        source, index=False
    )
    return day


def bare_daily(params: Params, device: str = "cpu") -> dict[str, Any]:
    """The floor of a daily run: read the window's newest batch and build its features,
    then retrain on the window and predict its test days. The window's other rows are
    prepared untimed: a job that only adds a day keeps them."""
    from {{ cookiecutter.package_name }}.batches import batch_path, read_raw
    from {{ cookiecutter.package_name }}.features import build_features

    from .bench_pipeline import train_and_predict, window_matrices

    clock = time.perf_counter()
    batch = pd.read_parquet(batch_path(params.paths.raw, params.window.end_date))
    build_features(batch, params.dataset)
    new_s = time.perf_counter() - clock
    matrices = window_matrices(params, read_raw(params.paths.raw))
    fitted = train_and_predict(params, matrices, device)
    steps = ("matrix_seconds", "train_seconds", "predict_seconds")
    return {
        "new_batch_rows": len(batch),
        "new_batch_seconds": new_s,
        **{key: fitted[key] for key in ("train_rows", "rounds", *steps)},
        "work_seconds": new_s + sum(fitted[key] for key in steps),
    }


def daily_figures(
    copy: Path, scratch: Path, rows: int, params: Params, startup_seconds: float
) -> dict[str, Any]:
    """The daily run against its bare work, then the dev loop, in `copy` (see above)."""
    from .bench_pipeline import CLI, _run, stage_metrics_env

    day = add_next_day(copy, params, rows)
    (copy / INTERVAL_FILE).write_text(f"end_date: '{day.isoformat()}'\n")
    metrics_file = scratch / f"stages-daily-{rows}.jsonl"
    dvc = [sys.executable, "-m", "dvc"]
    started = time.perf_counter()
    _run([*dvc, "repro"], copy, stage_metrics_env(metrics_file))
    daily_s = time.perf_counter() - started
    stages = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    bare_json = scratch / f"bare-daily-{rows}.json"
    _run([*CLI, "bare", "--daily", "--json", str(bare_json)], copy)
    bare = json.loads(bare_json.read_text())
    bare_s = bare["work_seconds"] + startup_seconds

    edit_params(copy, lambda p: p["train"].update({DEVLOOP_KEY: p["train"][DEVLOOP_KEY] * 1.25}))
    started = time.perf_counter()
    _run([*dvc, "repro"], copy)
    devloop_s = time.perf_counter() - started
    return {
        "daily_run_seconds": daily_s,
        "daily_bare_seconds": bare_s,
        "daily_ratio": daily_s / bare_s,
        "devloop_seconds": devloop_s,
        "daily_stages": stages,
        "daily_bare": {**bare, "startup_seconds": startup_seconds},
    }


def print_daily(results: list[SizeResult], target_cell: Callable[[str, Any], str]) -> None:
    """The daily run and the dev loop per size, and the daily run's stages."""
    sized = [r for r in results if r.daily]
    if not sized:
        return
    table = Table(title="the daily run (end_date one day on) and the dev loop (one train.* key)")
    for column in (
        "rows",
        "full run s",
        "daily run s",
        "daily / full",
        "daily bare s",
        "daily / bare",
        "dev loop s",
    ):
        table.add_column(column, justify="right")
    for r in sized:
        d = r.daily
        table.add_row(
            f"{r.rows:,}",
            f"{r.pipeline_seconds:,.1f}",
            f"{d['daily_run_seconds']:,.1f}",
            f"{d['daily_run_seconds'] / r.pipeline_seconds:,.2f}",
            f"{d['daily_bare_seconds']:,.1f}",
            target_cell("daily_ratio", d["daily_ratio"]),
            f"{d['devloop_seconds']:,.1f}",
        )
    console.print(table)
    stages = Table(title="the daily run per stage: start-up + work s")
    stages.add_column("stage")
    for r in sized:
        stages.add_column(f"{r.rows:,} rows", justify="right")
    names = list(dict.fromkeys(s["command"] for r in sized for s in r.daily["daily_stages"]))
    for name in names:
        cells = []
        for r in sized:
            s = next((s for s in r.daily["daily_stages"] if s["command"] == name), None)
            cells.append(f"{s['startup_seconds']:.1f} + {s['work_seconds']:.1f}" if s else "-")
        stages.add_row(name, *cells)
    console.print(stages)
