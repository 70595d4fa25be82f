"""Stage `validate_features`: the Great Expectations gate on the model features
(expectations/features.json)."""

from __future__ import annotations

from ..config import PathsConfig
from ..files import read_parquet
from ..gates import GateReport, run_gate


def run(paths: PathsConfig) -> GateReport:
    """Validate the feature table; raise GateFailed when a critical expectation fails."""
    return run_gate(read_parquet(paths.feature_table, "featurize"), paths, "features")
