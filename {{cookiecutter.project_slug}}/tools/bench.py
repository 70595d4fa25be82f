"""Benchmarks behind `make bench`: print figures and ratios against a bare baseline
measured in the same run; `python -m tools.bench --help` lists the commands.

Nothing here asserts a time: a slow machine gives slow figures, not failures. This is
the template's tooling: it reads the package's modules, the package never imports it.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from {{ cookiecutter.package_name }}.config import Params, Window, load_params
from {{ cookiecutter.package_name }}.datagen import generate_day
from {{ cookiecutter.package_name }}.logs import console, setup_logging


def synthetic_raw(
    rows: int, seed: int = 0, days: int = 10
) -> tuple[pd.DataFrame, dt.date, dt.date]:
    """`rows` raw rows spread over `days` daily batches."""
    end = dt.date(2026, 3, 31)
    per_day = max(rows // days, 1)
    frames = [
        generate_day(end - dt.timedelta(days=i), rows=per_day, n_customers=per_day * 2, seed=seed)
        for i in range(days)
    ]
    return pd.concat(frames, ignore_index=True), end - dt.timedelta(days=days - 1), end


def _bare_check(frame: pd.DataFrame, expectation: dict[str, Any], values: dict[str, Any]) -> bool:
    """The same check done directly in pandas: the floor GX is measured against."""
    kind, kw = expectation["type"], dict(expectation["kwargs"])
    kw = {k: values[v["$PARAMETER"]] if isinstance(v, dict) else v for k, v in kw.items()}
    column = frame[kw["column"]] if "column" in kw else None
    if kind == "expect_table_columns_to_match_set":
        return set(frame.columns) == set(kw["column_set"])
    if kind == "expect_table_row_count_to_be_between":
        return kw.get("min_value", 0) <= len(frame) <= kw.get("max_value", np.inf)
    if kind == "expect_column_values_to_be_of_type":
        return column.dtype.name == kw["type_"] or kw["type_"] == "Timestamp"
    if kind == "expect_column_values_to_not_be_null":
        return column.notna().mean() >= kw.get("mostly", 1.0)
    if kind == "expect_compound_columns_to_be_unique":
        return not frame.duplicated(kw["column_list"]).any()
    if kind == "expect_column_values_to_be_between":
        values_ = column.dropna()
        return bool(((values_ >= kw["min_value"]) & (values_ <= kw["max_value"])).all())
    if kind == "expect_column_max_to_be_between":
        return column.max() <= kw["max_value"]
    if kind == "expect_column_values_to_be_in_set":
        return bool(column.dropna().isin(kw["value_set"]).all())
    if kind == "expect_column_mean_to_be_between":
        return kw["min_value"] <= column.mean() <= kw["max_value"]
    raise ValueError(f"no bare baseline for {kind}")


def bench_raw_gate(params: Params, rows: int, report_dir: Path | None = None) -> dict[str, float]:
    """The raw gate on `rows` rows in daily batches: the first run (every batch), a daily
    run (the window moved by one new batch), and the same checks in bare pandas."""
    from {{ cookiecutter.package_name }}.batches import batch_path
    from {{ cookiecutter.package_name }}.files import write_parquet
    from {{ cookiecutter.package_name }}.gates import load_suite_json
    from {{ cookiecutter.package_name }}.raw_gate import batch_parameters, plausible_label_share, validate_window

    days = 10
    # `rows` over the window, plus one more day of the same size that arrives "tomorrow"
    frame, _, end = synthetic_raw(rows + rows // days, days=days + 1)
    cfg = params.validate_raw
    suite = load_suite_json(params.paths.expectations / "raw.json")
    by_day = {
        day: part.reset_index(drop=True)
        for day, part in frame.groupby(frame["event_timestamp"].dt.date)
    }
    window = Window(end_date=end - dt.timedelta(days=1), days=days)
    rate = float(pd.concat([by_day[d] for d in window.dates()])["churned"].mean())
    now = dt.datetime.now(dt.UTC)

    started = time.perf_counter()
    for day in window.dates():
        share = plausible_label_share(len(by_day[day]), rate, cfg.label_share_alpha)
        values = batch_parameters(day, cfg, share, now)
        for expectation in suite["expectations"]:
            _bare_check(by_day[day], expectation, values)
    bare = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        root = report_dir or Path(tmp)
        paths = params.paths.model_copy(
            update={"raw": root / "raw", "gate_reports": root / "gates"}
        )
        for day, part in by_day.items():
            write_parquet(part, batch_path(paths.raw, day))
        started = time.perf_counter()
        first = validate_window(paths, window, cfg)
        first_seconds = time.perf_counter() - started
        started = time.perf_counter()
        daily = validate_window(paths, Window(end_date=end, days=days), cfg)
        daily_seconds = time.perf_counter() - started
    window_rows = sum(len(by_day[d]) for d in window.dates())
    figures = {
        "rows": float(window_rows),
        "batches": float(days),
        "expectations": float(len(suite["expectations"])),
        "gx_seconds": first_seconds,
        "gx_rows_per_second": window_rows / first_seconds,
        "bare_pandas_seconds": bare,
        "gx_over_bare": first_seconds / bare,
        "daily_run_seconds": daily_seconds,
        "daily_run_rows": float(daily.rows),
        "daily_over_first": daily_seconds / first_seconds,
        "passed": float(first.passed and daily.passed),
    }
    print_figures(
        f"raw gate on {window_rows:,} rows in {days} daily batches, then one new batch", figures
    )
    return figures


DRIFT_SCENARIOS = {
    "none": {},
    "covariate": {"covariate_drift": 0.6},
    "concept": {"concept_drift": 1.0},
}


def _days(start: dt.date, days: int, rows: int, n_customers: int, seed: int, **drift: Any) -> Any:
    per_day = max(rows // days, 1)
    customers = max(n_customers, per_day)
    return pd.concat(
        [
            generate_day(
                start + dt.timedelta(days=i),
                rows=per_day,
                n_customers=customers,
                seed=seed,
                drift_start=start if drift else None,
                **drift,
            )
            for i in range(days)
        ],
        ignore_index=True,
    )


def bench_monitoring(params: Params, rows: int, scenarios: list[str]) -> list[dict[str, Any]]:
    """Time the monitoring checks on `rows` current rows, in full and sampled.

    A model is trained on a fixed synthetic reference (the data generator, no drift);
    each scenario draws `rows` current rows over the following week, with the given
    drift injected, and runs the checks twice: every row (sample_rows=0) and sampled
    (monitor.sample_rows). The verdicts must agree for sampling to be safe.
    """
    from {{ cookiecutter.package_name }}.features import LABEL, build_features
    from {{ cookiecutter.package_name }}.model import predict_proba
    from {{ cookiecutter.package_name }}.monitoring import build_monitor_data, run_checks
    from {{ cookiecutter.package_name }}.split import time_split
    from {{ cookiecutter.package_name }}.training import train_model

    unknown = sorted(set(scenarios) - set(DRIFT_SCENARIOS))
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; choose from {sorted(DRIFT_SCENARIOS)}")
    synthetic = params.ingest.synthetic
    end = params.interval.end_date
    ref_days = max(params.split.valid_days + params.split.test_days + 14, 30)
    ref_start = end - dt.timedelta(days=ref_days - 1)
    ref_raw = _days(ref_start, ref_days, ref_days * 1500, synthetic.n_customers, synthetic.seed)
    frame = build_features(ref_raw).assign(**{LABEL: ref_raw[LABEL].to_numpy()})
    splits = time_split(frame, params.split)
    cfg_train = params.train.model_copy(
        update={"num_boost_round": 150, "device": "cpu", "engine": "local"}
    )
    booster, meta = train_model(splits, cfg_train)
    test_scores = predict_proba(booster, splits.test)
    test_predictions = pd.DataFrame({LABEL: splits.test[LABEL], "score": test_scores})

    import evidently  # noqa: F401  # its cold import (seconds) is not part of the figures

    sampled_cfg = params.monitor
    full_cfg = sampled_cfg.model_copy(update={"sample_rows": 0})
    figures = []
    for name in scenarios:
        current_raw = _days(
            end + dt.timedelta(days=1),
            sampled_cfg.current_days,
            rows,
            synthetic.n_customers,
            synthetic.seed + 1,
            **DRIFT_SCENARIOS[name],
        )
        outcome: dict[str, Any] = {"scenario": name, "current_rows": len(current_raw)}
        verdicts = {}
        for label, cfg in (("full", full_cfg), ("sampled", sampled_cfg)):
            started = time.perf_counter()
            inputs = build_monitor_data(
                raw=current_raw,
                reference=splits.train,
                booster=booster,
                threshold=meta.threshold,
                cfg=cfg,
                test_predictions=test_predictions,
            )
            prepared = time.perf_counter() - started
            result = run_checks(inputs, cfg)
            summary = result.summary
            outcome[f"{label}_prepare_seconds"] = prepared
            outcome[f"{label}_report_seconds"] = summary["seconds"]
            outcome[f"{label}_drift_share"] = summary["feature_drift"].get("share")
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

    table = Table(
        title=f"monitoring on {rows:,} current rows; reference {len(splits.train):,} rows; "
        f"sampled to {sampled_cfg.sample_rows:,} rows"
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
    return figures


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def print_figures(title: str, figures: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:,.3f}" if isinstance(value, float) else str(value))
    console.print(table)


def bench_serving(params: Params, requests: int, batch: int) -> dict[str, float]:
    """POST /predict over HTTP (uvicorn on 127.0.0.1) against the bare calls it wraps."""
    import socket
    import threading

    import httpx
    import uvicorn

    from {{ cookiecutter.package_name }} import tracking
    from {{ cookiecutter.package_name }}.champion import ChampionModel
    from {{ cookiecutter.package_name }}.feature_store import online_features, open_store
    from {{ cookiecutter.package_name }}.model import predict_proba
    from {{ cookiecutter.package_name }}.serving import create_app

    tracking.setup_mlflow(params.mlflow)
    store = open_store()
    champion = ChampionModel(params.mlflow.registered_model, refresh_seconds=3600)
    model = champion.get()
    features = pd.read_parquet(params.paths.feature_table, columns=["customer_id"])
    ids = features["customer_id"].drop_duplicates().to_numpy()
    rng = np.random.default_rng(0)
    picks = rng.choice(ids, size=requests).tolist()

    bare = []
    for customer in picks:
        started = time.perf_counter()
        known, _ = online_features(store, [customer])
        predict_proba(model.booster, known)
        bare.append(time.perf_counter() - started)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_path = Path(tempfile.mkdtemp(prefix="bench-")) / "bench_predictions.jsonl"
    app = create_app(store, champion, log_path)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(100):  # wait for start-up, bounded
                try:
                    client.get("/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            http = []
            for customer in picks:
                started = time.perf_counter()
                client.post("/predict", json={"customer_ids": [customer]}).raise_for_status()
                http.append(time.perf_counter() - started)
            batches = max(requests // batch, 10)
            started = time.perf_counter()
            for _ in range(batches):
                chunk = rng.choice(ids, size=batch).tolist()
                client.post("/predict", json={"customer_ids": chunk}).raise_for_status()
            batch_seconds = time.perf_counter() - started
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    figures = {
        "requests": float(requests),
        **{f"http_{k}": v for k, v in _percentiles(http).items()},
        **{f"bare_{k}": v for k, v in _percentiles(bare).items()},
        "p50_ratio_http_over_bare": _percentiles(http)["p50_ms"] / _percentiles(bare)["p50_ms"],
        "p99_ratio_http_over_bare": _percentiles(http)["p99_ms"] / _percentiles(bare)["p99_ms"],
        f"batch_{batch}_entities_per_second": batches * batch / batch_seconds,
    }
    print_figures(f"POST /predict ({store.config.online_store.type} online store)", figures)
    return figures


def bench_feature_store(params: Params, rows: int) -> dict[str, float]:
    """Feast historical retrieval and materialization on `rows` rows, in a scratch repo."""
    import shutil

    from {{ cookiecutter.package_name }}.feature_store import historical_features, materialize, open_store
    from {{ cookiecutter.package_name }}.features import build_features, build_labels

    from .point_in_time import point_in_time_join

    raw, _, _ = synthetic_raw(rows)
    features, labels = build_features(raw), build_labels(raw)
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        repo = scratch / "features"
        shutil.copytree(
            Path("features"), repo, ignore=shutil.ignore_patterns("state", "__pycache__")
        )
        (scratch / "params.yaml").write_text("paths:\n  features: data\n")
        (scratch / "data").mkdir()
        # features/definitions.py reads <paths.features>/features.parquet
        features.to_parquet(
            scratch / "data" / params.paths.feature_table.name, index=False, coerce_timestamps="us"
        )
        store = open_store(repo)
        started = time.perf_counter()
        frame = historical_features(store, labels)
        feast_seconds = time.perf_counter() - started
        started = time.perf_counter()
        point_in_time_join(labels, features)
        pandas_seconds = time.perf_counter() - started
        started = time.perf_counter()
        materialize(store, features, params.materialize.chunk_rows)
        materialize_seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    figures = {
        "rows": float(rows),
        "historical_rows_returned": float(len(frame)),
        "feast_historical_seconds": feast_seconds,
        "pandas_merge_asof_seconds": pandas_seconds,
        "feast_over_pandas": feast_seconds / pandas_seconds,
        "materialize_seconds": materialize_seconds,
    }
    print_figures(f"Feast on {rows:,} rows (DuckDB offline store)", figures)
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


@app.command()
def gate(
    rows: int = typer.Option(1_000_000, help="Rows of raw data to validate."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Rows per second of the raw gate, against the same checks in bare pandas."""
    bench_raw_gate(load_params(params), rows)


@app.command()
def monitor(
    rows: int = typer.Option(100_000, help="Rows of current data (the reference is fixed)."),
    scenario: list[str] = typer.Option(
        list(DRIFT_SCENARIOS), help="Drift scenario(s): none, covariate, concept."
    ),
    params: Path = PARAMS_OPTION,
) -> None:
    """Monitoring time for N current rows, in full and sampled, and whether both reach
    the same verdicts."""
    bench_monitoring(load_params(params), rows, scenario)


@app.command()
def serve(
    requests: int = typer.Option(1000, help="Single-entity requests to time."),
    batch: int = typer.Option(100, help="Entities per request in the batch test."),
    params: Path = PARAMS_OPTION,
    json_out: Path | None = JSON_OPTION,
) -> None:
    """POST /predict latency p50/p99 over HTTP, against bare Feast + XGBoost calls
    (needs a pipeline run: the online store and a champion model)."""
    _write_figures(bench_serving(load_params(params), requests, batch), json_out)


@app.command()
def bare(
    device: str = typer.Option("cpu", help="cpu or cuda."),
    params: Path = PARAMS_OPTION,
    json_out: Path | None = JSON_OPTION,
) -> None:
    """The floor the pipeline is measured against: read the raw batches, build the matrix,
    xgboost.train with the train.* parameters, predict the test days; in one process."""
    from .bench_pipeline import bare_training

    if device not in ("cpu", "cuda"):
        raise typer.BadParameter(f"unknown device {device!r}; choose cpu or cuda")
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
    bench_feature_store(load_params(params), rows)


if __name__ == "__main__":
    app()
