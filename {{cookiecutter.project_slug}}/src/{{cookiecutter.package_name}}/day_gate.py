"""A gate that judges one daily file at a time and remembers the days that passed.

The raw gate (raw batches) and the features gate (the feature table's part files) run
each day of the window through their suite on its own, so one bad day cannot hide in a
large window, and name the day in what failed. A day that passed is recorded in
`<report_dir>/batches/<day>.json` with its **key**: the md5 of its file and of the
suite, and the settings its verdict depends on. The next run reuses the verdict while
the key is unchanged, so a daily run validates only the new day; the records of days
that left the window are deleted. A failed day is validated again on the next run, and
its GX result is written to `batches/<day>.result.json`.

When several days are validated (a first run, a changed suite), the suite's row-level
expectations are judged once on their rows together and the rest day by day, which gives
the same verdicts at a fraction of GX's cost per day (row_checks.py says when and why).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .files import file_digest, write_json
from .gates import Finding, GateReport, SuiteRunner, result_json, write_summary
from .row_checks import UNION_BYTES, data_bytes, groups, same_columns, split

log = logging.getLogger(__name__)

RECORDS_DIR = "batches"

DayParameters = Callable[[dt.date], dict[str, Any]]


@dataclass(frozen=True)
class DailyGate:
    """A gate's suite and report folder; `settings` are what its verdicts depend on
    besides the file and the suite (they are part of each day's key)."""

    gate: str
    suite_path: Path
    report_dir: Path
    settings: Mapping[str, Any]
    union_bytes: int = UNION_BYTES  # data judged together by the row-level checks (0: none)

    @property
    def records(self) -> Path:
        return self.report_dir / RECORDS_DIR

    def keys(self, days: Mapping[dt.date, Path]) -> dict[dt.date, dict[str, Any]]:
        """Each day's key: the md5 of its file and of the suite, and the settings."""
        suite_md5 = file_digest(self.suite_path) if self.suite_path.is_file() else None
        return {
            day: {"file_md5": file_digest(path), "suite_md5": suite_md5, **self.settings}
            for day, path in days.items()
        }

    def record(self, day: dt.date, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The day's record (passed or failed) when it was made with `key`, else None."""
        earlier = _read_record(self.records / f"{day.isoformat()}.json")
        return earlier if earlier is not None and earlier.get("key") == key else None

    def judge(
        self,
        days: Mapping[dt.date, Path],
        window_days: Sequence[dt.date],
        parameters: DayParameters | None = None,
        window_findings: Sequence[Finding] = (),
        facts: Callable[[dt.date], dict[str, Any]] | None = None,
        keys: Mapping[dt.date, dict[str, Any]] | None = None,
    ) -> GateReport:
        """Validate each day of `days` not passed before, with the suite's run-time
        values from `parameters(day)`; forget the days outside `window_days`; write
        summary.json and return the verdict of the window (`window_findings` are its
        own, e.g. a missing day). `facts(day)` are kept in the records of the days
        validated; `keys` are `self.keys(days)` when already computed."""
        started = time.perf_counter()
        self.records.mkdir(parents=True, exist_ok=True)
        keys = keys if keys is not None else self.keys(days)
        pending, reused = {}, []
        for day, path in days.items():
            if (self.record(day, keys[day]) or {}).get("passed"):
                reused.append(day.isoformat())
            else:
                pending[day] = (path, keys[day])
        reports, together = self._validate(pending, parameters, facts) if pending else ([], 0)
        _prune(self.records, {day.isoformat() for day in window_days})
        report = GateReport(
            gate=self.gate,
            suite=str(self.suite_path),
            rows=sum(r.rows for r in reports),
            evaluated=sum(r.evaluated for r in reports),
            seconds=time.perf_counter() - started,
            failures=[*window_findings, *(f for r in reports for f in r.failures)],
            warnings=[w for r in reports for w in r.warnings],
            report_dir=str(self.report_dir),
            details=f"{RECORDS_DIR}/<day>.result.json (failed days), summary.json",
        )
        validated = [day.isoformat() for day in pending]
        write_summary(
            report,
            {
                "validated_batches": validated,
                "reused_batches": reused,
                "row_checks_together": together,
            },
        )
        log.info(
            "%s gate: %d of %d days validated (%d with the row-level checks on their rows "
            "together), the others passed before",
            self.gate,
            len(validated),
            len(days),
            together,
        )
        return report

    def _validate(
        self,
        pending: Mapping[dt.date, tuple[Path, dict[str, Any]]],
        parameters: DayParameters | None,
        facts: Callable[[dt.date], dict[str, Any]] | None = None,
    ) -> tuple[list[GateReport], int]:
        """GX's verdict on each day (the fast pass); a day with findings is validated again
        with example values, its result stored for the Data Docs (and, when it failed,
        written to batches/<day>.result.json). Records each verdict in batches/<day>.json.
        The suite's row-level expectations are judged once on several days' rows together
        where that gives the same verdicts (row_checks.py); also returns on how many days."""
        runner = SuiteRunner(self.suite_path, self.gate, self.report_dir)
        together, per_day = split(runner.suite_json.get("expectations") or [])
        parts = (runner.part("rows", together), runner.part("per_day", per_day))
        limit = self.union_bytes if together else 0
        sizes = {day: data_bytes(path) for day, (path, _) in pending.items()}
        reports, shared = [], 0
        for group in groups(sizes, limit):
            frames = {day: pd.read_parquet(pending[day][0]) for day in group}
            rows_pass = len(group) > 1 and _rows_pass(runner, parts[0], frames)
            shared += len(group) if rows_pass else 0
            for day, frame in frames.items():
                values = parameters(day) if parameters else None
                part = (parts[1], len(together)) if rows_pass else None
                report, result = _verdict(runner, frame, values, day, part)
                reports.append(report)
                write_json(
                    {
                        "key": pending[day][1],
                        "passed": report.passed,
                        **_brief(report),
                        **(facts(day) if facts else {}),
                    },
                    self.records / f"{day.isoformat()}.json",
                )
                if not report.passed:
                    write_json(result_json(result), self.records / f"{day.isoformat()}.result.json")
        runner.build_docs()
        return reports, shared


def _rows_pass(runner: SuiteRunner, rows: Any, frames: Mapping[dt.date, pd.DataFrame]) -> bool:
    """Whether the row-level expectations (`rows`, a part of the suite) find nothing in the
    days' rows put together; False when the days' columns differ (row_checks.same_columns)."""
    if not same_columns(frames.values()):
        return False
    report, _ = runner.check(pd.concat(frames.values(), ignore_index=True), suite=rows)
    if report.failures or report.warnings:
        days = sorted(frames)
        log.info(
            "%s gate: row-level findings in the days %s to %s together; "
            "each of them is validated with the whole suite",
            runner.gate,
            days[0],
            days[-1],
        )
        return False
    return True


def _verdict(
    runner: SuiteRunner,
    frame: pd.DataFrame,
    values: dict[str, Any] | None,
    day: dt.date,
    part: tuple[Any, int] | None = None,
) -> tuple[GateReport, Any]:
    """GX's verdict on a day: with `part` (a part of the suite, and how many expectations
    the rest has that passed on the days together), else with the whole suite. A day with
    findings is validated again with the whole suite and example values."""
    suite, judged_together = part or (None, 0)
    report, result = runner.check(frame, values, day.isoformat(), suite)
    if report.failures or report.warnings:
        return runner.run(frame, values, day.isoformat())
    report.evaluated += judged_together
    return report, result


def _read_record(record: Path) -> dict[str, Any] | None:
    if not record.is_file():
        return None
    try:
        earlier = json.loads(record.read_text())
    except json.JSONDecodeError:
        return None
    return earlier if isinstance(earlier, dict) else None


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
