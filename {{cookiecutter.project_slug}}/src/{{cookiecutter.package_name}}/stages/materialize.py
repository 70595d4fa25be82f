"""Stage `materialize`: the newest feature values into the Feast online store, for serving."""

from __future__ import annotations

import logging
from typing import Any

from ..config import MaterializeConfig, PathsConfig
from ..contract import DatasetContract
from ..feature_store import open_store
from ..files import write_json
from ..materialization import FeatureFiles, materialize

log = logging.getLogger(__name__)


def run(paths: PathsConfig, config: MaterializeConfig, contract: DatasetContract) -> dict[str, Any]:
    """Load what is newer than the last run (everything, when the feature view's schema
    changed), read a sample back; write and return the summary. The feature table is
    read in the pieces the run needs (materialization.py)."""
    features = FeatureFiles(paths.feature_table)
    summary = materialize(
        open_store(), features, contract, config.chunk_rows, config.verify_entities
    )
    write_json(summary, paths.reports / "materialize.json")
    log.info(
        "online store (%s) holds features of %s entities until %s",
        summary["online_store"],
        summary["entities_online"],
        summary["materialized_until"],
    )
    return summary
