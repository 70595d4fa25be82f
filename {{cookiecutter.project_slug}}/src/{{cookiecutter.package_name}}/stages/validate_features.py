"""Stage `validate_features`: the Great Expectations gate on the model features
(expectations/features.json), one day of the feature table at a time (day_gate.py):
a bad day fails by name however large the window, and days that passed before are
not validated again."""

from __future__ import annotations

from ..config import PathsConfig, Window
from ..day_gate import DailyGate
from ..errors import StageInputError
from ..gates import Finding, GateReport, enforce
from ..partitions import DayFiles

GATE = "features"


def run(paths: PathsConfig, window: Window) -> GateReport:
    """Validate the feature table's new days; raise GateFailed when a critical
    expectation fails, and StageInputError when there is no feature file at all."""
    days = DayFiles(paths.feature_table).existing()
    if not days:
        raise StageInputError(
            f"{paths.feature_table} holds no part-<day>.parquet file: it is produced by the "
            "'featurize' stage. Run `dvc repro featurize`."
        )
    missing = [
        Finding(
            "expect_a_feature_file_for_every_day",
            None,
            "critical",
            observed="no file",
            batch=d.isoformat(),
        )
        for d in window.dates()
        if d not in days
    ]
    gate = DailyGate(GATE, paths.expectations / f"{GATE}.json", paths.gate_reports / GATE, {})
    report = gate.judge(days, window.dates(), window_findings=missing)
    enforce(report)
    return report
