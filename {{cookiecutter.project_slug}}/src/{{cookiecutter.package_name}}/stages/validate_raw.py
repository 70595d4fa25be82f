"""Stage `validate_raw`: the Great Expectations gate on the raw batches (expectations/raw.json)."""

from __future__ import annotations

from ..batches import read_raw
from ..config import PathsConfig, ValidateRawConfig, Window
from ..gates import GateReport, enforce, raw_gate_parameters, validate


def run(paths: PathsConfig, window: Window, cfg: ValidateRawConfig) -> GateReport:
    """Validate the window's raw rows; raise GateFailed when a critical expectation fails."""
    report = validate(
        read_raw(paths.raw),
        paths.expectations / "raw.json",
        "raw",
        paths.gate_reports / "raw",
        raw_gate_parameters(window, cfg),
    )
    enforce(report)
    return report
