"""Command line: one command per pipeline stage, plus tools.

`dvc.yaml`, the Airflow DAGs, the tests and the README all call these commands.
Heavy libraries are imported inside the commands that use them, so start-up
stays quick and each stage pays only for what it needs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer

from .config import Params, load_params
from .errors import PipelineError
from .logs import console, setup_logging

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
    """Turn known failures into a one-paragraph message and exit code 1 (no traceback)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging()
        try:
            return func(*args, **kwargs)
        except (PipelineError, ValueError) as exc:
            console.print(f"[bold red]{func.__name__} failed:[/] {exc}", highlight=False)
            sys.exit(1)

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
    from .features import build_features, build_labels
    from .files import write_parquet
    from .ingest import read_raw

    p = _params(params)
    raw = read_raw(p.paths.raw)
    features = build_features(raw)
    write_parquet(features, p.paths.features / "customer_features.parquet")
    write_parquet(build_labels(raw, p.evaluate.slice_column), p.paths.features / "labels.parquet")
    log.info(
        "wrote %d feature rows x %d features to %s",
        len(features),
        features.shape[1] - 2,
        p.paths.features,
    )


@app.command("training-set")
@stage
def training_set(params: Path = PARAMS_OPTION) -> None:
    """Join labels with point-in-time-correct features."""
    from .files import read_parquet, write_parquet
    from .training_set import point_in_time_join

    p = _params(params)
    labels = read_parquet(p.paths.features / "labels.parquet", "featurize")
    features = read_parquet(p.paths.features / "customer_features.parquet", "featurize")
    frame = point_in_time_join(labels, features)
    write_parquet(frame, p.paths.training_set)
    log.info("training set: %d rows -> %s", len(frame), p.paths.training_set)


@app.command()
@stage
def train(params: Path = PARAMS_OPTION) -> None:
    """Train the XGBoost model, save it (UBJSON) and track the run in MLflow."""
    from . import tracking
    from .features import FEATURE_COLUMNS
    from .files import read_parquet, write_json
    from .split import time_split
    from .train import save_model, train_model

    p = _params(params)
    frame = read_parquet(p.paths.training_set, "training_set")
    splits = time_split(frame, p.split)
    booster, meta = train_model(splits, p.train)
    save_model(booster, meta, p.paths.model_dir)
    tracking.setup_mlflow(p.mlflow)
    run_params = {
        **tracking.flatten("train", p.train.model_dump(mode="json")),
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


if __name__ == "__main__":
    app()
