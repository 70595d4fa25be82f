"""Command line: one command per pipeline stage, plus tools.

`dvc.yaml`, the Airflow DAGs, the tests and the README all call these commands.
Heavy libraries are imported inside the commands that use them, so start-up
stays quick and each stage pays only for what it needs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer

from .config import Params, load_params
from .errors import PipelineError
from .logs import STAGE_METRICS_ENV, console, record_stage_metrics, setup_logging

app = typer.Typer(
    help="{{ cookiecutter.project_name }}: pipeline stages and tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
log = logging.getLogger("{{ cookiecutter.package_name }}")
F = TypeVar("F", bound=Callable[..., Any])

PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="Path to params.yaml.")


def stage(func: F) -> F:
    """Turn known failures into a one-paragraph message and exit code 1 (no traceback).

    With STAGE_METRICS_FILE set (the benchmark sets it), each command also appends
    its start-up time, work time and peak memory to that file as one JSON line.
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging()
        started = time.time()  # wall clock: compared with the process start time
        ok = False
        try:
            result = func(*args, **kwargs)
            ok = True
            return result
        except (PipelineError, ValueError) as exc:
            console.print(f"[bold red]{func.__name__} failed:[/] {exc}", highlight=False)
            sys.exit(1)
        finally:
            if os.environ.get(STAGE_METRICS_ENV):
                record_stage_metrics(Path(os.environ[STAGE_METRICS_ENV]), started, ok)

    return wrapper  # type: ignore[return-value]


def _params(path: Path) -> Params:
    return load_params(path)


@app.command()
@stage
def ingest(params: Path = PARAMS_OPTION) -> None:
    """Land the rolling window of daily batches in data/raw."""
    from .ingest import ingest as run_ingest

    p = _params(params)
    run_ingest(p.data, p.paths.raw)


@app.command()
@stage
def featurize(params: Path = PARAMS_OPTION) -> None:
    """Build model features and label events from the raw batches."""
    import pandas as pd

    from .features import FEATURE_COLUMNS, build_features, build_labels
    from .files import ParquetStream
    from .ingest import raw_batch_files

    p = _params(params)
    # One daily batch at a time: memory stays at one day's rows, whatever the window.
    with (
        ParquetStream(p.paths.features / "customer_features.parquet") as features,
        ParquetStream(p.paths.features / "labels.parquet") as labels,
    ):
        for path in raw_batch_files(p.paths.raw):
            raw = pd.read_parquet(path)
            features.write(build_features(raw))
            labels.write(build_labels(raw, p.evaluate.slice_column))
    log.info(
        "wrote %d feature rows x %d features to %s",
        features.rows,
        len(FEATURE_COLUMNS),
        p.paths.features,
    )


@app.command("training-set")
@stage
def training_set(params: Path = PARAMS_OPTION) -> None:
    """Build the training set with Feast: labels joined point-in-time with features."""
    from .feature_store import historical_features, open_store
    from .files import read_parquet, write_parquet

    p = _params(params)
    labels = read_parquet(p.paths.features / "labels.parquet", "featurize")
    frame = historical_features(open_store(), labels)
    write_parquet(frame, p.paths.training_set)
    log.info(
        "training set: %d rows (of %d labels) -> %s", len(frame), len(labels), p.paths.training_set
    )


@app.command()
@stage
def materialize(params: Path = PARAMS_OPTION) -> None:
    """Push feature values newer than the last run into the Feast online store."""
    from .feature_store import materialize as run_materialize
    from .feature_store import open_store
    from .files import read_parquet, write_json

    p = _params(params)
    features = read_parquet(p.paths.features / "customer_features.parquet", "featurize")
    summary = run_materialize(open_store(), features)
    write_json(summary, p.paths.reports / "materialize.json")
    log.info(
        "online store (%s) holds features until %s",
        summary["online_store"],
        summary["materialized_until"],
    )


@app.command()
@stage
def train(params: Path = PARAMS_OPTION) -> None:
    """Train the XGBoost model, save it (UBJSON) and track the run in MLflow."""
    from . import tracking
    from .features import FEATURE_COLUMNS, LABEL, TIMESTAMP
    from .files import read_parquet, write_json
    from .split import time_split
    from .train import save_model, train_model

    p = _params(params)
    frame = read_parquet(
        p.paths.training_set,
        "training_set",
        columns=[TIMESTAMP, LABEL, *FEATURE_COLUMNS],
        float32=FEATURE_COLUMNS,
    )
    splits = time_split(frame, p.split)
    del frame  # the splits hold the rows now: peak memory stays near the training matrix
    booster, meta = train_model(splits, p.train, p.dask)
    save_model(booster, meta, p.paths.model_dir)
    tracking.setup_mlflow(p.mlflow)
    run_params = {
        **tracking.flatten("train", p.train.model_dump(mode="json")),
        **(
            tracking.flatten("dask", p.dask.model_dump(mode="json"))
            if p.train.engine == "dask"
            else {}
        ),
        **tracking.flatten("split", p.split.model_dump(mode="json")),
        **tracking.flatten("data", p.data.model_dump(mode="json")),
    }
    run_id = tracking.log_training(
        booster,
        meta,
        run_params,
        sample=splits.train[FEATURE_COLUMNS].head(5).astype("float32"),
        tags=tracking.lineage_tags(),
    )
    write_json({"run_id": run_id}, p.paths.model_dir / tracking.RUN_FILE)
    log.info("model saved to %s; MLflow run %s", p.paths.model_dir, run_id)


@app.command()
@stage
def evaluate(params: Path = PARAMS_OPTION) -> None:
    """Score the held-out test days: metrics, plots, per-slice metrics, predictions."""
    from . import tracking
    from .evaluate import evaluate as run_evaluate
    from .evaluate import write_reports
    from .files import read_json, read_parquet, write_parquet
    from .split import time_split
    from .train import load_model, predict_proba

    p = _params(params)
    booster, meta = load_model(p.paths.model_dir)
    frame = read_parquet(p.paths.training_set, "training_set")
    splits = time_split(frame, p.split)
    scores = predict_proba(booster, splits.test)
    result = run_evaluate(
        splits.test,
        scores,
        threshold=meta.threshold,
        train_positive_rate=meta.split_summary["train"]["positive_rate"],
        importance=booster.get_score(importance_type="gain"),
        slice_column=p.evaluate.slice_column,
        plot_points=p.evaluate.plot_points,
    )
    paths = write_reports(result, p.paths.reports)
    predictions = splits.test.drop(columns=meta.feature_names).assign(
        score=scores, predicted=(scores >= meta.threshold).astype("int64")
    )
    write_parquet(predictions, p.paths.predictions)
    tracking.setup_mlflow(p.mlflow)
    run_id = read_json(p.paths.model_dir / tracking.RUN_FILE, "train")["run_id"]
    tracking.log_evaluation(run_id, result.metrics, list(paths.values()), tracking.lineage_tags())
    console.print(
        f"test ROC AUC {result.metrics['roc_auc']:.4f}  PR AUC {result.metrics['pr_auc']:.4f}  "
        f"F1 {result.metrics['f1']:.4f} (baseline PR AUC {result.metrics['baseline']['pr_auc']:.4f})"
    )


@app.command()
@stage
def monitor(params: Path = PARAMS_OPTION) -> None:
    """Evidently drift and quality checks of the newest data against the training reference.

    Exits 0 whether or not drift is found: the verdict (`retrain` and its reasons) is in
    reports/monitoring/summary.json. Exits 1 only when an input is missing or unusable.
    """
    from . import tracking
    from .files import read_json, read_parquet
    from .ingest import read_raw
    from .monitoring import (
        build_monitor_data,
        describe,
        log_to_mlflow,
        read_prediction_log,
        run_checks,
        write_outputs,
    )
    from .split import time_split
    from .train import load_model

    p = _params(params)
    booster, meta = load_model(p.paths.model_dir)
    training = read_parquet(p.paths.training_set, "training_set")
    test_predictions = (
        read_parquet(p.paths.predictions, "evaluate") if p.paths.predictions.is_file() else None
    )
    data = build_monitor_data(
        raw=read_raw(p.paths.raw),
        reference=time_split(training, p.split).train,
        booster=booster,
        threshold=meta.threshold,
        cfg=p.monitoring,
        prediction_log=read_prediction_log(p.paths.prediction_log),
        test_predictions=test_predictions,
    )
    result = run_checks(data, p.monitoring)
    run_dir = write_outputs(result, p.paths.monitoring, p.monitoring.keep_runs)
    tracking.setup_mlflow(p.mlflow)
    run_file = p.paths.model_dir / tracking.RUN_FILE
    model_run = read_json(run_file, "train")["run_id"] if run_file.is_file() else None
    mlflow_run = log_to_mlflow(result, run_dir, model_run, tracking.lineage_tags())
    console.print(describe(result), highlight=False)
    console.print(
        f"reports: {p.paths.monitoring / 'index.html'} (this run: {run_dir}); "
        f"verdict: {p.paths.monitoring / 'summary.json'}; MLflow run {mlflow_run}",
        highlight=False,
    )


@app.command()
@stage
def promote(params: Path = PARAMS_OPTION) -> None:
    """Register the model as `candidate`; make it `champion` only if it passes the promotion gate."""
    from .promotion import promote as run_promotion

    report = run_promotion(_params(params))
    candidate = report["candidate"]
    metric = report["primary_metric"]
    console.print(
        f"[bold]{report['decision']}[/]: version {candidate['version']} "
        f"({metric} {candidate['metrics'][metric]:.4f} on the holdout "
        f"{report['holdout']['start']}..{report['holdout']['end']}); "
        f"champion is version {report['champion_after']}",
        highlight=False,
    )
    for reason in report["reasons"]:
        console.print(f"  - {reason}", highlight=False)


@app.command()
@stage
def serve(
    params: Path = PARAMS_OPTION,
    host: str | None = typer.Option(None, help="Bind address (default: serving.host, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default: serving.port)."),
) -> None:
    """HTTP prediction service: Feast online features + the MLflow champion model."""
    import uvicorn

    from . import tracking
    from .feature_store import open_store
    from .registry import ChampionModel, NoChampionError
    from .serving import create_app

    p = _params(params)
    tracking.setup_mlflow(p.mlflow)
    champion = ChampionModel(p.mlflow.registered_model, p.serving.refresh_seconds)
    try:  # load before accepting requests, so the first ones are not slow
        champion.get()
    except NoChampionError as exc:
        log.warning("%s; /predict answers 503 until one exists", exc)
    app_ = create_app(open_store(), champion, p.paths.prediction_log)
    uvicorn.run(app_, host=host or p.serving.host, port=port or p.serving.port, log_level="info")


@app.command()
@stage
def score(
    entities: Path = typer.Option(
        ..., help="Parquet/CSV with customer_id (and optionally event_timestamp)."
    ),
    out: Path = typer.Option(
        Path("data/predictions/batch_scores.parquet"), help="Where to write scores."
    ),
    at: str | None = typer.Option(
        None,
        help="Score as of this time (ISO); default: when the online store was last materialized.",
    ),
    params: Path = PARAMS_OPTION,
) -> None:
    """Batch scoring: Feast historical features + the champion model, then the predictions gate."""
    import pandas as pd

    from . import tracking
    from .feature_store import freshness, historical_features, open_store
    from .files import write_parquet
    from .gates import enforce
    from .gates import validate as run_gate
    from .registry import ChampionModel
    from .train import predict_proba

    p = _params(params)
    if not entities.is_file():
        raise ValueError(f"entities file {entities} not found")
    frame = pd.read_csv(entities) if entities.suffix == ".csv" else pd.read_parquet(entities)
    if "customer_id" not in frame.columns:
        raise ValueError(f"{entities} has no customer_id column (columns: {list(frame.columns)})")
    store = open_store()
    if "event_timestamp" not in frame.columns:
        frame["event_timestamp"] = pd.Timestamp(
            at or freshness(store) or pd.Timestamp.now(tz="UTC")
        )
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    tracking.setup_mlflow(p.mlflow)
    model = ChampionModel(p.mlflow.registered_model).get()
    features = historical_features(store, frame[["customer_id", "event_timestamp"]])
    scores = predict_proba(model.booster, features)
    result = features[["customer_id", "event_timestamp"]].assign(
        score=scores,
        predicted=(scores >= model.threshold).astype("int64"),
        model_version=model.version,
    )
    write_parquet(result, out)
    missing = len(frame) - len(result)
    log.info(
        "scored %d customers with %s v%s -> %s (%d without features)",
        len(result),
        model.name,
        model.version,
        out,
        missing,
    )
    enforce(
        run_gate(
            result,
            p.paths.expectations / "predictions.json",
            "predictions",
            p.paths.gate_reports / "batch_scores",
        )
    )


@app.command()
@stage
def rollback(
    to: int | None = typer.Option(
        None, "--to", help="Version to make champion (default: the one the champion replaced)."
    ),
    params: Path = PARAMS_OPTION,
) -> None:
    """Move the `champion` alias back to a previous model version (one command, no retraining)."""
    from .promotion import rollback as run_rollback

    p = _params(params)
    before, after = run_rollback(p, to)
    console.print(
        f"champion of {p.mlflow.registered_model!r}: version {before} -> {after}", highlight=False
    )


GATES = ("raw", "features", "predictions")


def _gate_frame(p: Params, gate: str) -> Any:
    from .files import read_parquet
    from .ingest import read_raw

    if gate == "raw":
        return read_raw(p.paths.raw)
    if gate == "features":
        return read_parquet(p.paths.features / "customer_features.parquet", "featurize")
    return read_parquet(p.paths.predictions, "evaluate")


@app.command()
@stage
def validate(
    gate: str = typer.Argument(..., help=f"Which gate: {', '.join(GATES)}."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Great Expectations gate: fail (exit 1) when a critical expectation fails."""
    from .gates import enforce, raw_gate_parameters
    from .gates import validate as run_gate

    if gate not in GATES:
        raise typer.BadParameter(f"unknown gate {gate!r}; choose one of {', '.join(GATES)}")
    p = _params(params)
    parameters = raw_gate_parameters(p.data, p.gates.raw) if gate == "raw" else {}
    report = run_gate(
        _gate_frame(p, gate),
        p.paths.expectations / f"{gate}.json",
        gate,
        p.paths.gate_reports / gate,
        parameters,
    )
    enforce(report)


expectations_app = typer.Typer(help="Manage Great Expectations suites.", no_args_is_help=True)
app.add_typer(expectations_app, name="expectations")


@expectations_app.command("init")
@stage
def expectations_init(
    sample: Path = typer.Option(..., "--from", help="A parquet or CSV sample of your data."),
    name: str = typer.Option(
        ..., "--name", help="Suite name; written to expectations/<name>.json."
    ),
    key: list[str] = typer.Option([], "--key", help="Key column(s) that must be unique together."),
    out: Path | None = typer.Option(
        None, "--out", help="Where to write (default expectations/<name>.json)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing suite."),
) -> None:
    """Profile a sample and write a starting suite to tighten by hand."""
    import pandas as pd

    from .files import write_json
    from .suite_bootstrap import profile_suite

    if not sample.is_file():
        raise ValueError(f"sample {sample} not found: give a parquet or CSV file of your data")
    frame = pd.read_csv(sample) if sample.suffix == ".csv" else pd.read_parquet(sample)
    target = out or Path("expectations") / f"{name}.json"
    if target.exists() and not force:
        raise ValueError(
            f"{target} exists; pass --force to overwrite it or --out to write elsewhere"
        )
    suite = profile_suite(frame, name, key)
    write_json(suite, target)
    console.print(
        f"wrote {len(suite['expectations'])} expectations to {target}: review and tighten them; "
        "a gate uses expectations/<gate>.json"
    )


bench_app = typer.Typer(
    help="Benchmarks that print figures (never pass/fail).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


@bench_app.command("gate")
@stage
def bench_gate(
    rows: int = typer.Option(1_000_000, help="Rows of raw data to validate."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Rows per second of the raw gate, against the same checks in bare pandas."""
    from .bench import bench_raw_gate

    bench_raw_gate(_params(params), rows)


@bench_app.command("monitor")
@stage
def bench_monitor(
    rows: int = typer.Option(100_000, help="Rows of current data (the reference is fixed)."),
    scenario: list[str] = typer.Option(
        ["none", "covariate", "concept"], help="Drift scenario(s): none, covariate, concept."
    ),
    params: Path = PARAMS_OPTION,
) -> None:
    """Monitoring time for N current rows, in full and sampled (monitoring.sample_rows),
    and whether both reach the same verdicts."""
    from .bench import bench_monitoring

    bench_monitoring(_params(params), rows, scenario)


BENCH_JSON_OPTION = typer.Option(None, "--json", help="Also write the figures to this JSON file.")


def _write_figures(figures: Any, path: Path | None) -> None:
    if path:
        from .files import write_json

        write_json(figures, path)


@bench_app.command("serve")
@stage
def bench_serve(
    requests: int = typer.Option(1000, help="Single-entity requests to time."),
    batch: int = typer.Option(100, help="Entities per request in the batch test."),
    params: Path = PARAMS_OPTION,
    json_out: Path | None = BENCH_JSON_OPTION,
) -> None:
    """POST /predict latency p50/p99 over HTTP, against bare Feast + XGBoost calls."""
    from .bench import bench_serving

    _write_figures(bench_serving(_params(params), requests, batch), json_out)


@bench_app.command("bare")
@stage
def bench_bare(
    device: str = typer.Option("cpu", help="cpu or cuda."),
    params: Path = PARAMS_OPTION,
    json_out: Path | None = BENCH_JSON_OPTION,
) -> None:
    """The floor the pipeline is measured against: read the raw batches, build the matrix,
    xgboost.train with the train.* parameters, predict the test days; in one process."""
    from .bench import print_figures
    from .bench_pipeline import bare_training

    if device not in ("cpu", "cuda"):
        raise typer.BadParameter(f"unknown device {device!r}; choose cpu or cuda")
    figures = bare_training(_params(params), device)
    print_figures(f"bare training on {figures['rows']:,} raw rows", figures)
    _write_figures(figures, json_out)


@bench_app.command("pipeline")
@stage
def bench_pipeline(
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
    run_benchmark(Path.cwd(), _params(params), rows, component_rows, out, keep, serve_requests)


@bench_app.command("feast")
@stage
def bench_feast(
    rows: int = typer.Option(1_000_000, help="Feature rows (and as many label rows)."),
) -> None:
    """Feast historical retrieval and materialization time, against pandas merge_asof."""
    from .bench import bench_feature_store

    bench_feature_store(rows)


@app.command("ci-report")
@stage
def ci_report(
    base: str = typer.Option(..., "--base", help="Git revision to compare with (origin/main)."),
    out: Path = typer.Option(Path("reports/ci/report.md"), "--out", help="Markdown file to write."),
    html: Path | None = typer.Option(
        None, "--html", help="Also render both revisions' plots to this folder (index.html)."
    ),
) -> None:
    """Metrics, params and changed plots against BASE as markdown (the CI pull-request comment)."""
    from .ci_report import write_report

    path = write_report(base, out, html)
    plots = f"; plots: {html}/index.html" if html else ""
    console.print(f"report against {base}: {path}{plots}")


@app.command("publish-dags")
@stage
def publish_dags(
    to: str = typer.Option(..., "--to", help="Destination, s3://<bucket>/<prefix>."),
    source: Path = typer.Option(Path("dags"), "--source", help="Folder to publish."),
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", help="S3-compatible endpoint (MinIO); empty for AWS."
    ),
    delete: bool = typer.Option(True, help="Delete remote files that are gone locally."),
) -> None:
    """Mirror dags/ to the S3 prefix Airflow reads DAGs from (credentials from the environment)."""
    from .publish import s3_client, sync_folder

    result = sync_folder(source, to, s3_client(endpoint_url), delete=delete)
    console.print(
        f"{to}: {len(result.uploaded)} uploaded, {len(result.deleted)} deleted, "
        f"{len(result.unchanged)} unchanged"
    )


if __name__ == "__main__":
    app()
