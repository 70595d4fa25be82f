"""Stage `validate_raw`: the Great Expectations gate on each daily batch of the window
(expectations/raw.json); batches that passed before are not validated again."""

from __future__ import annotations

from ..config import PathsConfig, ValidateRawConfig, Window
from ..contract import DatasetContract
from ..gates import GateReport, enforce
from ..raw_gate import validate_window


def run(
    paths: PathsConfig, window: Window, cfg: ValidateRawConfig, contract: DatasetContract
) -> GateReport:
    """Validate the window's new batches; raise GateFailed when a critical expectation fails."""
    report = validate_window(paths, window, cfg, contract)
    enforce(report)
    return report
