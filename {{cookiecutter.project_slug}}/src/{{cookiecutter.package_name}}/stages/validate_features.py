"""Stage `validate_features`: the Great Expectations gate on the model features
(expectations/features.json)."""

from __future__ import annotations

from ..config import PathsConfig
from ..files import read_parquet
from ..gates import GateReport, enforce, validate


def run(paths: PathsConfig) -> GateReport:
    """Validate the feature table; raise GateFailed when a critical expectation fails."""
    report = validate(
        read_parquet(paths.feature_table, "featurize"),
        paths.expectations / "features.json",
        "features",
        paths.gate_reports / "features",
    )
    enforce(report)
    return report
