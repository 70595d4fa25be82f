"""Benchmarks behind `make bench`: print figures and ratios against a bare baseline
measured in the same run; `python -m tools.bench --help` lists the commands.

Every row is generated for the project's dataset contract (params.yaml `dataset`,
through src/{{ cookiecutter.package_name }}/contract_rows.py), so the figures hold for any table's columns. Nothing
here asserts a time: a slow machine gives slow figures, not failures. This is the
template's tooling: it reads the package's modules, the package never imports it.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import typer
from rich.table import Table

from {{ cookiecutter.package_name }}.config import Params, Window, load_params
from {{ cookiecutter.package_name }}.contract_rows import contract_frame
from {{ cookiecutter.package_name }}.logs import console, setup_logging

from .bench_serving import STORES, bench_serving

# Distinct entities per row of a day when the project shows none (no synthetic source
# and no ingested batches): each entity is then seen on about one day in five.
DEFAULT_REVISIT_RATIO = 5.0
REFERENCE_ROWS_PER_DAY = 1500  # the monitoring bench's fixed training reference
# Targets from the performance issue; printed beside the figures, never asserted.
GATE_TARGET_RATIO = 2.0  # the raw gate's time / the same checks in bare pandas
MONITOR_TARGET_SECONDS = 5.0  # sampled monitoring of 1M current rows (prepare + report)


def revisit_ratio(params: Params) -> float:
    """Distinct entities per row of one day, as in the project: from `ingest.synthetic`
    when it is the source, else measured on the ingested batches (paths.raw), else
    DEFAULT_REVISIT_RATIO. Generated data keeps it, so per-entity history (Feast's join
    work) keeps the project's shape at any size."""
    synthetic = params.ingest.synthetic
    if params.ingest.source == "synthetic" and synthetic is not None:
        return synthetic.population / synthetic.rows_per_day
    key = params.dataset.entity.key
    # the ingested batches, if they are this contract's (a contract given to the bench
    # beside the project's own is measured at the default)
    files = [
        f
        for f in sorted(params.paths.raw.glob("batch_*.parquet"))
        if key in pq.read_schema(f).names
    ]
    if not files:
        return DEFAULT_REVISIT_RATIO
    keys = pd.concat([pd.read_parquet(f, columns=[key])[key] for f in files])
    if keys.empty:
        return DEFAULT_REVISIT_RATIO
    return max(1.0, keys.nunique() / (len(keys) / len(files)))


def contract_raw(
    params: Params, rows: int, days: list[dt.date], seed: int = 0, **drift: float
) -> pd.DataFrame:
    """About `rows` conformed rows of the project's contract (params.yaml `dataset`), in
    daily batches over `days`, with the project's revisit ratio; `drift`: contract_frame's
    `covariate` and `concept`."""
    per_day = max(rows // len(days), 1)
    population = max(per_day, round(per_day * revisit_ratio(params)))
    return contract_frame(params.dataset, days, per_day, population=population, seed=seed, **drift)


def _within(values: Any, low: Any, high: Any) -> Any:
    """values >= low and <= high, a missing bound (None) being no bound."""
    above = values >= low if low is not None else True
    below = values <= high if high is not None else True
    return above & below


def _bare_check(frame: pd.DataFrame, expectation: dict[str, Any], values: dict[str, Any]) -> bool:
    """The same check done directly in pandas: the floor GX is measured against."""
    kind, kw = expectation["type"], dict(expectation["kwargs"])
    kw = {k: values[v["$PARAMETER"]] if isinstance(v, dict) else v for k, v in kw.items()}
    column = frame[kw["column"]] if "column" in kw else None
    low, high = kw.get("min_value"), kw.get("max_value")
    if kind == "expect_table_columns_to_match_set":
        return set(frame.columns) == set(kw["column_set"])
    if kind == "expect_table_row_count_to_be_between":
        return bool(_within(len(frame), low, high))
    if kind == "expect_column_values_to_be_of_type":
        if kw["type_"] == "Timestamp":
            return isinstance(column.dtype, pd.DatetimeTZDtype)
        return column.dtype.name == kw["type_"]
    if kind == "expect_column_values_to_be_in_type_list":
        return column.dtype.name in kw["type_list"]
    if kind == "expect_column_values_to_not_be_null":
        return bool(column.notna().mean() >= kw.get("mostly", 1.0))
    if kind == "expect_compound_columns_to_be_unique":
        return not frame.duplicated(kw["column_list"]).any()
    if kind == "expect_column_values_to_be_between":
        return bool(_within(column.dropna(), low, high).all())
    if kind == "expect_column_max_to_be_between":
        return bool(_within(column.max(), low, high))
    if kind == "expect_column_values_to_be_in_set":
        return bool(column.dropna().isin(kw["value_set"]).all())
    if kind == "expect_column_mean_to_be_between":
        return bool(_within(column.mean(), low, high))
    raise ValueError(f"no bare baseline for {kind}")


def gate_config(params: Params, rows_per_day: int) -> Any:
    """validate_raw with room for `rows_per_day` rows in every batch."""
    cfg = params.validate_raw
    return cfg.model_copy(
        update={
            "min_rows_per_day": min(cfg.min_rows_per_day, rows_per_day),
            "max_rows_per_day": max(cfg.max_rows_per_day, 2 * rows_per_day),
        }
    )


def _bare_seconds(
    by_day: dict[dt.date, pd.DataFrame], suite: dict[str, Any], cfg: Any, rate: float
) -> float:
    """CPU seconds to run every expectation of `suite` in bare pandas on each batch."""
    from {{ cookiecutter.package_name }}.raw_gate import batch_parameters, plausible_label_share

    now = dt.datetime.now(dt.UTC)
    plausible_label_share(1, 0.5, 0.5)  # imports scipy.stats: not part of the checks
    started = time.process_time()
    for day, batch in by_day.items():
        share = plausible_label_share(len(batch), rate, cfg.label_share_alpha)
        values = batch_parameters(day, cfg, share, now)
        for expectation in suite["expectations"]:
            _bare_check(batch, expectation, values)
    return time.process_time() - started


def bench_raw_gate(params: Params, rows: int, report_dir: Path | None = None) -> dict[str, float]:
    """The raw gate on `rows` rows of the contract in daily batches: the first run (every
    batch), a daily run (the window moved by one new batch), and the same checks in bare
    pandas on the same batch files. The suite is the contract's raw suite profiled on the
    generated window (suite_bootstrap.raw_suite), the one `dataset init` writes: the
    project's own suite describes the project's values, not the generated ones."""
    from {{ cookiecutter.package_name }}.batches import batch_path
    from {{ cookiecutter.package_name }}.files import write_json, write_parquet
    from {{ cookiecutter.package_name }}.raw_gate import validate_window
    from {{ cookiecutter.package_name }}.suite_bootstrap import raw_suite

    contract, days = params.dataset, 10
    end = params.interval.end_date
    window = Window(end_date=end - dt.timedelta(days=1), days=days)
    # `rows` over the window, plus one more day of the same size that arrives "tomorrow"
    frame = contract_raw(params, rows + rows // days, Window(end_date=end, days=days + 1).dates())
    window_frame = frame[frame[contract.timestamp].dt.date < end].reset_index(drop=True)
    cfg = gate_config(params, len(frame) - len(window_frame))
    suite = raw_suite(contract, window_frame, days)
    rate = float(window_frame[contract.label.column].mean())

    with tempfile.TemporaryDirectory() as tmp:
        root = report_dir or Path(tmp)
        paths = params.paths.model_copy(
            update={
                "raw": root / "raw",
                "gate_reports": root / "gates",
                "expectations": root / "expectations",
            }
        )
        write_json(suite, paths.expectations / "raw.json")
        for day, part in frame.groupby(frame[contract.timestamp].dt.date):
            write_parquet(part.reset_index(drop=True), batch_path(paths.raw, day))
        # the batches as the gate reads them (the file's column types)
        by_day = {day: pd.read_parquet(batch_path(paths.raw, day)) for day in window.dates()}
        import great_expectations  # noqa: F401  # its cold import (seconds): the stage's start-up

        started = time.perf_counter()
        bare = _bare_seconds(by_day, suite, cfg, rate)
        bare_wall = time.perf_counter() - started
        started, cpu = time.perf_counter(), time.process_time()
        first = validate_window(paths, window, cfg, contract)
        first_seconds, first_cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        daily = validate_window(paths, Window(end_date=end, days=days), cfg, contract)
        daily_seconds = time.perf_counter() - started
    figures = {
        "rows": float(len(window_frame)),
        "batches": float(days),
        "expectations": float(len(suite["expectations"])),
        "gx_seconds": first_seconds,
        "gx_rows_per_second": len(window_frame) / first_seconds,
        "bare_pandas_seconds": bare_wall,
        "gx_over_bare": first_seconds / bare_wall,
        # CPU time: what a busy machine (other processes waiting for the cores) disturbs least
        "gx_cpu_seconds": first_cpu,
        "bare_pandas_cpu_seconds": bare,
        "gx_over_bare_cpu": first_cpu / bare,
        "target_gx_over_bare": GATE_TARGET_RATIO,
        "daily_run_seconds": daily_seconds,
        "daily_run_rows": float(daily.rows),
        "daily_over_first": daily_seconds / first_seconds,
        "passed": float(first.passed and daily.passed),
    }
    print_figures(
        f"raw gate on {len(window_frame):,} rows in {days} daily batches, then one new batch",
        figures,
    )
    console.print(
        f"raw gate / bare pandas: {target_cell(figures['gx_over_bare'], GATE_TARGET_RATIO)} "
        f"(CPU: {target_cell(figures['gx_over_bare_cpu'], GATE_TARGET_RATIO)})"
    )
    return figures


def target_cell(value: float, limit: float) -> str:
    """`value` and whether it is within `limit` (a yardstick, never a test)."""
    mark = "[green]within[/]" if value <= limit else "[red]over[/]"
    return f"{value:,.2f} ({mark} {limit:g})"


def register_layer(out: Path, name: str, figures: Any) -> None:
    """Put `figures` under `layer_ratios.<name>` of the JSON report `out`, keeping the rest."""
    report = json.loads(out.read_text()) if out.is_file() else {}
    report.setdefault("layer_ratios", {})[name] = figures
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))


def monitor_layer(figures: list[dict[str, Any]], rows: int, sample_rows: int) -> dict[str, Any]:
    """The monitoring bench's figures as `layer_ratios.monitor` holds them: the slowest
    scenario's sampled seconds against the target, and whether every verdict agreed."""
    worst = max(f["sampled_prepare_seconds"] + f["sampled_report_seconds"] for f in figures)
    return {
        "current_rows": rows,
        "sample_rows": sample_rows,
        "sampled_seconds_max": worst,
        "sampled_cpu_seconds_max": max(f["sampled_cpu_seconds"] for f in figures),
        "full_seconds_max": max(
            f["full_prepare_seconds"] + f["full_report_seconds"] for f in figures
        ),
        "target_seconds": MONITOR_TARGET_SECONDS,
        "same_verdicts": all(
            f["verdicts_match"] and f["same_failed_checks"] and f["same_drifted_features"]
            for f in figures
        ),
        "scenarios": figures,
    }


DRIFT_SCENARIOS: dict[str, dict[str, float]] = {
    "none": {},
    "covariate": {"covariate": 0.6},
    "concept": {"concept": 1.0},
}


def _reference_model(params: Params) -> tuple[Any, Any, Any, pd.DataFrame]:
    """A model trained on a fixed reference of the contract (no drift), ending at the
    window's end: (booster, meta, splits, test predictions: label and score)."""
    from {{ cookiecutter.package_name }}.features import build_features
    from {{ cookiecutter.package_name }}.model import predict_proba
    from {{ cookiecutter.package_name }}.prediction_log import SCORE
    from {{ cookiecutter.package_name }}.split import days_needed, time_split
    from {{ cookiecutter.package_name }}.training import train_model

    contract, label = params.dataset, params.dataset.label.column
    days = max(days_needed(params.split) + 13, 30)
    window = Window(end_date=params.interval.end_date, days=days)
    raw = contract_raw(params, days * REFERENCE_ROWS_PER_DAY, window.dates(), params.monitor.seed)
    frame = build_features(raw, contract).assign(**{label: raw[label].to_numpy()})
    splits = time_split(frame, params.split, contract)
    cfg_train = params.train.model_copy(
        update={"num_boost_round": 150, "device": "cpu", "engine": "local"}
    )
    booster, meta = train_model(splits, cfg_train, contract)
    scores = predict_proba(booster, splits.test, meta.calibration)  # as evaluate scores
    test_predictions = pd.DataFrame({label: splits.test[label].to_numpy(), SCORE: scores})
    return booster, meta, splits, test_predictions


def bench_monitoring(params: Params, rows: int, scenarios: list[str]) -> list[dict[str, Any]]:
    """Time the monitoring checks on `rows` current rows, in full and sampled.

    A model is trained on a fixed reference of the contract (no drift); each scenario
    draws `rows` current rows over the `monitor.current_days` days after it (and the
    `dataset.label.horizon_days` before those, whose labels have arrived: model quality
    is judged on them), with the given drift, and runs the checks twice: every row
    (sample_rows=0) and sampled (monitor.sample_rows). The verdicts must agree for
    sampling to be safe.
    """
    from {{ cookiecutter.package_name }}.monitoring import build_monitor_data, run_checks

    unknown = sorted(set(scenarios) - set(DRIFT_SCENARIOS))
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; choose from {sorted(DRIFT_SCENARIOS)}")
    contract = params.dataset
    booster, meta, splits, test_predictions = _reference_model(params)

    import evidently  # noqa: F401  # its cold import (seconds) is not part of the figures

    sampled_cfg = params.monitor
    full_cfg = sampled_cfg.model_copy(update={"sample_rows": 0})
    current_days = sampled_cfg.current_days
    per_day = max(rows // current_days, 1)
    span = current_days + contract.label.horizon_days
    last_day = params.interval.end_date + dt.timedelta(days=span)
    days = Window(end_date=last_day, days=span).dates()
    figures = []
    for name in scenarios:
        current_raw = contract_raw(
            params, per_day * span, days, params.monitor.seed + 1, **DRIFT_SCENARIOS[name]
        )
        outcome: dict[str, Any] = {"scenario": name, "current_rows": per_day * current_days}
        verdicts = {}
        for label, cfg in (("full", full_cfg), ("sampled", sampled_cfg)):
            started, cpu = time.perf_counter(), time.process_time()
            inputs = build_monitor_data(
                raw=current_raw,
                reference=splits.train,
                booster=booster,
                threshold=meta.threshold,
                cfg=cfg,
                contract=contract,
                test_predictions=test_predictions,
                end_date=last_day,
                calibration=meta.calibration,
            )
            prepared = time.perf_counter() - started
            summary = run_checks(inputs, cfg).summary
            outcome[f"{label}_cpu_seconds"] = time.process_time() - cpu
            outcome["labelled_rows"] = len(inputs.labelled)
            outcome[f"{label}_prepare_seconds"] = prepared
            outcome[f"{label}_report_seconds"] = summary["seconds"]
            outcome[f"{label}_drift_share"] = summary["feature_drift"].get("share")
            outcome[f"{label}_quality"] = summary["model_quality"].get("status")
            verdicts[label] = (
                summary["retrain"],
                sorted(summary["feature_drift"].get("drifted", [])),
                bool(summary["prediction_drift"].get("drifted")),
                sorted(summary["model_quality"].get("failed", [])),
            )
            outcome[f"{label}_retrain"] = summary["retrain"]
        outcome["verdicts_match"] = verdicts["full"][0] == verdicts["sampled"][0]
        outcome["same_drifted_features"] = verdicts["full"][1] == verdicts["sampled"][1]
        outcome["same_failed_checks"] = verdicts["full"][2:] == verdicts["sampled"][2:]
        figures.append(outcome)
    _print_monitoring(figures, rows, len(splits.train), sampled_cfg.sample_rows)
    layer = monitor_layer(figures, rows, sampled_cfg.sample_rows)
    console.print(
        f"sampled monitoring of {rows:,} current rows, slowest scenario: "
        f"{target_cell(layer['sampled_seconds_max'], MONITOR_TARGET_SECONDS)} s "
        f"(CPU {layer['sampled_cpu_seconds_max']:.2f} s); same verdicts as the full "
        f"computation: {layer['same_verdicts']}"
    )
    return figures


def _print_monitoring(
    figures: list[dict[str, Any]], rows: int, reference_rows: int, sample_rows: int
) -> None:
    table = Table(
        title=f"monitoring on {rows:,} current rows; reference {reference_rows:,} rows; "
        f"sampled to {sample_rows:,} rows"
    )
    for column in (
        "scenario",
        "full s (prep + report)",
        "sampled s (prep + report)",
        "retrain full / sampled",
        "same verdict",
        "same drifted features",
    ):
        table.add_column(column)
    for f in figures:
        table.add_row(
            f["scenario"],
            f"{f['full_prepare_seconds']:.2f} + {f['full_report_seconds']:.2f}",
            f"{f['sampled_prepare_seconds']:.2f} + {f['sampled_report_seconds']:.2f}",
            f"{f['full_retrain']} / {f['sampled_retrain']}",
            str(f["verdicts_match"] and f["same_failed_checks"]),
            str(f["same_drifted_features"]),
        )
    console.print(table)


def print_figures(title: str, figures: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:,.3f}" if isinstance(value, float) else str(value))
    console.print(table)


def bench_feature_store(
    params: Params, rows: int, feature_repo: Path = Path("features")
) -> dict[str, float]:
    """Feast historical retrieval and materialization on `rows` rows of the contract, in a
    scratch copy of `feature_repo` (the project's features/)."""
    import shutil

    import yaml

    from {{ cookiecutter.package_name }}.feature_store import historical_features, open_store
    from {{ cookiecutter.package_name }}.features import build_features, build_labels
    from {{ cookiecutter.package_name }}.materialization import materialize

    from .point_in_time import point_in_time_join

    contract = params.dataset
    raw = contract_raw(params, rows, Window(end_date=params.interval.end_date, days=10).dates())
    features, labels = build_features(raw, contract), build_labels(raw, contract)
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        repo = scratch / "features"
        shutil.copytree(feature_repo, repo, ignore=shutil.ignore_patterns("state", "__pycache__"))
        # features/definitions.py reads `dataset` and <paths.features>/features.parquet
        scratch_params = {
            "dataset": contract.model_dump(mode="json"),
            "paths": {"features": "data"},
        }
        (scratch / "params.yaml").write_text(yaml.safe_dump(scratch_params, sort_keys=False))
        (scratch / "data").mkdir()
        features.to_parquet(
            scratch / "data" / params.paths.feature_table.name, index=False, coerce_timestamps="us"
        )
        store = open_store(repo)
        offline = store.config.offline_store.type
        started = time.perf_counter()
        frame = historical_features(store, labels, contract)
        feast_seconds = time.perf_counter() - started
        started = time.perf_counter()
        point_in_time_join(labels, features, contract)
        pandas_seconds = time.perf_counter() - started
        started = time.perf_counter()
        materialize(
            store,
            features,
            contract,
            params.materialize.chunk_rows,
            params.materialize.verify_entities,
        )
        materialize_seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    figures = {
        "rows": float(len(raw)),
        "historical_rows_returned": float(len(frame)),
        "feast_historical_seconds": feast_seconds,
        "pandas_merge_asof_seconds": pandas_seconds,
        "feast_over_pandas": feast_seconds / pandas_seconds,
        "materialize_seconds": materialize_seconds,
    }
    print_figures(f"Feast on {len(raw):,} rows (offline store {offline})", figures)
    return figures


# ---- the command line: `python -m tools.bench <command>` ---------------------------

app = typer.Typer(
    help="Benchmarks that print figures (never pass/fail). `make bench` runs `pipeline`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="Path to params.yaml.")
JSON_OPTION = typer.Option(None, "--json", help="Also write the figures to this JSON file.")


@app.callback()
def _setup() -> None:
    setup_logging()


def _write_figures(figures: Any, path: Path | None) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2, default=str))


REPORT_OPTION = typer.Option(
    Path("reports/bench/bench.json"), "--out", help="JSON report to register the figures in."
)


@app.command()
def gate(
    rows: int = typer.Option(1_000_000, help="Rows of raw data to validate."),
    params: Path = PARAMS_OPTION,
    out: Path = REPORT_OPTION,
) -> None:
    """Rows per second of the raw gate, against the same checks in bare pandas; the
    figures go to `layer_ratios.gates` of --out."""
    register_layer(out, "gates", bench_raw_gate(load_params(params), rows))


@app.command()
def monitor(
    rows: int = typer.Option(100_000, help="Rows of current data (the reference is fixed)."),
    scenario: list[str] = typer.Option(
        list(DRIFT_SCENARIOS), help="Drift scenario(s): none, covariate, concept."
    ),
    params: Path = PARAMS_OPTION,
    out: Path = REPORT_OPTION,
) -> None:
    """Monitoring time for N current rows, in full and sampled, and whether both reach
    the same verdicts; the figures go to `layer_ratios.monitor` of --out."""
    loaded = load_params(params)
    figures = bench_monitoring(loaded, rows, scenario)
    register_layer(out, "monitor", monitor_layer(figures, rows, loaded.monitor.sample_rows))


@app.command()
def serve(
    requests: int = typer.Option(1000, help="Single-entity requests to time, per store."),
    batch: int = typer.Option(100, help="Entities per request in the batch test."),
    store: list[str] = typer.Option(
        list(STORES), help="Online store(s) to measure side by side: sqlite, redis."
    ),
    params: Path = PARAMS_OPTION,
    json_out: Path = typer.Option(
        Path("reports/bench/serve.json"), "--json", help="Write the figures to this JSON file."
    ),
) -> None:
    """POST /predict latency p50/p99 over HTTP, against the bare Feast read + XGBoost
    predict, on SQLite and Redis side by side (needs a pipeline run: the online store and
    a champion model; Redis: a redis-server, started here)."""
    figures = bench_serving(load_params(params), requests, batch, tuple(store), params)
    _write_figures(figures, json_out)


@app.command()
def bare(
    device: str = typer.Option("cpu", help="cpu or cuda."),
    daily: bool = typer.Option(
        False, help="A daily run's work: the newest batch's features, retrain, predict."
    ),
    params: Path = PARAMS_OPTION,
    json_out: Path | None = JSON_OPTION,
) -> None:
    """The floor the pipeline is measured against: read the raw batches, build the matrix,
    xgboost.train with the train.* parameters, predict the test days; in one process."""
    from .bench_daily import bare_daily
    from .bench_pipeline import bare_training

    if device not in ("cpu", "cuda"):
        raise typer.BadParameter(f"unknown device {device!r}; choose cpu or cuda")
    if daily:
        figures = bare_daily(load_params(params), device)
        print_figures("bare work of a daily run", figures)
    else:
        figures = bare_training(load_params(params), device)
        print_figures(f"bare training on {figures['rows']:,} raw rows", figures)
    _write_figures(figures, json_out)


@app.command()
def pipeline(
    sizes: str = typer.Option(
        "100000,1000000,5000000", help="Comma-separated raw row counts to run the pipeline at."
    ),
    component_rows: int = typer.Option(
        1_000_000, help="Rows for the gate, Feast and monitoring measurements."
    ),
    out: Path = typer.Option(Path("reports/bench/bench.json"), help="JSON file to write."),
    keep: bool = typer.Option(False, help="Keep the scratch projects (their path is printed)."),
    serve_requests: int = typer.Option(1000, help="Single-entity POST /predict requests to time."),
    params: Path = PARAMS_OPTION,
) -> None:
    """`make bench`: the whole pipeline at several sizes against the bare work, the fixed
    and marginal cost fit, and the gate, Feast, Evidently and serving figures."""
    from .bench_pipeline import run_benchmark

    try:
        rows = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"--sizes must be comma-separated integers, got {sizes!r}"
        ) from None
    run_benchmark(Path.cwd(), load_params(params), rows, component_rows, out, keep, serve_requests)


@app.command()
def feast(
    rows: int = typer.Option(1_000_000, help="Feature rows (and as many label rows)."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Feast historical retrieval and materialization time, against pandas merge_asof."""
    bench_feature_store(load_params(params), rows, params.parent / "features")


@app.command()
def pit(
    rows: int = typer.Option(1_000_000, help="Label rows (and as many feature rows)."),
    rounds: int = typer.Option(3, help="Rounds of the layer and the bare join, alternating."),
    stock: bool = typer.Option(True, help="Also time Feast's own DuckDB offline store."),
    memory: bool = typer.Option(True, help="Peak memory of each path, in a process of its own."),
    out: Path = typer.Option(
        Path("reports/bench/bench.json"), help="JSON report to register `layer_ratios.pit` in."
    ),
    params: Path = PARAMS_OPTION,
) -> None:
    """The training set's point-in-time join through Feast and the project's offline
    store, against pandas.merge_asof on the same frames, side by side; peak memory of each."""
    from .bench_pit import bench_pit, register

    register(out, bench_pit(load_params(params), rows, rounds, stock, memory))


@app.command()
def online(
    entities: str = typer.Option(
        "100000", help="Comma-separated entity counts, e.g. 100000,1000000."
    ),
    stock: bool = typer.Option(True, help="Also time Feast's own provider and SQLite store."),
    redis: bool = typer.Option(
        False, help="Also Feast's Redis store (a redis-server started here)."
    ),
    out: Path = typer.Option(
        Path("reports/bench/bench.json"),
        help="JSON report to register `layer_ratios.online_load` in.",
    ),
    params: Path = PARAMS_OPTION,
) -> None:
    """The materialize stage's load into the online store, through Feast with the project's
    store and Feast's own, against raw upserts of the same rows, side by side."""
    from .bench_online import bench_online, register

    try:
        sizes = [int(s.replace("_", "")) for s in entities.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"--entities must be comma-separated integers, got {entities!r}"
        ) from None
    register(out, bench_online(load_params(params), sizes, stock, redis))


if __name__ == "__main__":
    app()
