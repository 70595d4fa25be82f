"""Feast objects, all derived from the dataset contract (params.yaml `dataset`): the
entity, the feature view over the DVC-tracked feature parquet, and the feature
service naming exactly the model's features.

The feature list is the contract's (DatasetContract.feature_columns), so the
model, the training set and online serving can never disagree on it.
"""

from datetime import timedelta
from pathlib import Path

import yaml
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.features import FEATURE_SERVICE

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
CONTRACT = DatasetContract.model_validate(_params["dataset"])
# The feature parquet written by the `featurize` stage (params.yaml: paths.features).
FEATURES_PARQUET = PROJECT_ROOT / _params["paths"]["features"] / "features.parquet"
FEATURE_COLUMNS = CONTRACT.feature_columns

entity = Entity(
    name=CONTRACT.entity.name,
    join_keys=[CONTRACT.entity.key],
    value_type=ValueType.INT64 if CONTRACT.entity.dtype == "int" else ValueType.STRING,
    description=f"The entity a row is about, keyed by {CONTRACT.entity.key}",
)

features_source = FileSource(
    name=f"{CONTRACT.feature_view}_source",
    path=str(FEATURES_PARQUET),
    timestamp_field=CONTRACT.timestamp,
    description="Model features per entity and event time (DVC stage: featurize)",
)

feature_view = FeatureView(
    name=CONTRACT.feature_view,
    entities=[entity],
    # A row older than this is not served.
    ttl=timedelta(days=90),
    schema=[Field(name=column, dtype=Float64) for column in FEATURE_COLUMNS],
    source=features_source,
    online=True,
    tags={"stage": "featurize"},
)

model_features = FeatureService(
    name=FEATURE_SERVICE,
    features=[feature_view],
    description="Exactly the features the model reads, in training and serving",
)
