"""Stage `validate_predictions`: the Great Expectations gate on the model's test-day
predictions (expectations/predictions.json)."""

from __future__ import annotations

from ..config import PathsConfig
from ..files import read_parquet
from ..gates import GateReport, enforce, validate


def run(paths: PathsConfig) -> GateReport:
    """Validate the test-day predictions; raise GateFailed when a critical expectation fails."""
    report = validate(
        read_parquet(paths.predictions, "evaluate"),
        paths.expectations / "predictions.json",
        "predictions",
        paths.gate_reports / "predictions",
    )
    enforce(report)
    return report
