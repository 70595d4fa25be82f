"""Typed view of params.yaml (its `ingest` section: ingest_config.py; `tune`: tune_config.py).

The CLI loads the file once and hands each stage its own slice; stage code
never reads params.yaml itself. Unknown or mistyped keys fail loudly here.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from .contract import DatasetContract
from .errors import ConfigError
from .ingest_config import IngestConfig
from .tune_config import TuneConfig


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsConfig(Strict):
    raw: Path
    features: Path
    training_set: Path
    tuned_params: Path  # the tune stage's choice of train parameters (or: tuning is off)
    model_dir: Path
    predictions: Path
    reports: Path
    expectations: Path
    gate_reports: Path
    prediction_log: Path
    monitoring: Path

    @property
    def feature_table(self) -> Path:
        """The model features of every raw row (featurize's output)."""
        return self.features / "features.parquet"

    @property
    def label_table(self) -> Path:
        """The label events with their slice columns (featurize's output)."""
        return self.features / "labels.parquet"


class DataConfig(Strict):
    """params.yaml `data`: shared by the stages that read the window of daily batches."""

    window_days: int = Field(ge=1, le=3660)  # the rolling window ends at interval.yaml end_date


class IntervalConfig(Strict):
    """interval.yaml: the run's data interval. The Airflow DAGs write it for each run."""

    end_date: dt.date  # the last daily batch of the window (inclusive)


class Window(Strict):
    """The daily batches a run covers: `days` days ending at `end_date`."""

    end_date: dt.date
    days: int = Field(ge=1)

    @property
    def start_date(self) -> dt.date:
        return self.end_date - dt.timedelta(days=self.days - 1)

    def dates(self) -> list[dt.date]:
        return [self.start_date + dt.timedelta(days=i) for i in range(self.days)]


class ValidateRawConfig(Strict):
    min_rows_per_day: int = Field(ge=0)
    max_rows_per_day: int = Field(ge=1)
    # A day whose share of positive labels is this unlikely under the window's rate fails.
    label_share_alpha: float = Field(1e-6, gt=0, lt=1)


class MaterializeConfig(Strict):
    # Entities written to the online store per call: bounds the stage's memory.
    chunk_rows: int = Field(50_000, ge=1)
    verify_entities: int = Field(200, ge=0)  # entities read back after writing (0: skip)


class SplitConfig(Strict):
    valid_days: int = Field(ge=1)
    test_days: int = Field(ge=1)


_MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*([kmgtp]i?)?b", re.IGNORECASE)


class DaskConfig(Strict):
    """The Dask cluster `train.engine: dask` trains on (dask_engine.py)."""

    # None: start a LocalCluster in this process for the run; else a running scheduler
    scheduler_address: str | None = None
    # The rest shape the LocalCluster only (a running cluster keeps its own workers).
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    # Per worker: "auto" (system memory / n_workers), 0 (no limit), bytes or a size like "4GiB"
    memory_limit: str | int = "auto"
    # Partitions each split is cut into on the cluster; None: one per worker
    partitions: int | None = Field(None, ge=1)

    @field_validator("memory_limit")
    @classmethod
    def _memory_size(cls, value: str | int) -> str | int:
        if isinstance(value, int) and value >= 0:
            return value
        if isinstance(value, str) and (value == "auto" or _MEMORY_SIZE.fullmatch(value)):
            return value
        raise ValueError("expected auto, 0 (no limit), a number of bytes or a size like 4GiB")


class TrainConfig(Strict):
    engine: Literal["local", "dask"] = "local"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_boost_round: int = Field(ge=1)
    early_stopping_rounds: int = Field(ge=1)
    learning_rate: float = Field(gt=0, le=1)
    max_depth: int = Field(ge=1, le=32)
    min_child_weight: float = Field(ge=0)
    subsample: float = Field(gt=0, le=1)
    colsample_bytree: float = Field(gt=0, le=1)
    reg_lambda: float = Field(ge=0)
    max_bin: int = Field(ge=2)
    scale_pos_weight: Literal["auto"] | float = "auto"
    threshold: Literal["auto"] | float = "auto"
    # none | isotonic | platt, fitted on the valid split (calibration.py); the threshold is
    # then chosen on (and applies to) the calibrated scores
    calibration: Literal["none", "isotonic", "platt"] = "none"
    seed: int = 42
    nthread: int = Field(0, ge=0)
    dask: DaskConfig = DaskConfig()  # the cluster of engine: dask


class EvaluateConfig(Strict):
    plot_points: int = Field(200, ge=10)
    calibration_bins: int = Field(10, ge=2, le=1000)  # equal-width score bins: reliability, ECE
    shap_rows: int = Field(
        2000, ge=0
    )  # test rows (seeded sample) SHAP values are averaged on; 0: all
    # the slice gaps (slice_recall_gap, slice_fpr_gap) compare slices of this many rows or more
    min_slice_rows: int = Field(200, ge=1)


# Evidently's drift methods (stattests) by column kind; distances (wasserstein,
# jensenshannon, psi, ...) flag drift when score >= threshold, tests (ks, chisquare,
# ...) when p-value < threshold.
NumStattest = Literal[
    "wasserstein", "psi", "jensenshannon", "kl_div", "hellinger", "ks", "anderson",
    "cramer_von_mises", "mannw", "ed", "es", "t_test", "empirical_mmd",
]  # fmt: skip
CatStattest = Literal[
    "jensenshannon", "psi", "kl_div", "hellinger", "chisquare", "z", "TVD", "g_test", "fisher_exact"
]


class FeatureDriftOverride(Strict):
    stattest: str | None = None  # any Evidently stattest valid for the column's kind
    threshold: float | None = Field(None, gt=0)


class MonitoringDriftConfig(Strict):
    num_stattest: NumStattest = "wasserstein"
    cat_stattest: CatStattest = "jensenshannon"
    num_threshold: float = Field(0.1, gt=0)
    cat_threshold: float = Field(0.1, gt=0)
    per_feature: dict[str, FeatureDriftOverride] = Field(default_factory=dict)
    max_drift_share: float = Field(0.3, gt=0, le=1)
    score_stattest: NumStattest = "wasserstein"
    score_threshold: float = Field(0.1, gt=0)


class MonitoringQualityConfig(Strict):
    min_labelled_rows: int = Field(500, ge=1)
    min_roc_auc: float = Field(0.75, ge=0, le=1)
    min_precision_lift: float | None = Field(1.5, gt=0, allow_inf_nan=False)  # x positive rate
    min_precision: float | None = Field(None, ge=0, le=1)  # absolute; both apply when set
    min_recall: float = Field(0.4, ge=0, le=1)
    max_roc_auc_drop: float | None = Field(0.05, ge=0, le=1)


class MonitoringDataQualityConfig(Strict):
    max_missing_share_increase: float = Field(0.05, ge=0, le=1)
    max_new_category_share: float = Field(0.0, ge=0, le=1)


class MonitoringConfig(Strict):
    current_days: int = Field(7, ge=1)
    min_rows: int = Field(200, ge=1)
    sample_rows: int = Field(50_000, ge=0)
    seed: int = 42
    keep_runs: int = Field(30, ge=1)
    drift: MonitoringDriftConfig = MonitoringDriftConfig()
    quality: MonitoringQualityConfig = MonitoringQualityConfig()
    data_quality: MonitoringDataQualityConfig = MonitoringDataQualityConfig()


class RateLimitConfig(Strict):
    requests_per_second: float = Field(50.0, gt=0)  # per API key, sustained
    burst: int = Field(100, ge=1)  # requests a key may send at once before it is slowed


class ServingConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    refresh_seconds: float = Field(30.0, ge=0)
    prediction_log_retention_days: int = Field(90, ge=1, le=3660)  # prediction_log.py
    api_keys_file: Path | None = None  # `<name> <sha256>` lines (api_keys.py)
    rate_limit: RateLimitConfig = RateLimitConfig()
    max_body_bytes: int = Field(65_536, ge=1_024)  # larger request bodies get 413
    # champion: the champion answers; shadow: the `candidate` scores beside it (logged, not
    # returned); canary: the candidate answers for canary_share of the entities (challenger.py)
    rollout: Literal["champion", "shadow", "canary"] = "champion"
    canary_share: float = Field(0.1, ge=0, le=1)  # by a stable hash of the id
    access_log: bool = False  # uvicorn's line per request on stderr


class MlflowConfig(Strict):
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str
    registered_model: str


# Holdout metrics the promotion gate can read; all of them are "higher is better".
PromotionMetric = Literal["roc_auc", "pr_auc", "f1", "precision", "recall"]
LiftMetric = Literal["pr_auc", "precision"]  # chance level: the positive rate (metrics.py)
GapMetric = Literal["recall", "fpr"]  # promote.max_slice_gap (slices.py GAP_METRICS)
Score = Annotated[float, Field(ge=0, le=1)]
Lift = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # metric >= lift x positive rate


class InfraValidationConfig(Strict):
    """The candidate served in-process before the alias can move (infra_validation.py)."""

    enabled: bool = True
    requests: int = Field(200, ge=1, le=100_000)  # timed single-id POST /predict requests
    max_p99_ms: float = Field(250.0, gt=0, allow_inf_nan=False)  # their p99 latency
    max_memory_mb: float = Field(1024.0, gt=0, allow_inf_nan=False)  # RSS growth, load + serve


class RolloutConfig(Strict):
    """promote.rollout (rollout.py): what `rollout promote` needs before moving champion."""

    require_shadow: bool = False  # a passing candidate waits for `rollout promote`
    min_shadow_hours: float = Field(24.0, ge=0)  # first to last shadowed prediction
    min_shadow_predictions: int = Field(1000, ge=0)
    min_agreement: float = Field(0.95, ge=0, le=1)  # share of same labels


class PromotionConfig(Strict):
    """The champion/challenger gate (promotion.py), run on the latest holdout (test days)."""

    primary_metric: PromotionMetric = "pr_auc"
    # The candidate must beat the champion's primary metric by at least this much
    # (absolute difference, both scored on the same holdout) to replace it.
    min_improvement: float = Field(0.0, ge=0.0, le=1.0)
    # Floors the candidate must reach on the whole holdout, champion or not: absolute, and
    # lifts over the holdout's positive rate; both apply when set.
    absolute_minimums: dict[PromotionMetric, Score] = Field(default_factory=dict)
    minimum_lifts: dict[LiftMetric, Lift] = Field(default_factory=dict)
    # The same in every slice (dataset.slices) with enough rows (its own positive rate).
    slice_minimums: dict[PromotionMetric, Score] = Field(default_factory=dict)
    slice_minimum_lifts: dict[LiftMetric, Lift] = Field(default_factory=dict)
    min_slice_rows: int = Field(50, ge=1)
    min_slice_positives: int = Field(20, ge=0)  # ... and this many rows of each class
    # The largest gap of recall / FPR between two slices of one dimension (slices.py), at
    # most; None: no gap rule.
    max_slice_gap: dict[GapMetric, Score] | None = None
    infra_validation: InfraValidationConfig = InfraValidationConfig()
    rollout: RolloutConfig = RolloutConfig()


class Params(Strict):
    dataset: DatasetContract
    paths: PathsConfig
    data: DataConfig
    interval: IntervalConfig  # from interval.yaml, not params.yaml
    ingest: IngestConfig
    validate_raw: ValidateRawConfig
    split: SplitConfig
    materialize: MaterializeConfig = MaterializeConfig()
    tune: TuneConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    monitor: MonitoringConfig
    serving: ServingConfig
    promote: PromotionConfig
    mlflow: MlflowConfig

    @property
    def window(self) -> Window:
        return Window(end_date=self.interval.end_date, days=self.data.window_days)


INTERVAL_FILE = "interval.yaml"


def _read_yaml(path: Path, hint: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path} not found: {hint}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of keys, not {type(raw).__name__}")
    return raw


def _invalid(path: Path, exc: ValidationError, prefix: tuple[str, ...] = ()) -> ConfigError:
    lines = [f"{path} is invalid:"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"][len(prefix) :])
        if error["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}' (typo? see the documented keys in {path})")
        else:
            lines.append(f"  - {key}: {error['msg']} (got {error.get('input')!r})")
    return ConfigError("\n".join(lines))


def load_params(path: Path = Path("params.yaml"), interval: Path | None = None) -> Params:
    """Read and validate params.yaml and the run's interval.yaml (beside it unless given),
    with messages that name the file and the bad key."""
    raw = _read_yaml(path, "run commands from the project root")
    interval = interval or path.parent / INTERVAL_FILE
    if "interval" in raw:
        raise ConfigError(f"{path}: the run's interval belongs in {interval}, not params.yaml")
    window = _read_yaml(
        interval, 'it holds the run\'s end_date (the DAGs write it), e.g. end_date: "2026-03-31"'
    )
    try:
        raw["interval"] = IntervalConfig.model_validate(window)
    except ValidationError as exc:
        raise _invalid(interval, exc) from None
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(path, exc) from None
