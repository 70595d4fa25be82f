"""The pipeline benchmark behind `make bench`: the whole `dvc repro` at several data
sizes against the bare work it wraps, measured in the same run.

For each size a scratch copy of this project runs the real pipeline on generated rows
of its dataset contract, read through `ingest.source: files` (sized_copy; with
tools/stage_metrics on PYTHONPATH, every stage process records its start-up, work time
and peak memory: see its sitecustomize.py; the package has no hook for it), then a
no-op `dvc repro`, then the bare floor in one fresh process: read the raw parquet,
build the feature matrix, `xgboost.train` with the same parameters and early
stopping, predict the test days. Both are fitted as `fixed + marginal x rows`; the
ratios, not the seconds, are what to compare across machines. Nothing here asserts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from {{ cookiecutter.package_name }}.config import INTERVAL_FILE, Params
from {{ cookiecutter.package_name }}.contract_rows import contract_frame, source_rows
from {{ cookiecutter.package_name }}.logs import console

from .bench import gate_config, revisit_ratio
from .bench_daily import daily_figures, print_daily
from .scratch import copy_project

CLI = [sys.executable, "-m", "tools.bench"]  # run in a scratch copy, from its root
# The generated rows a scratch copy ingests (ingest.files.path), relative to its root.
BENCH_SOURCE = Path("data/source/bench_rows.parquet")
# Put on PYTHONPATH for the timed `dvc repro`: each stage process records its figures.
STAGE_METRICS = Path(__file__).resolve().parent / "stage_metrics"
STAGE_METRICS_ENV = "STAGE_METRICS_FILE"
# Targets from the performance issue; shown next to the figures, never asserted.
TARGETS = {
    "marginal_ratio": 3.0,  # pipeline seconds per row / bare seconds per row
    "fixed_overhead_seconds": 30.0,  # pipeline fixed part minus the bare fixed part
    "linearity": 1.3,  # seconds per row (fixed part removed) at the largest / at 1M rows
    "noop_repro_seconds": 3.0,
    "dag_parse_extra_seconds": 0.1,
    "train_memory_ratio": 3.0,  # peak memory added by training / training matrix bytes
    "monitor_seconds_1m": 5.0,
    "daily_ratio": 2.0,  # daily `dvc repro` / the bare work of that day (tools/bench_daily.py)
}


@dataclass(frozen=True)
class SizeResult:
    rows: int
    pipeline_seconds: float
    noop_seconds: float
    stages: list[dict[str, Any]]
    bare: dict[str, Any]
    daily: dict[str, Any] = field(default_factory=dict)  # bench_daily.daily_figures

    @property
    def bare_seconds(self) -> float:
        return float(self.bare["process_seconds"])


def _run(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update({"NO_PROGRESS": "1", **(extra_env or {})})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"{' '.join(args)} failed in {cwd} (exit {done.returncode}):\n{tail}")
    return done.stdout


def size_params(rows: int, window_days: int, ratio: float) -> dict[str, int]:
    """Rows per day and population for about `rows` raw rows over `window_days` days: more
    entities with more rows, each seen as often as in the project (`ratio`: distinct
    entities per daily row, bench.revisit_ratio), so per-entity history (Feast's join
    work) keeps its shape."""
    per_day = max(rows // window_days, 100)
    return {"rows_per_day": per_day, "population": max(per_day, round(per_day * ratio))}


def stage_metrics_env(metrics_file: Path) -> dict[str, str]:
    """The environment under which every stage process appends its figures to `metrics_file`."""
    path = [str(STAGE_METRICS), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(path), STAGE_METRICS_ENV: str(metrics_file)}


def sized_copy(project: Path, dest: Path, rows: int, params: Params) -> Path:
    """A scratch copy of `project` whose ingest reads about `rows` generated rows of the
    contract over the project's window: the rows (the label as the source's values) in
    BENCH_SOURCE with `ingest.source: files`, the window in data.window_days and
    interval.yaml, the gates' suites profiled on the rows (suite_bootstrap.contract_suites,
    as `dataset init` writes them: the project's own suites describe its own values) and
    room in validate_raw for the rows per day. Everything else is the project's."""
    from {{ cookiecutter.package_name }}.files import write_json
    from {{ cookiecutter.package_name }}.suite_bootstrap import contract_suites

    contract, window = params.dataset, params.window
    if params.paths.expectations.is_absolute():
        raise ValueError(
            f"paths.expectations is absolute ({params.paths.expectations}): the bench writes "
            "each scratch copy's suites below it, so it must be relative to the project root"
        )
    sized = size_params(rows, window.days, revisit_ratio(params))
    frame = contract_frame(
        contract,
        window.dates(),
        sized["rows_per_day"],
        population=sized["population"],
        seed=params.train.seed,
    )

    def resize(p: dict[str, Any]) -> None:
        p["data"]["window_days"] = window.days
        p["ingest"]["source"] = "files"
        p["ingest"]["files"] = {"path": BENCH_SOURCE.as_posix(), "format": "parquet"}
        p["validate_raw"].update(
            gate_config(params, sized["rows_per_day"]).model_dump(
                include={"min_rows_per_day", "max_rows_per_day"}
            )
        )
        (dest / INTERVAL_FILE).write_text(f"end_date: '{window.end_date.isoformat()}'\n")
        for name, suite in contract_suites(contract, frame, window.days).items():
            write_json(suite, dest / params.paths.expectations / f"{name}.json")

    copy = copy_project(project, dest, resize)
    (copy / BENCH_SOURCE).parent.mkdir(parents=True, exist_ok=True)
    source_rows(contract, frame).to_parquet(copy / BENCH_SOURCE, index=False)
    return copy


def bench_size(project: Path, scratch: Path, rows: int, params: Params) -> SizeResult:
    """Full `dvc repro`, a no-op `dvc repro` and the bare floor at one size; then the
    daily run and the dev loop (bench_daily.py)."""
    copy = sized_copy(project, scratch / f"rows-{rows}", rows, params)
    metrics_file = scratch / f"stages-{rows}.jsonl"
    dvc = [sys.executable, "-m", "dvc"]
    started = time.perf_counter()
    _run([*dvc, "repro"], copy, stage_metrics_env(metrics_file))
    pipeline_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _run([*dvc, "repro"], copy)
    noop_seconds = time.perf_counter() - started
    stages = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    bare_json = scratch / f"bare-{rows}.json"
    started = time.perf_counter()
    _run([*CLI, "bare", "--json", str(bare_json)], copy)
    process_seconds = time.perf_counter() - started
    bare = {**json.loads(bare_json.read_text()), "process_seconds": process_seconds}
    startup = process_seconds - bare["work_seconds"]
    daily = daily_figures(copy, scratch, rows, params, startup)
    return SizeResult(rows, pipeline_seconds, noop_seconds, stages, bare, daily)


class PeakRss:
    """Samples this process's resident memory in a thread: the peak within a block."""

    def __init__(self, interval: float = 0.01) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self.start_bytes = self.peak_bytes = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)


def window_matrices(params: Params, raw: Any) -> dict[str, Any]:
    """The train, valid and test matrices (and labels) of the window's matured rows: what
    the pipeline trains on (labels older than dataset.label.horizon_days at its end)."""
    from {{ cookiecutter.package_name }}.features import build_features
    from {{ cookiecutter.package_name }}.model import feature_matrix
    from {{ cookiecutter.package_name }}.split import time_split

    contract = params.dataset
    label, features = contract.label.column, contract.feature_columns
    matured = raw[contract.timestamp] < contract.label_known_before(params.window.end_date)
    frame = build_features(raw.loc[matured], contract)
    frame[label] = raw.loc[matured, label].to_numpy()
    splits = time_split(frame, params.split, contract)
    return {
        "x_train": feature_matrix(splits.train, features),
        "y_train": splits.train[label].to_numpy(),
        "x_valid": feature_matrix(splits.valid, features),
        "y_valid": splits.valid[label].to_numpy(),
        "x_test": feature_matrix(splits.test, features),
    }


def train_and_predict(params: Params, m: dict[str, Any], device: str) -> dict[str, Any]:
    """QuantileDMatrix, xgboost.train with the train.* parameters and early stopping, and
    the test days' predictions, timed; the training's peak memory."""
    import xgboost as xgb

    from {{ cookiecutter.package_name }}.model import scale_pos_weight, xgb_params

    cfg = params.train
    spw = scale_pos_weight(m["y_train"], cfg)
    with PeakRss() as memory:
        clock = time.perf_counter()
        dtrain = xgb.QuantileDMatrix(m["x_train"], m["y_train"], max_bin=cfg.max_bin)
        dvalid = xgb.QuantileDMatrix(m["x_valid"], m["y_valid"], ref=dtrain)
        matrix_s = time.perf_counter() - clock
        clock = time.perf_counter()
        booster = xgb.train(
            xgb_params(cfg, device, spw),
            dtrain,
            num_boost_round=cfg.num_boost_round,
            evals=[(dvalid, "valid")],
            early_stopping_rounds=cfg.early_stopping_rounds,
            verbose_eval=False,
        )
        train_s = time.perf_counter() - clock
    clock = time.perf_counter()
    booster.predict(xgb.DMatrix(m["x_test"]))
    predict_s = time.perf_counter() - clock
    matrix_bytes = m["x_train"].nbytes + m["x_valid"].nbytes
    return {
        "device": device,
        "train_rows": len(m["x_train"]),
        "rounds": booster.num_boosted_rounds(),
        "matrix_seconds": matrix_s,
        "train_seconds": train_s,
        "predict_seconds": predict_s,
        "matrix_bytes": matrix_bytes,
        "train_peak_added_bytes": memory.peak_bytes - memory.start_bytes,
    }


def bare_training(params: Params, device: str = "cpu") -> dict[str, Any]:
    """The floor: the same data and XGBoost parameters, no DVC, gates, Feast or MLflow.
    It trains on the rows the pipeline trains on: those whose label has matured by the
    window's end (dataset.label.horizon_days)."""
    from {{ cookiecutter.package_name }}.batches import read_raw

    clock = time.perf_counter()
    raw = read_raw(params.paths.raw)
    read_s = time.perf_counter() - clock
    clock = time.perf_counter()
    matrices = window_matrices(params, raw)
    features_s = time.perf_counter() - clock
    fitted = train_and_predict(params, matrices, device)
    rounds, matrix_bytes = fitted["rounds"], fitted["matrix_bytes"]
    work = read_s + features_s + sum(fitted[f"{k}_seconds"] for k in ("matrix", "train", "predict"))
    return {
        "device": device,
        "rows": len(raw),
        "train_rows": fitted["train_rows"],
        "features": len(params.dataset.feature_columns),
        "rounds": rounds,
        "read_seconds": read_s,
        "features_seconds": features_s,
        "matrix_seconds": fitted["matrix_seconds"],
        "train_seconds": fitted["train_seconds"],
        "predict_seconds": fitted["predict_seconds"],
        "work_seconds": work,
        "train_row_rounds_per_second": fitted["train_rows"] * rounds / fitted["train_seconds"],
        "matrix_mb": matrix_bytes / 2**20,
        "train_peak_added_mb": fitted["train_peak_added_bytes"] / 2**20,
        "train_memory_ratio": fitted["train_peak_added_bytes"] / matrix_bytes,
    }


DAG_PARSE_SCRIPT = """
import json, sys, time, runpy, tempfile, pathlib
import airflow.sdk  # imported before timing: the DAG processor has it loaded already
dags = pathlib.Path(sys.argv[1]).resolve()
sys.path.insert(0, str(dags))
empty = pathlib.Path(tempfile.mkdtemp()) / "empty_dag.py"
empty.write_text("from airflow.sdk import DAG\\nwith DAG('empty', schedule=None):\\n    pass\\n")
def parse(path):
    started = time.perf_counter()
    runpy.run_path(str(path))
    return time.perf_counter() - started
out = {"empty_first": parse(empty)}
files = sorted(p for p in dags.glob("*.py") if "DAG" in p.read_text())
for f in files:
    out[f.name + "_first"] = parse(f)
out["empty_best"] = min(parse(empty) for _ in range(5))
for f in files:
    out[f.name + "_best"] = min(parse(f) for _ in range(5))
print(json.dumps(out))
"""


def dag_parse(project: Path) -> dict[str, float]:
    """Seconds to parse each DAG file against an empty DAG, in one interpreter."""
    import importlib.util

    if importlib.util.find_spec("airflow") is None:
        return {"skipped": 1.0}  # Airflow is an optional extra of this project
    out = _run([sys.executable, "-c", DAG_PARSE_SCRIPT, str(project / "dags")], project)
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


def fit(rows: list[int], seconds: list[float]) -> tuple[float, float]:
    """`seconds = fixed + marginal x rows`, marginal in seconds per million rows, one
    measurement per size. Real costs are not quite straight lines, and a least-squares
    line through them tilts (down to a negative fixed part), so each part is read where
    it shows: the fixed part where the line through the two smallest sizes meets zero
    rows, the marginal part as the slope between the two largest sizes."""
    points = sorted(zip(rows, seconds, strict=True))
    if len({n for n, _ in points}) != len(points) or len(points) < 2:
        return float("nan"), float("nan")  # one size cannot tell fixed from marginal cost
    (n0, s0), (n1, s1) = points[0], points[1]
    fixed = s0 - (s1 - s0) / (n1 - n0) * n0
    (m0, t0), (m1, t1) = points[-2], points[-1]
    return fixed, (t1 - t0) / (m1 - m0) * 1e6


def summarise(results: list[SizeResult]) -> dict[str, Any]:
    rows = [r.rows for r in results]
    fixed, marginal = fit(rows, [r.pipeline_seconds for r in results])
    bare_fixed, bare_marginal = fit(rows, [r.bare_seconds for r in results])
    per_million = {
        r.rows: (r.pipeline_seconds - fixed) / r.rows * 1e6
        for r in results
        if r.rows >= 1_000_000 and np.isfinite(fixed)
    }
    big = sorted(per_million)
    largest = max(results, key=lambda r: r.rows)
    return {
        "pipeline_fixed_seconds": fixed,
        "pipeline_marginal_seconds_per_million": marginal,
        "bare_fixed_seconds": bare_fixed,
        "bare_marginal_seconds_per_million": bare_marginal,
        "marginal_ratio": marginal / bare_marginal,
        "fixed_overhead_seconds": fixed - bare_fixed,
        "pipeline_seconds_per_million_fixed_removed": per_million,
        # with two sizes the fixed part is fitted on the very sizes compared: 1.0 by construction
        "linearity": (
            per_million[max(big)] / per_million[min(big)]
            if len(big) > 1 and len(results) > 2
            else None
        ),
        "noop_repro_seconds": max(r.noop_seconds for r in results),
        # at the largest size: on a few MB, allocator slack outweighs the matrix
        "train_memory_ratio": largest.bare["train_memory_ratio"],
        # the daily run and the dev loop, at the largest size (every size: `pipeline`)
        **{key: largest.daily.get(key) for key in DAILY_KEYS},
        "daily_ratio_by_rows": {r.rows: r.daily.get("daily_ratio") for r in results},
    }


DAILY_KEYS = ("daily_run_seconds", "daily_bare_seconds", "daily_ratio", "devloop_seconds")


def _target_cell(name: str, value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    limit = TARGETS[name]
    mark = "[green]within[/]" if value <= limit else "[red]over[/]"
    return f"{value:,.2f} ({mark} {limit:g})"


def print_results(results: list[SizeResult], summary: dict[str, Any]) -> None:
    sizes = Table(title="dvc repro against the bare work (same data, same XGBoost parameters)")
    for column in (
        "rows",
        "pipeline s",
        "bare s",
        "pipeline / bare",
        "pipeline s per M rows",
        "bare s per M rows",
        "no-op repro s",
    ):
        sizes.add_column(column, justify="right")
    for r in results:
        sizes.add_row(
            f"{r.rows:,}",
            f"{r.pipeline_seconds:,.1f}",
            f"{r.bare_seconds:,.1f}",
            f"{r.pipeline_seconds / r.bare_seconds:,.2f}",
            f"{r.pipeline_seconds / r.rows * 1e6:,.1f}",
            f"{r.bare_seconds / r.rows * 1e6:,.1f}",
            f"{r.noop_seconds:,.2f}",
        )
    console.print(sizes)

    stages = Table(
        title="per stage: start-up (interpreter, CLI, the stage's imports), work, peak memory"
    )
    stages.add_column("stage")
    for r in results:
        stages.add_column(f"{r.rows:,} rows: start + work s", justify="right")
        stages.add_column("peak MB", justify="right")
    names = [s["command"] for s in results[0].stages]
    for name in names:
        cells = []
        for r in results:
            s = next((s for s in r.stages if s["command"] == name), None)
            cells += (
                [
                    f"{s['startup_seconds']:.1f} + {s['work_seconds']:.1f}",
                    f"{s['peak_rss_mb']:,.0f}",
                ]
                if s
                else ["-", "-"]
            )
        stages.add_row(name, *cells)
    dvc_cells = []
    for r in results:
        inside = sum(s["total_seconds"] for s in r.stages)
        dvc_cells += [f"{r.pipeline_seconds - inside:.1f}", ""]
    stages.add_row("DVC itself (outside the stages)", *dvc_cells)
    console.print(stages)

    fit_table = Table(
        title="seconds = fixed + marginal x rows: fixed from the two smallest sizes, "
        "marginal from the two largest (targets are goals, not tests)"
    )
    fit_table.add_column("measure")
    fit_table.add_column("value", justify="right")
    for label, key in (
        ("pipeline fixed s", "pipeline_fixed_seconds"),
        ("bare fixed s", "bare_fixed_seconds"),
        ("pipeline marginal s per M rows", "pipeline_marginal_seconds_per_million"),
        ("bare marginal s per M rows", "bare_marginal_seconds_per_million"),
    ):
        value = summary[key]
        fit_table.add_row(label, f"{value:,.1f}" if np.isfinite(value) else "n/a (one size)")
    for name in (
        "marginal_ratio",
        "fixed_overhead_seconds",
        "linearity",
        "noop_repro_seconds",
        "train_memory_ratio",
        "daily_ratio",
    ):
        fit_table.add_row(name.replace("_", " "), _target_cell(name, summary[name]))
    console.print(fit_table)
    print_daily(results, _target_cell)

    bare = Table(title="bare XGBoost training (hist) per size")
    for column in ("rows", "device", "rounds", "matrix s", "train s", "row-rounds/s", "memory"):
        bare.add_column(column, justify="right")
    for r in results:
        b = r.bare
        bare.add_row(
            f"{b['train_rows']:,}",
            b["device"],
            str(b["rounds"]),
            f"{b['matrix_seconds']:.2f}",
            f"{b['train_seconds']:.2f}",
            f"{b['train_row_rounds_per_second']:,.0f}",
            f"+{b['train_peak_added_mb']:,.0f} MB for a {b['matrix_mb']:,.0f} MB matrix",
        )
    console.print(bare)


def run_benchmark(
    project: Path,
    params: Params,
    sizes: list[int],
    component_rows: int,
    out: Path,
    keep: bool = False,
    serve_requests: int = 1000,
) -> dict[str, Any]:
    """Every measurement of `make bench`; prints tables and writes `out` (JSON)."""
    import logging
    import warnings

    from . import bench
    from .bench_online import bench_online
    from .bench_pit import bench_pit

    # Libraries' deprecation notices (Feast, Evidently's web stack) would bury the tables;
    # some libraries reset the warning filters on import, so also mute their logger.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("py.warnings").setLevel(logging.ERROR)
    if not sizes or min(sizes) < 10_000:
        raise ValueError(f"sizes must be 10,000 rows or more each; got {sizes}")
    sizes = sorted(set(sizes))
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    report: dict[str, Any] = {"sizes": sorted(sizes), "component_rows": component_rows}
    try:
        results = []
        for rows in sorted(sizes):
            console.print(f"[bold]pipeline at {rows:,} rows[/] (scratch copy in {scratch})")
            results.append(bench_size(project, scratch, rows, params))
        report["pipeline"] = [r.__dict__ for r in results]
        report["summary"] = summarise(results)
        print_results(results, report["summary"])

        from {{ cookiecutter.package_name }}.model import cuda_usable

        smallest = scratch / f"rows-{min(sizes)}"
        largest = scratch / f"rows-{max(sizes)}"
        if cuda_usable():
            cuda_json = scratch / "bare-cuda.json"
            _run([*CLI, "bare", "--device", "cuda", "--json", str(cuda_json)], largest)
            report["bare_cuda"] = json.loads(cuda_json.read_text())
        else:
            report["bare_cuda"] = "no usable CUDA device here: GPU training not measured"
            console.print(report["bare_cuda"])

        parse = dag_parse(project)
        report["dag_parse"] = parse
        if "skipped" not in parse:
            extra = max(v for k, v in parse.items() if k.endswith("_first") and "empty" not in k)
            extra -= parse["empty_first"]
            report["summary"]["dag_parse_extra_seconds"] = extra
            bench.print_figures("DAG file parse, seconds (after `import airflow.sdk`)", parse)
            console.print(
                f"DAG parse over an empty DAG: {_target_cell('dag_parse_extra_seconds', extra)}"
            )

        report["raw_gate"] = bench.bench_raw_gate(params, component_rows)
        report.setdefault("layer_ratios", {})["gates"] = report["raw_gate"]
        report["feast"] = bench.bench_feature_store(params, component_rows)
        report.setdefault("layer_ratios", {})["pit"] = bench_pit(params, component_rows)
        # the materialize stage's load, at a tenth of the rows in distinct entities
        online = bench_online(params, [component_rows // 10], stock=True, redis=False)
        report["layer_ratios"]["online_load"] = online
        monitoring = bench.bench_monitoring(params, component_rows, list(bench.DRIFT_SCENARIOS))
        report["monitoring"] = monitoring
        report["layer_ratios"]["monitor"] = bench.monitor_layer(
            monitoring, component_rows, params.monitor.sample_rows
        )
        worst = max(m["sampled_prepare_seconds"] + m["sampled_report_seconds"] for m in monitoring)
        report["summary"]["monitor_seconds_1m"] = worst
        console.print(
            f"drift monitoring on {component_rows:,} current rows (sampled): "
            f"{_target_cell('monitor_seconds_1m', worst)}; same verdicts as the full computation: "
            f"{all(m['verdicts_match'] and m['same_failed_checks'] for m in monitoring)}"
        )
        serve_json = scratch / "serve.json"
        _run(
            [*CLI, "serve", "--requests", str(serve_requests), "--json", str(serve_json)],
            smallest,
        )
        report["serving"] = json.loads(serve_json.read_text())
        console.print(
            f"POST /predict (scratch project at {min(sizes):,} rows): "
            f"p50 {report['serving']['http_p50_ms']:.1f} ms, "
            f"p99 {report['serving']['http_p99_ms']:.1f} ms"
        )
    finally:
        if keep:
            console.print(f"scratch projects kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    console.print(f"[bold]written:[/] {out}")
    return report
