"""The raw gate judges every daily batch on its own, so one bad day cannot hide in a
large window, and remembers the batches that passed, so a daily run validates only
the new day.

Each batch of the window is validated with expectations/raw.json, whose run-time
values are that day's: its time bounds, the rows a day may hold
(params.yaml validate_raw) and the label share that is plausible for a day of that
size given the window's own rate (a two-sided binomial band at
validate_raw.label_share_alpha). A batch that passed is recorded in
reports/gates/raw/batches/<day>.json with the hashes of its file and of the suite;
the next run reuses that verdict while both are unchanged. The window itself must
have a batch for every day and hold both label classes. The label column and its
0/1 values (as ingest writes them) come from the dataset contract.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .batches import batch_path
from .config import PathsConfig, ValidateRawConfig, Window
from .contract import DatasetContract
from .files import write_json
from .gates import Finding, GateReport, SuiteRunner, result_json, write_summary

log = logging.getLogger(__name__)

GATE = "raw"
BATCHES_DIR = "batches"


def batch_parameters(
    day: dt.date, cfg: ValidateRawConfig, label_share: tuple[float, float], now: dt.datetime
) -> dict[str, Any]:
    """The run-time values raw.json refers to as {"$PARAMETER": ...}, for one day."""
    return {
        "day_start": dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC),
        "day_end": dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC),
        "now": now,
        "min_rows": cfg.min_rows_per_day,
        "max_rows": cfg.max_rows_per_day,
        "min_label_share": label_share[0],
        "max_label_share": label_share[1],
    }


def plausible_label_share(rows: int, rate: float, alpha: float) -> tuple[float, float]:
    """Shares of positives a day of `rows` rows shows with probability 1 - alpha when its
    labels follow the window's `rate` (binomial quantiles)."""
    if rows == 0:
        return 0.0, 1.0
    from scipy.stats import binom

    low = float(binom.ppf(alpha / 2, rows, rate)) / rows
    high = float(binom.isf(alpha / 2, rows, rate)) / rows
    return low, high


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _label_counts(path: Path, label: str) -> tuple[int, int | None]:
    """(rows, positives) of a batch file, reading only the 0/1 label column `label`."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    rows = parquet.metadata.num_rows
    if label not in parquet.schema_arrow.names:
        return rows, None  # the suite names the missing column
    labels = parquet.read(columns=[label]).column(label).to_pandas()
    return rows, int((labels == 1).sum())


def _passed_before(record: Path, key: dict[str, Any]) -> bool:
    if not record.is_file():
        return False
    try:
        earlier = json.loads(record.read_text())
    except json.JSONDecodeError:
        return False
    return bool(earlier.get("passed")) and earlier.get("key") == key


def _window_findings(
    window: Window, files: dict[dt.date, Path], rate: float | None, label: str
) -> list[Finding]:
    missing = [day.isoformat() for day, path in files.items() if not path.is_file()]
    findings = [
        Finding("expect_a_batch_for_every_day", None, "critical", observed="no file", batch=day)
        for day in missing
    ]
    if rate is not None and not 0.0 < rate < 1.0:
        findings.append(
            Finding(
                "expect_window_to_hold_both_label_classes",
                label,
                "critical",
                observed=f"label share {rate:.3f} over {window.start_date}..{window.end_date}",
            )
        )
    return findings


def validate_window(
    paths: PathsConfig, window: Window, cfg: ValidateRawConfig, contract: DatasetContract
) -> GateReport:
    """Validate every new or changed batch of the window; reuse the verdicts of the rest."""
    report_dir = paths.gate_reports / GATE
    records = report_dir / BATCHES_DIR
    records.mkdir(parents=True, exist_ok=True)
    suite_path = paths.expectations / f"{GATE}.json"
    files = {day: batch_path(paths.raw, day) for day in window.dates()}
    present = {day: path for day, path in files.items() if path.is_file()}
    label = contract.label.column
    counts = {day: _label_counts(path, label) for day, path in present.items()}
    labelled = [c for c in counts.values() if c[1] is not None]
    total = sum(rows for rows, _ in labelled)
    rate = sum(pos for _, pos in labelled) / total if total else None
    suite_hash = _md5(suite_path) if suite_path.is_file() else None
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    pending, reused = {}, []
    for day, path in present.items():
        key = {"batch_md5": _md5(path), "suite_md5": suite_hash, "label": label, **cfg.model_dump()}
        if _passed_before(records / f"{day.isoformat()}.json", key):
            reused.append(day.isoformat())
            continue
        share = plausible_label_share(counts[day][0], rate or 0.0, cfg.label_share_alpha)
        pending[day] = (path, key, batch_parameters(day, cfg, share, now))
    runner = SuiteRunner(suite_path, GATE, report_dir) if pending else None
    reports = _validate_batches(pending, runner, records) if runner else []
    _prune(records, {day.isoformat() for day in files})
    report = GateReport(
        gate=GATE,
        suite=str(suite_path),
        rows=sum(r.rows for r in reports),
        evaluated=sum(r.evaluated for r in reports),
        seconds=time.perf_counter() - started,
        failures=_window_findings(window, files, rate, label)
        + [f for r in reports for f in r.failures],
        warnings=[w for r in reports for w in r.warnings],
        report_dir=str(report_dir),
        details=f"{BATCHES_DIR}/<day>.result.json (failed days), summary.json",
    )
    validated = [day.isoformat() for day in pending]
    write_summary(report, {"validated_batches": validated, "reused_batches": reused})
    log.info("raw gate: %d batches validated, %d passed before", len(validated), len(reused))
    return report


def _validate_batches(
    pending: dict[dt.date, tuple[Path, dict[str, Any], dict[str, Any]]],
    runner: SuiteRunner,
    records: Path,
) -> list[GateReport]:
    """GX's verdict on each batch (the fast pass); a batch with findings is validated again
    with example values, its result stored for the Data Docs (and, when it failed, written
    to batches/<day>.result.json). Records each verdict in batches/<day>.json."""
    reports = []
    for day, (path, key, parameters) in pending.items():
        report, _ = runner.check(pd.read_parquet(path), parameters, day.isoformat())
        if report.failures or report.warnings:
            report, result = runner.run(pd.read_parquet(path), parameters, day.isoformat())
            if not report.passed:
                write_json(result_json(result), records / f"{day.isoformat()}.result.json")
        reports.append(report)
        write_json(
            {"key": key, "passed": report.passed, **_brief(report)},
            records / f"{day.isoformat()}.json",
        )
    runner.build_docs()
    return reports


def _brief(report: GateReport) -> dict[str, Any]:
    return {
        "rows": report.rows,
        "failures": [f.describe() for f in report.failures],
        "warnings": [w.describe() for w in report.warnings],
    }


def _prune(records: Path, days: set[str]) -> None:
    """Forget the verdicts of days that left the window."""
    for path in records.glob("*.json"):
        if path.name.split(".")[0] not in days:
            path.unlink()
