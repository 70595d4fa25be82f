"""Stage `validate_predictions`: the Great Expectations gate on the model's test-day
predictions (expectations/predictions.json)."""

from __future__ import annotations

from ..config import PathsConfig
from ..files import read_parquet
from ..gates import GateReport, run_gate


def run(paths: PathsConfig) -> GateReport:
    """Validate the test-day predictions; raise GateFailed when a critical expectation fails."""
    return run_gate(read_parquet(paths.predictions, "evaluate"), paths, "predictions")
