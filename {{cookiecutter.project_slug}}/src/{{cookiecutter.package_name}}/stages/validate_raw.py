"""Stage `validate_raw`: the Great Expectations gate on the raw batches (expectations/raw.json)."""

from __future__ import annotations

from ..batches import read_raw
from ..config import PathsConfig, ValidateRawConfig, Window
from ..gates import GateReport, raw_gate_parameters, run_gate


def run(paths: PathsConfig, window: Window, cfg: ValidateRawConfig) -> GateReport:
    """Validate the window's raw rows; raise GateFailed when a critical expectation fails."""
    return run_gate(read_raw(paths.raw), paths, "raw", parameters=raw_gate_parameters(window, cfg))
