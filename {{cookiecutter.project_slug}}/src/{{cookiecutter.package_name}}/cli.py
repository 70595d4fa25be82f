"""Command line: one command per pipeline stage, plus serving and tools.

`dvc.yaml`, the Airflow DAGs, the tests and the README all call these commands.
Each command only parses its arguments, loads params.yaml and calls one
function; heavy libraries are imported inside that function's module, so
start-up stays quick and each stage pays only for what it needs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer

from .config import load_params
from .errors import PipelineError
from .logs import console, setup_logging

app = typer.Typer(
    help="{{ cookiecutter.project_name }}: pipeline stages and tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
F = TypeVar("F", bound=Callable[..., Any])

PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="Path to params.yaml.")
GATES = ("raw", "features", "predictions")


def command(func: F) -> F:
    """Errors the project raises on purpose (PipelineError: a missing input, a bad key, a
    failed gate) become one paragraph and exit code 1; anything else is a bug and keeps
    its full traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging()
        try:
            return func(*args, **kwargs)
        except PipelineError as exc:
            console.print(f"[bold red]{func.__name__} failed:[/] {exc}", highlight=False)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@app.command()
@command
def ingest(
    params: Path = PARAMS_OPTION,
    refetch: bool = typer.Option(
        False, "--refetch", help="Fetch every day of the window again, not only new days."
    ),
) -> None:
    """Land the rolling window of daily batches in data/raw (the days not landed yet)."""
    from .stages import ingest as stage

    p = load_params(params)
    stage.run(p.window, p.ingest, p.dataset, p.paths.raw, refetch=refetch)


@app.command()
@command
def validate(
    gate: str = typer.Argument(..., help=f"Which gate: {', '.join(GATES)}."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Great Expectations gate: fail (exit 1) when a critical expectation fails."""
    if gate not in GATES:
        raise typer.BadParameter(f"unknown gate {gate!r}; choose one of {', '.join(GATES)}")
    p = load_params(params)
    if gate == "raw":
        from .stages import validate_raw

        validate_raw.run(p.paths, p.window, p.validate_raw, p.dataset)
    elif gate == "features":
        from .stages import validate_features

        validate_features.run(p.paths, p.window)
    else:
        from .stages import validate_predictions

        validate_predictions.run(p.paths)


@app.command()
@command
def featurize(params: Path = PARAMS_OPTION) -> None:
    """Build model features and label events from the raw batches."""
    from .stages import featurize as stage

    p = load_params(params)
    stage.run(p.paths, p.dataset)


@app.command("training-set")
@command
def training_set(params: Path = PARAMS_OPTION) -> None:
    """Build the training set with Feast: labels joined point-in-time with features."""
    from .stages import training_set as stage

    p = load_params(params)
    stage.run(p.paths, p.window, p.split, p.dataset)


@app.command()
@command
def materialize(params: Path = PARAMS_OPTION) -> None:
    """Push feature values newer than the last run into the Feast online store."""
    from .stages import materialize as stage

    p = load_params(params)
    stage.run(p.paths, p.materialize, p.dataset)


@app.command()
@command
def tune(params: Path = PARAMS_OPTION) -> None:
    """Search train's XGBoost parameters with Optuna (when tune.enabled) for `train`."""
    from .stages import tune as stage

    p = load_params(params)
    stage.run(p.paths, p.split, p.tune, p.train, p.mlflow, p.dataset)


@app.command()
@command
def train(params: Path = PARAMS_OPTION) -> None:
    """Train the XGBoost model, save it (UBJSON) and track the run in MLflow."""
    from .stages import train as stage

    p = load_params(params)
    stage.run(p.paths, p.split, p.train, p.mlflow, p.dataset)


@app.command()
@command
def evaluate(params: Path = PARAMS_OPTION) -> None:
    """Score the held-out test days: metrics, plots, per-slice metrics, predictions."""
    from .stages import evaluate as stage

    p = load_params(params)
    stage.run(p.paths, p.split, p.evaluate, p.mlflow, p.dataset)


@app.command()
@command
def monitor(params: Path = PARAMS_OPTION) -> None:
    """Evidently drift and quality checks of the newest data against the training reference.

    Exits 0 whether or not drift is found: the verdict (`retrain` and its reasons) is in
    reports/monitoring/summary.json. Exits 1 only when an input is missing or unusable.
    """
    from .stages import monitor as stage

    stage.run(load_params(params))


@app.command()
@command
def promote(params: Path = PARAMS_OPTION) -> None:
    """Register the model as `candidate`; make it `champion` only if it passes the promotion gate."""
    from .stages import promote as stage

    stage.run(load_params(params))


@app.command()
@command
def rollback(
    to: int | None = typer.Option(
        None, "--to", help="Version to make champion (default: the one the champion replaced)."
    ),
    params: Path = PARAMS_OPTION,
) -> None:
    """Move the `champion` alias back to a previous model version (one command, no retraining)."""
    from .rollout import rollback as run_rollback

    p = load_params(params)
    before, after = run_rollback(p, to)
    console.print(
        f"champion of {p.mlflow.registered_model!r}: version {before} -> {after}", highlight=False
    )


@app.command()
@command
def serve(
    params: Path = PARAMS_OPTION,
    host: str | None = typer.Option(None, help="Bind address (default: serving.host, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default: serving.port)."),
) -> None:
    """HTTP prediction service: Feast online features + the MLflow champion model."""
    from .serving import serve as run_service

    run_service(load_params(params), host, port)


@app.command()
@command
def score(
    entities: Path = typer.Option(
        ...,
        help="Parquet/CSV with the entity key column (dataset.entity.key) and optionally "
        "the timestamp column (dataset.timestamp).",
    ),
    out: Path = typer.Option(
        Path("data/predictions/batch_scores.parquet"), help="Where to write scores."
    ),
    at: str | None = typer.Option(
        None,
        help="Score as of this time (ISO); default: when the online store was last materialized.",
    ),
    explain: int = typer.Option(
        0,
        min=0,
        help="Also write each row's top-k SHAP contributions (column `explanation`, JSON).",
    ),
    params: Path = PARAMS_OPTION,
) -> None:
    """Batch scoring: Feast historical features + the champion model, then the predictions gate."""
    from .scoring import score_file

    score_file(load_params(params), entities, out, at, explain)


rollout_app = typer.Typer(
    help="Shadow evidence for the `candidate`, and moving `champion` to it.", no_args_is_help=True
)
app.add_typer(rollout_app, name="rollout")


@rollout_app.command("status")
@command
def rollout_status(params: Path = PARAMS_OPTION) -> None:
    """The candidate's shadow evidence (prediction log) against promote.rollout's minimums."""
    from .rollout import describe, status

    console.print(describe(status(load_params(params))), highlight=False)


@rollout_app.command("promote")
@command
def rollout_promote(params: Path = PARAMS_OPTION) -> None:
    """Make the candidate `champion` if its shadow evidence meets promote.rollout's minimums."""
    from .rollout import describe, promote_candidate

    console.print(describe(promote_candidate(load_params(params))), highlight=False)


@rollout_app.command("abort")
@command
def rollout_abort(params: Path = PARAMS_OPTION) -> None:
    """Remove the `candidate` alias: the service stops shadowing or canarying it."""
    from .rollout import abort

    version = abort(load_params(params))
    console.print(f"version {version} is no longer the candidate", highlight=False)


api_key_app = typer.Typer(help="API keys of the prediction service.", no_args_is_help=True)
app.add_typer(api_key_app, name="api-key")


@api_key_app.command("new")
@command
def api_key_new(
    name: str = typer.Argument(..., help="Who the key is for (shown in logs and metrics)."),
    keys_file: Path | None = typer.Option(
        None, "--append-to", help="Add the key's digest line to this file (serving.api_keys_file)."
    ),
) -> None:
    """Make an API key: prints it once; the service keeps only its sha256 digest."""
    from .api_keys import load_keys, new_key

    key, line = new_key(name)
    if keys_file is not None:
        if keys_file.is_file() and name in load_keys(keys_file, environ={}).values():
            raise PipelineError(f"{keys_file} already has a key named {name!r}")
        keys_file.parent.mkdir(parents=True, exist_ok=True)
        with keys_file.open("a") as out:
            out.write(line + "\n")
        keys_file.chmod(0o600)
        console.print(f"added {name!r} to {keys_file}", highlight=False)
    else:
        console.print(
            f"digest line (serving.api_keys_file or SERVING_API_KEYS): {line}", highlight=False
        )
    console.print("the key (give it to the caller; it is not stored anywhere):", highlight=False)
    print(key)


expectations_app = typer.Typer(help="Manage Great Expectations suites.", no_args_is_help=True)
app.add_typer(expectations_app, name="expectations")


@expectations_app.command("init")
@command
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
    timestamp: str | None = typer.Option(
        None,
        "--timestamp",
        help="Event-time column: writes a raw-gate suite judged per daily batch "
        "(day bounds, rows per day, no future times).",
    ),
    label: str | None = typer.Option(
        None, "--label", help="With --timestamp: the 0/1 label whose daily share is checked."
    ),
) -> None:
    """Profile a sample (ideally a whole file, not one day) and write a starting suite."""
    from .suite_bootstrap import write_suite

    target = out or Path("expectations") / f"{name}.json"
    suite = write_suite(sample, name, key, target, force, timestamp, label)
    console.print(
        f"wrote {len(suite['expectations'])} expectations to {target}: review and tighten them; "
        "a gate uses expectations/<gate>.json"
    )


dataset_app = typer.Typer(help="Bring your own table.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")


def _columns(text: str | None) -> list[str] | None:
    return None if text is None else [c.strip() for c in text.split(",") if c.strip()]


@dataset_app.command("init")
@command
def dataset_init(
    table: Path = typer.Option(..., "--from", help="Your table: a CSV or parquet file."),
    entity: str = typer.Option(..., "--entity", help="The id column (the entity key)."),
    timestamp: str = typer.Option(..., "--timestamp", help="When each row was observed."),
    label: str = typer.Option(..., "--label", help="The column the model predicts."),
    positive: str | None = typer.Option(
        None, "--positive", help="The label value meaning positive (default: 1 of 0/1)."
    ),
    categorical: str | None = typer.Option(
        None, "--categorical", help="Comma-separated numeric columns holding codes, not amounts."
    ),
    drop: str | None = typer.Option(None, "--drop", help="Comma-separated columns to leave out."),
    slices: str | None = typer.Option(
        None, "--slices", help="Comma-separated columns to check metrics per value of."
    ),
    entity_name: str | None = typer.Option(None, "--entity-name", help="The Feast entity's name."),
    horizon_days: int = typer.Option(
        0, "--horizon-days", min=0, help="Days after an event until its label is known."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a table brought before."),
) -> None:
    """Profile your table and write the contract, source, window settings and suites."""
    from .dataset_init import describe
    from .dataset_write import init_project

    done = init_project(
        Path(),
        table,
        force,
        entity=entity,
        timestamp=timestamp,
        label=label,
        positive=positive,
        categorical=_columns(categorical),
        drop=_columns(drop),
        slices=_columns(slices),
        entity_name=entity_name,
        horizon_days=horizon_days,
    )
    console.print(describe(done["inferred"]), highlight=False)
    console.print(
        f"wrote params.yaml (dataset, ingest.files.path: {done['source']}, "
        f"{', '.join(done['settings'])}), interval.yaml, dvc.yaml (ingest deps) and "
        f"{', '.join(str(p) for p in done['suites'].values())}; {done['dvc']}.\n"
        "Review them (docs/data.md), then: dvc repro",
        highlight=False,
    )


if __name__ == "__main__":
    app()
