"""Console logging and progress bars that read well in a terminal and in Airflow task logs."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, soft_wrap=True)


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    if console.is_terminal:
        handler: logging.Handler = RichHandler(console=console, show_path=False)
        fmt = "%(message)s"
    else:  # Airflow task logs, CI: plain lines with timestamps
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, handlers=[handler], force=True)
    for noisy in ("alembic", "urllib3", "botocore", "git", "matplotlib", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def progress() -> Progress:
    """A progress bar; silent when output is not a terminal (logs stay readable)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal or bool(os.environ.get("NO_PROGRESS")),
    )


STAGE_METRICS_ENV = "STAGE_METRICS_FILE"


def record_stage_metrics(path: Path, work_started: float, ok: bool) -> None:
    """Append one JSON line: start-up (interpreter + imports before the command),
    work time and peak memory of this stage process."""
    import json
    import resource
    import time

    import psutil

    process_started = psutil.Process().create_time()
    now = time.time()
    line = {
        "command": " ".join(sys.argv[1:]),
        "ok": ok,
        "startup_seconds": round(work_started - process_started, 3),
        "work_seconds": round(now - work_started, 3),
        "total_seconds": round(now - process_started, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    with path.open("a") as handle:
        handle.write(json.dumps(line) + "\n")
