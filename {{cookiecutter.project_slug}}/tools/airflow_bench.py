"""`make airflow-bench`: wall times of the continuous_training DAG under a real
scheduler (LocalExecutor), in scratch copies of this project, each figure against its
baseline measured in the same run:

- one run with one task at a time (parallelism 1) vs independent stages in parallel;
- a backfill of N intervals one run at a time vs all at once;
- per stage, the hand-off (checkout, pull, push) against the stage's own work, read
  from the task logs of the parallel run.

Nothing here asserts a time. This is the template's tooling: the package never
imports it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from {{ cookiecutter.package_name }}.logs import console

from tools import scratch
from tools.airflow_cluster import airflow_cluster, backfill, parse_time

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "continuous_training"
STAGE_TIMES = re.compile(
    r"stage (\w+): checkout ([\d.]+) s, pull ([\d.]+) s, stage ([\d.]+) s(?:, push ([\d.]+) s)?"
)
app = typer.Typer(add_completion=False, help=__doc__)


def _shrink(rows_per_day: int | None, window_days: int | None):
    def mutate(params: dict[str, Any]) -> None:
        if params["ingest"]["source"] != "synthetic":
            return  # a table you brought is measured as it is
        if rows_per_day:
            params["ingest"]["synthetic"]["rows_per_day"] = rows_per_day
        if window_days:
            params["data"]["window_days"] = window_days

    return mutate


def _measure(
    root: Path,
    name: str,
    parallelism: int,
    intervals: int,
    max_runs: int,
    mutate: Any,
    first_day: dt.date,
) -> dict[str, Any]:
    """One backfill in a fresh copy; its wall time (first start to last end) and the
    per-stage times its task logs report."""
    folder = root / re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    project = scratch.copy_project(PROJECT_ROOT, folder / "project", mutate)
    logs = folder / "logs"
    logs.mkdir(parents=True)
    env = {**os.environ, "PROJECT_VENV": sys.prefix, "PIPELINE_TASK_RETRIES": "0"}
    env["PIPELINE_WORKSPACE_DIR"] = str(folder / "workspaces")
    to_day = first_day + dt.timedelta(days=intervals - 1)
    console.print(f"[bold]{name}[/]: {intervals} interval(s), parallelism {parallelism}")
    started = time.monotonic()
    with airflow_cluster(
        folder / "airflow_home",
        project,
        "LocalExecutor",
        logs,
        env,
        AIRFLOW__CORE__PARALLELISM=str(parallelism),
        PIPELINE_MAX_ACTIVE_RUNS=str(max_runs),
    ) as cluster:
        backfill(cluster, DAG_ID, first_day.isoformat(), to_day.isoformat(), max_runs)
        runs = cluster.wait_for_runs(DAG_ID, intervals, timeout=6 * 3600)
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    if failed:
        raise SystemExit(f"{name}: runs {failed} failed; task logs under {folder / 'airflow_home'}")
    starts = [parse_time(r["start_date"]) for r in runs]
    ends = [parse_time(r["end_date"]) for r in runs]
    stages: dict[str, list[float]] = {}
    for log in (folder / "airflow_home" / "logs").rglob("*.log"):
        for match in STAGE_TIMES.finditer(log.read_text()):
            values = [float(v) if v else 0.0 for v in match.groups()[1:]]
            stages.setdefault(match.group(1), values)
    return {
        "name": name,
        "parallelism": parallelism,
        "intervals": intervals,
        "max_active_runs": max_runs,
        "wall_seconds": (max(ends) - min(starts)).total_seconds(),
        "total_seconds": time.monotonic() - started,
        "stages": stages,
    }


@app.command()
def main(
    intervals: int = typer.Option(3, help="Intervals of the backfill"),
    parallelism: int = typer.Option(4, help="Task slots of the parallel runs"),
    rows_per_day: int = typer.Option(0, help="Rows a generated day has (0: params.yaml's)"),
    window_days: int = typer.Option(0, help="Days of the window (0: params.yaml's)"),
    backfill_rows_per_day: int = typer.Option(0, help="Rows a day for the backfills (0: as above)"),
    backfill_window_days: int = typer.Option(0, help="Window for the backfills (0: as above)"),
    first_day: str = typer.Option("2026-04-02", help="Logical date of the first run"),
    out: Path = typer.Option(Path("reports/bench/airflow.json"), help="Where the figures go"),
) -> None:
    mutate = _shrink(rows_per_day or None, window_days or None)
    backfill_mutate = _shrink(
        backfill_rows_per_day or rows_per_day or None, backfill_window_days or window_days or None
    )
    day = dt.date.fromisoformat(first_day)
    root = Path(tempfile.mkdtemp(prefix="airflow-bench-"))  # kept if a measurement fails
    serial = _measure(root, "one run, one task at a time", 1, 1, 1, mutate, day)
    parallel = _measure(root, "one run, parallel branches", parallelism, 1, 1, mutate, day)
    one_by_one = _measure(
        root,
        f"backfill of {intervals}, one run at a time",
        parallelism,
        intervals,
        1,
        backfill_mutate,
        day,
    )
    together = _measure(
        root,
        f"backfill of {intervals}, all at once",
        parallelism,
        intervals,
        intervals,
        backfill_mutate,
        day,
    )
    shutil.rmtree(root, ignore_errors=True)
    results = [serial, parallel, one_by_one, together]
    table = Table(title="continuous_training under a LocalExecutor")
    for column in ("measurement", "wall s", "vs baseline"):
        table.add_column(column)
    for row, baseline in (
        (serial, serial),
        (parallel, serial),
        (one_by_one, one_by_one),
        (together, one_by_one),
    ):
        ratio = row["wall_seconds"] / baseline["wall_seconds"]
        table.add_row(row["name"], f"{row['wall_seconds']:.0f}", f"{ratio:.2f}x")
    console.print(table)
    stages = Table(title="per stage, the parallel run: hand-off vs the stage's own work")
    for column in ("stage", "checkout s", "pull s", "stage s", "push s", "hand-off share"):
        stages.add_column(column)
    for name, (checkout, pull, own, push) in parallel["stages"].items():
        handoff = checkout + pull + push
        share = handoff / (handoff + own) if handoff + own else 0.0
        stages.add_row(
            name, f"{checkout:.1f}", f"{pull:.1f}", f"{own:.1f}", f"{push:.1f}", f"{share:.0%}"
        )
    console.print(stages)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    console.print(f"figures: {out}")


if __name__ == "__main__":
    app()
