"""Feast objects: the customer entity, the feature view over the DVC-tracked
feature parquet, and the feature service that names exactly the model's features.

The feature list comes from the package (features.FEATURE_COLUMNS), so the
model, the training set and online serving can never disagree on it.
"""

from datetime import timedelta
from pathlib import Path

import yaml
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

from {{ cookiecutter.package_name }}.features import ENTITY, FEATURE_COLUMNS, FEATURE_SERVICE, TIMESTAMP

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The feature parquet written by the `featurize` stage (params.yaml: paths.features).
_paths = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())["paths"]
FEATURES_PARQUET = PROJECT_ROOT / _paths["features"] / "features.parquet"

customer = Entity(
    name="customer",
    join_keys=[ENTITY],
    value_type=ValueType.INT64,
    description="A customer account",
)

customer_features_source = FileSource(
    name="customer_features_source",
    path=str(FEATURES_PARQUET),
    timestamp_field=TIMESTAMP,
    description="Daily customer snapshots (DVC stage: featurize)",
)

customer_features = FeatureView(
    name="customer_features",
    entities=[customer],
    # A snapshot older than this is not served: customers are seen every few days.
    ttl=timedelta(days=90),
    schema=[Field(name=column, dtype=Float64) for column in FEATURE_COLUMNS],
    source=customer_features_source,
    online=True,
    tags={"stage": "featurize"},
)

model_features = FeatureService(
    name=FEATURE_SERVICE,
    features=[customer_features],
    description="Exactly the features the churn model reads, in training and serving",
)
