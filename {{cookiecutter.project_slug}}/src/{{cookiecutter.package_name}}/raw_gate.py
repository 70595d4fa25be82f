"""The raw gate judges every daily batch on its own, so one bad day cannot hide in a
large window, and remembers the batches that passed, so a daily run validates only
the new day.

Each batch of the window is validated with expectations/raw.json, whose run-time
values are that day's: its time bounds, the rows a day may hold
(params.yaml validate_raw) and the label share that is plausible for a day of that
size given the window's own rate (a two-sided binomial band at
validate_raw.label_share_alpha). A batch that passed is recorded in
reports/gates/raw/batches/<day>.json and not validated again while its file, the suite
and validate_raw are unchanged (day_gate.py); its record also keeps its rows and
positives, so the window's label rate is summed from the records of unchanged batches
and only new or changed batch files are read for it. The window itself must
have a batch for every day and hold both label classes. The label column and its
0/1 values (as ingest writes them) come from the dataset contract.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from .batches import batch_path
from .config import PathsConfig, ValidateRawConfig, Window
from .contract import DatasetContract
from .day_gate import DailyGate
from .files import write_json
from .gates import Finding, GateReport

GATE = "raw"


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


def _label_counts(path: Path, label: str) -> tuple[int, int | None]:
    """(rows, positives) of a batch file, reading only the 0/1 label column `label`."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    rows = parquet.metadata.num_rows
    if label not in parquet.schema_arrow.names:
        return rows, None  # the suite names the missing column
    labels = parquet.read(columns=[label]).column(label).to_pandas()
    return rows, int((labels == 1).sum())


def label_counts(
    gate: DailyGate, days: dict[dt.date, Path], keys: dict[dt.date, dict[str, Any]], label: str
) -> dict[dt.date, tuple[int, int | None]]:
    """(rows, positives) of each batch: from its record when the record was made from the
    same file (its md5 in the key), else read from the file (the label column alone); a
    record of the same file made without them gets them."""
    counts = {}
    for day, path in days.items():
        earlier = gate.record(day, keys[day])
        if earlier is not None and "rows" in earlier and "positives" in earlier:
            counts[day] = (int(earlier["rows"]), earlier["positives"])
            continue
        counts[day] = _label_counts(path, label)
        if earlier is not None:
            rows, positives = counts[day]
            write_json(
                {**earlier, "rows": rows, "positives": positives},
                gate.records / f"{day.isoformat()}.json",
            )
    return counts


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
    suite_path = paths.expectations / f"{GATE}.json"
    files = {day: batch_path(paths.raw, day) for day in window.dates()}
    present = {day: path for day, path in files.items() if path.is_file()}
    label = contract.label.column
    gate = DailyGate(
        GATE, suite_path, paths.gate_reports / GATE, {"label": label, **cfg.model_dump()}
    )
    keys = gate.keys(present)
    counts = label_counts(gate, present, keys, label)
    labelled = [c for c in counts.values() if c[1] is not None]
    total = sum(rows for rows, _ in labelled)
    rate = sum(pos for _, pos in labelled) / total if total else None
    now = dt.datetime.now(dt.UTC)

    def parameters(day: dt.date) -> dict[str, Any]:
        share = plausible_label_share(counts[day][0], rate or 0.0, cfg.label_share_alpha)
        return batch_parameters(day, cfg, share, now)

    return gate.judge(
        present,
        list(files),
        parameters,
        _window_findings(window, files, rate, label),
        facts=lambda day: {"positives": counts[day][1]},
        keys=keys,
    )
