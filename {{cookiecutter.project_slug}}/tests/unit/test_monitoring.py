"""Monitoring: drift, data quality and model quality decide retraining; bad inputs never do."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.batches import batch_path
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import (
    DriftConfig,
    FeatureDriftOverride,
    IngestConfig,
    MonitoringConfig,
    Params,
    Window,
    load_params,
)
from {{ cookiecutter.package_name }}.errors import ConfigError, StageInputError
from {{ cookiecutter.package_name }}.features import (
    FEATURE_COLUMNS,
    LABEL,
    build_features,
    build_labels,
)
from {{ cookiecutter.package_name }}.model import predict_proba, save_model
from {{ cookiecutter.package_name }}.monitoring import (
    MonitorData,
    MonitorResult,
    build_monitor_data,
    run_checks,
    verdict,
    write_outputs,
)
from {{ cookiecutter.package_name }}.monitoring.checks import precision_floor, quality_check
from {{ cookiecutter.package_name }}.monitoring.data import _quality_reference
from {{ cookiecutter.package_name }}.prediction_log import read_prediction_log
from {{ cookiecutter.package_name }}.split import Splits, time_split
from {{ cookiecutter.package_name }}.training import train_model
from tools.point_in_time import point_in_time_join

from conftest import batches

DRIFT_START = dt.date(2026, 4, 1)
ARTIFACTS = Path(__file__).resolve().parents[2] / "reports" / "test-artifacts"  # git-ignored


@pytest.fixture(scope="module")
def splits(tiny_raw: pd.DataFrame, split_config) -> Splits:
    return time_split(
        point_in_time_join(build_labels(tiny_raw), build_features(tiny_raw)), split_config
    )


@pytest.fixture(scope="module")
def model(splits: Splits, train_config) -> tuple[Any, Any, pd.DataFrame]:
    booster, meta = train_model(splits, train_config)
    scores = predict_proba(booster, splits.test)
    test_predictions = splits.test.drop(columns=FEATURE_COLUMNS).assign(
        score=scores, predicted=(scores >= meta.threshold).astype("int64")
    )
    return booster, meta, test_predictions


@pytest.fixture(scope="module")
def cfg(project_params: Params) -> MonitoringConfig:
    """The shipped monitoring params, with quality floors for the tiny test model
    (its no-drift ROC AUC is about 0.75 where the default project's is about 0.80)."""
    base = project_params.monitor
    quality = base.quality.model_copy(
        update={"min_roc_auc": 0.70, "min_recall": 0.25, "min_labelled_rows": 300}
    )
    return base.model_copy(update={"quality": quality})


def current_batches(tiny_ingest: IngestConfig, **drift: float) -> pd.DataFrame:
    """The week after the training window, with drift injected from its first day."""
    week = Window(end_date=DRIFT_START + dt.timedelta(days=6), days=7)
    drifting = tiny_ingest.synthetic.model_copy(
        update={"drift": DriftConfig(start_date=DRIFT_START, **drift)}
    )
    return batches(week, IngestConfig(synthetic=drifting))


@pytest.fixture(scope="module")
def check(
    tiny_raw: pd.DataFrame, tiny_ingest: IngestConfig, splits: Splits, model, cfg
) -> Callable[..., MonitorResult]:
    """Run the checks on the training window plus a current week with the given drift
    (results cached per scenario: each costs a few seconds of Evidently)."""
    booster, meta, test_predictions = model
    cache: dict[tuple, MonitorResult] = {}

    def run(**drift: float) -> MonitorResult:
        key = tuple(sorted(drift.items()))
        if key not in cache:
            raw = pd.concat([tiny_raw, current_batches(tiny_ingest, **drift)])
            data = build_monitor_data(
                raw=raw.reset_index(drop=True),
                reference=splits.train,
                booster=booster,
                threshold=meta.threshold,
                cfg=cfg,
                test_predictions=test_predictions,
            )
            cache[key] = run_checks(data, cfg)
        return cache[key]

    return run


def stamp(when: pd.Timestamp, i: int) -> str:
    """ISO-8601 UTC, as `datetime.isoformat()` (the serving API) or with a `Z` suffix."""
    return when.isoformat() if i % 2 else when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log_lines(rows: pd.DataFrame, booster: Any, threshold: float) -> list[str]:
    """Prediction-log lines as the serving API writes them, one per raw row."""
    features = build_features(rows.reset_index(drop=True))
    scores = predict_proba(booster, features)
    lines = []
    for i, (row, score) in enumerate(zip(features.itertuples(index=False), scores, strict=True)):
        values = row._asdict()
        lines.append(
            json.dumps(
                {
                    "timestamp": stamp(values["event_timestamp"], i),
                    "request_id": f"req-{i}",
                    "customer_id": int(values["customer_id"]),
                    "model_name": "{{ cookiecutter.project_slug }}",
                    "model_version": "3",
                    "features": {c: float(values[c]) for c in FEATURE_COLUMNS},
                    "score": float(score),
                    "predicted": int(score >= threshold),
                }
            )
        )
    return lines


def test_no_drift_writes_reports_and_does_not_retrain(check, tmp_path: Path) -> None:
    result = check()
    s = result.summary
    assert s["status"] == "checked"
    assert s["retrain"] is False, s["reasons"]
    assert s["reasons"] == []
    assert s["issues"] == []
    assert s["feature_drift"]["share"] < s["feature_drift"]["max_share"]
    assert s["prediction_drift"]["drifted"] is False
    assert s["model_quality"]["status"] == "checked"
    assert s["model_quality"]["failed"] == []
    assert s["window"]["batch_first_day"] == "2026-04-01"
    assert s["window"]["batch_last_day"] == "2026-04-07"

    out = tmp_path / "monitoring"
    run_dir = write_outputs(result, out, keep_runs=5)
    assert (run_dir / "drift.html").stat().st_size > 100_000  # Evidently's self-contained page
    assert (run_dir / "quality.html").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["retrain"] is False
    assert summary["reports"]["drift"] == f"runs/{run_dir.name}/drift.html"
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["retrain"] == 0
    assert 0.0 <= metrics["drift_share"] < 0.3
    assert set(metrics["feature_drift"]) == set(summary["feature_drift"]["features"])
    assert metrics["roc_auc"] > 0.7
    index = (out / "index.html").read_text()
    assert f"runs/{run_dir.name}/drift.html" in index
    assert ">ok<" in index


def test_covariate_drift_names_the_drifted_features_and_retrains(check) -> None:
    result = check(covariate=1.0)
    drift = result.summary["feature_drift"]
    assert result.retrain is True
    shifted = {"monthly_charges", "total_charges", "usage_gb_30d", "contract"}
    assert shifted <= set(drift["drifted"])
    assert not {"late_payments_90d", "payment_method", "segment"} & set(drift["drifted"])
    for name in drift["drifted"]:
        column = drift["features"][name]
        assert column["score"] >= column["threshold"]
    assert drift["share"] >= drift["max_share"]
    first = result.reasons[0]
    assert first.startswith(f"drift share {drift['share']:.2f} >= 0.30")
    assert "monthly_charges" in first
    assert any(r.startswith("prediction drift: score wasserstein") for r in result.reasons)


def test_concept_drift_fails_the_quality_check_and_retrains(check) -> None:
    result = check(concept=1.0)
    s = result.summary
    assert result.retrain is True
    # the inputs did not move: only the outcome did, and quality on labelled rows shows it
    assert s["feature_drift"]["share"] < s["feature_drift"]["max_share"]
    assert s["prediction_drift"]["drifted"] is False
    quality = s["model_quality"]
    assert "roc_auc" in quality["failed"]
    assert quality["current"]["roc_auc"] < quality["reference"]["roc_auc"]
    roc = f"roc_auc {quality['current']['roc_auc']:.3f} < {quality['thresholds']['roc_auc']:.3f}"
    assert roc in result.reasons
    assert not any(r.startswith("drift share") for r in result.reasons)


def test_sampling_reaches_the_same_verdict(
    tiny_raw, tiny_ingest, splits, model, cfg, check
) -> None:
    booster, meta, test_predictions = model
    sampled_cfg = cfg.model_copy(update={"sample_rows": 1500})
    for drift in ({}, {"covariate": 1.0}, {"concept": 1.0}):
        raw = pd.concat([tiny_raw, current_batches(tiny_ingest, **drift)], ignore_index=True)
        data = build_monitor_data(
            raw=raw,
            reference=splits.train,
            booster=booster,
            threshold=meta.threshold,
            cfg=sampled_cfg,
            test_predictions=test_predictions,
        )
        sampled = run_checks(data, sampled_cfg).summary
        full = check(**drift).summary
        assert sampled["window"]["sampled_current_rows"] == 1500
        assert sampled["window"]["sampled_reference_rows"] == 1500
        assert sampled["retrain"] == full["retrain"], (drift, sampled["reasons"], full["reasons"])
        assert bool(sampled["feature_drift"]["drifted"]) == bool(full["feature_drift"]["drifted"])


def test_empty_current_window_is_reported_and_never_retrains(
    tiny_raw, splits, model, cfg, tmp_path: Path
) -> None:
    booster, meta, _ = model
    data = build_monitor_data(
        raw=tiny_raw.iloc[:0],
        reference=splits.train,
        booster=booster,
        threshold=meta.threshold,
        cfg=cfg,
    )
    result = run_checks(data, cfg)
    s = result.summary
    assert s["retrain"] is False
    assert s["status"] == "insufficient_data"
    assert any("current window is empty" in w for w in s["warnings"])
    assert result.drift_report is None
    write_outputs(result, tmp_path, keep_runs=5)
    assert "drift_share" not in json.loads((tmp_path / "metrics.json").read_text())
    assert "not enough data" in (tmp_path / "index.html").read_text()

    few = build_monitor_data(
        raw=tiny_raw.tail(50),
        reference=splits.train,
        booster=booster,
        threshold=meta.threshold,
        cfg=cfg,
    )
    s = run_checks(few, cfg).summary
    assert s["retrain"] is False
    assert any("monitor.min_rows=200" in w for w in s["warnings"])


def test_missing_columns_are_named(tiny_raw, splits, model, cfg) -> None:
    booster, meta, _ = model
    with pytest.raises(
        StageInputError, match="column\\(s\\) contract missing from the raw batches"
    ):
        build_monitor_data(
            raw=tiny_raw.drop(columns=["contract"]),
            reference=splits.train,
            booster=booster,
            threshold=meta.threshold,
            cfg=cfg,
        )
    with pytest.raises(
        StageInputError, match="column\\(s\\) churned missing from the training set"
    ):
        build_monitor_data(
            raw=tiny_raw,
            reference=splits.train.drop(columns=["churned"]),
            booster=booster,
            threshold=meta.threshold,
            cfg=cfg,
        )


def test_malformed_log_lines_are_skipped_and_reported_without_a_trigger(
    tiny_raw, tiny_ingest, splits, model, cfg, tmp_path: Path
) -> None:
    booster, meta, _ = model
    current = current_batches(tiny_ingest)
    good = log_lines(current.head(300), booster, meta.threshold)
    entry = json.loads(good[0])
    bad = [
        "{not json",
        "[1, 2, 3]",
        json.dumps({k: v for k, v in entry.items() if k != "score"}),
        json.dumps({**entry, "score": 1.7}),
        json.dumps({**entry, "timestamp": "yesterday"}),
        json.dumps({**entry, "features": None}),
        json.dumps({**entry, "features": {**entry["features"], "tenure_months": "ten"}}),
        json.dumps(
            {
                **entry,
                "features": {k: v for k, v in entry["features"].items() if k != "usage_gb_30d"},
            }
        ),
    ]
    path = tmp_path / "predictions.jsonl"
    path.write_text("\n".join([*good[:150], *bad, "", *good[150:]]) + "\n")

    log = read_prediction_log(path)
    assert log is not None
    assert len(log.frame) == 300
    assert log.lines == 308
    assert [n for n, _ in log.malformed] == list(range(151, 159))
    reasons = dict(log.malformed)
    assert reasons[151].startswith("not JSON")
    assert reasons[152] == "not a JSON object"
    assert reasons[153] == "missing score"
    assert reasons[154] == "score is not a probability (1.7)"
    assert "timestamp is not ISO-8601" in reasons[155]
    assert reasons[156] == "'features' is not an object"
    assert reasons[157] == "feature tenure_months is not a number ('ten')"
    assert reasons[158] == "features lack usage_gb_30d"

    raw = pd.concat([tiny_raw, current], ignore_index=True)
    data = build_monitor_data(
        raw=raw,
        reference=splits.train,
        booster=booster,
        threshold=meta.threshold,
        cfg=cfg,
        prediction_log=log,
    )
    assert data.window["prediction_log"]["rows"] == 300
    assert (
        data.window["prediction_log"]["labelled_rows"] == 300
    )  # labels joined by customer and day
    assert data.window["prediction_log"]["model_versions"] == ["3"]
    assert data.window["current_rows"] == len(current) + 300
    s = run_checks(data, cfg).summary
    assert s["retrain"] is False, s["reasons"]
    assert s["issues"][0].startswith(f"prediction log {path}: 8 of 308 lines malformed and skipped")
    assert "line 151: not JSON" in s["issues"][0]

    assert read_prediction_log(tmp_path / "absent.jsonl") is None


def test_new_categories_and_missing_values_are_issues_not_triggers(
    tiny_raw, tiny_ingest, splits, model, cfg, tmp_path: Path
) -> None:
    booster, meta, _ = model
    current = current_batches(tiny_ingest)
    rng = np.random.default_rng(0)
    current.loc[rng.random(len(current)) < 0.3, "usage_gb_30d"] = np.nan
    current.loc[current.index[:40], "contract"] = "weekly"
    lines = []
    for i, line in enumerate(log_lines(current.iloc[100:400], booster, meta.threshold)):
        entry = json.loads(line)
        if i < 20:  # a contract the serving side could not encode: every one-hot is zero
            entry["features"].update(
                {c: 0.0 for c in entry["features"] if c.startswith("contract_")}
            )
        lines.append(json.dumps(entry))
    path = tmp_path / "predictions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    data = build_monitor_data(
        raw=pd.concat([tiny_raw, current], ignore_index=True),
        reference=splits.train,
        booster=booster,
        threshold=meta.threshold,
        cfg=cfg,
        prediction_log=read_prediction_log(path),
    )
    s = run_checks(data, cfg).summary
    assert s["retrain"] is False, s["reasons"]
    issues = " | ".join(s["issues"])
    assert "new categories in contract: 'weekly' (40), '(unseen)' (20)" in issues
    assert "missing values in usage_gb_30d" in issues
    assert s["data_quality"]["new_categories"]["contract"]["rows"] == 60
    assert s["data_quality"]["missing_share"]["usage_gb_30d"]["current"] > 0.25
    assert s["data_quality"]["missing_share"]["usage_gb_30d"]["reference"] < 0.05


def test_verdict_names_every_crossed_threshold() -> None:
    feature_drift = {
        "status": "checked",
        "share": 0.5,
        "max_share": 0.3,
        "drifted": ["a", "b"],
        "features": {"a": {}, "b": {}, "c": {}, "d": {}},
    }
    prediction_drift = {
        "status": "checked",
        "drifted": True,
        "stattest": "ks",
        "score": 0.001,
        "threshold": 0.05,
    }
    quality = {
        "status": "checked",
        "failed": ["roc_auc"],
        "current": {"roc_auc": 0.61},
        "thresholds": {"roc_auc": 0.7},
    }
    retrain, reasons = verdict(feature_drift, prediction_drift, quality)
    assert retrain is True
    assert reasons == [
        "drift share 0.50 >= 0.30 (2 of 4 features drifted: a, b)",
        "prediction drift: score ks p-value 0.001 < 0.05",
        "roc_auc 0.610 < 0.700",
    ]
    skipped = {"status": "skipped"}
    assert verdict(skipped, skipped, skipped) == (False, [])


def test_precision_is_judged_as_a_lift_over_the_labelled_rows_positive_rate(model, cfg) -> None:
    _, meta, test_predictions = model
    # the test days as labelled current rows (label, score, prediction): positive rate about 0.1
    labelled = _quality_reference(test_predictions, meta.threshold)

    def judge(rows: pd.DataFrame, **limits: Any) -> dict[str, Any]:
        quality = cfg.quality.model_copy(
            update={"min_roc_auc": 0.5, "min_recall": 0.0, "min_labelled_rows": 100, **limits}
        )
        data = MonitorData(rows, rows, None, meta.threshold, {})
        return quality_check(rows, data, cfg.model_copy(update={"quality": quality}))

    # The same model on labelled rows where most negatives are missing: base rate about 0.4.
    keep = (labelled[LABEL] == 1) | (np.random.default_rng(0).random(len(labelled)) < 0.15)
    high = labelled[keep.to_numpy()]
    lift = {"min_precision_lift": 2.0, "min_precision": None}
    low_rate = judge(labelled, **lift)
    assert low_rate["current"]["positive_rate"] < 0.15 and low_rate["failed"] == []
    high_rate = judge(high, **lift)
    precision, rate = high_rate["current"]["precision"], high_rate["current"]["positive_rate"]
    assert rate > 0.3 and high_rate["failed"] == ["precision"]
    assert precision > 0.15, "above the old absolute min_precision: only the lift fails it"
    assert high_rate["thresholds"]["precision"] == pytest.approx(2.0 * rate)
    skipped = {"status": "skipped"}
    assert verdict(skipped, skipped, high_rate) == (
        True,
        [f"precision {precision:.3f} < 2.0 x positive rate {rate:.3f} ({2.0 * rate:.3f})"],
    )
    # An absolute floor instead of the lift, or both (the higher one binds).
    assert judge(high, min_precision_lift=None, min_precision=0.15)["failed"] == []
    both = judge(high, min_precision_lift=0.5, min_precision=0.99)
    assert both["failed"] == ["precision"] and both["thresholds"]["precision"] == 0.99
    assert verdict(skipped, skipped, both)[1] == [f"precision {precision:.3f} < 0.990"]
    neither = judge(high, min_precision_lift=None, min_precision=None)
    assert "precision" not in neither["thresholds"] and neither["failed"] == []


def test_precision_floor_is_the_higher_of_the_lift_and_the_absolute_floor(cfg) -> None:
    limits = cfg.quality.model_copy(update={"min_precision_lift": 1.5, "min_precision": 0.15})
    assert precision_floor(limits, 0.2) == (pytest.approx(0.3), "1.5 x positive rate 0.200 (0.300)")
    assert precision_floor(limits, 0.05) == (0.15, None)
    assert precision_floor(limits.model_copy(update={"min_precision": None}), 0.0)[0] == 0.0
    off = limits.model_copy(update={"min_precision_lift": None, "min_precision": None})
    assert precision_floor(off, 0.2) is None
    shipped = cfg.quality
    assert shipped.min_precision_lift == 1.5 and shipped.min_precision is None


def test_per_feature_overrides_apply_and_unknown_features_are_named(
    tiny_raw, tiny_ingest, splits, model, cfg
) -> None:
    booster, meta, _ = model
    override = FeatureDriftOverride(stattest="psi", threshold=0.5)
    drift = cfg.drift.model_copy(update={"per_feature": {"tenure_months": override}})
    custom = cfg.model_copy(update={"drift": drift, "sample_rows": 2000})
    data = build_monitor_data(
        raw=pd.concat([tiny_raw, current_batches(tiny_ingest)], ignore_index=True),
        reference=splits.train,
        booster=booster,
        threshold=meta.threshold,
        cfg=custom,
    )
    features = run_checks(data, custom).summary["feature_drift"]["features"]
    assert features["tenure_months"]["stattest"] == "psi"
    assert features["tenure_months"]["threshold"] == 0.5
    assert features["monthly_charges"]["stattest"] == "wasserstein"

    typo = type(cfg.drift).model_validate({"per_feature": {"tenure": {"threshold": 0.2}}})
    with pytest.raises(ConfigError, match="unknown feature\\(s\\) tenure"):
        run_checks(data, cfg.model_copy(update={"drift": typo}))


def test_old_runs_are_pruned_and_the_index_lists_the_rest(check, tmp_path: Path) -> None:
    result = check()
    base = dt.datetime(2026, 4, 8, 6, 0, tzinfo=dt.UTC)
    for day in range(3):
        write_outputs(result, tmp_path, keep_runs=2, now=base + dt.timedelta(days=day))
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["20260409T060000Z", "20260410T060000Z"]
    index = (tmp_path / "index.html").read_text()
    assert index.index("20260410T060000Z") < index.index("20260409T060000Z")  # newest first
    assert "20260408T060000Z" not in index


def test_stattests_are_checked_in_params(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["monitor"]["drift"]["num_stattest"] = "magic"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    shutil.copy(root / "interval.yaml", tmp_path / "interval.yaml")
    with pytest.raises(ConfigError, match=r"monitor\.drift\.num_stattest"):
        load_params(path)


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_raw,
    tiny_ingest,
    split_config,
    splits,
    model,
    cfg,
    project_params,
) -> Path:
    """A project folder holding what the monitor stage reads: raw batches (the training
    window and a week with covariate drift), training set, model, test predictions, a log."""
    root = tmp_path_factory.mktemp("monitor-project")
    booster, meta, test_predictions = model
    current = current_batches(tiny_ingest, covariate=1.0)
    raw = pd.concat([tiny_raw, current], ignore_index=True)
    for day, batch in raw.groupby(raw["event_timestamp"].dt.date):
        path = batch_path(root / "data/raw", day)
        path.parent.mkdir(parents=True, exist_ok=True)
        batch.to_parquet(path, index=False)
    training = point_in_time_join(build_labels(tiny_raw), build_features(tiny_raw))
    (root / "data/training").mkdir(parents=True)
    training.to_parquet(root / "data/training/training_set.parquet", index=False)
    save_model(booster, meta, root / "models")
    (root / "data/predictions").mkdir(parents=True)
    test_predictions.to_parquet(root / "data/predictions/test_predictions.parquet", index=False)
    (root / "logs").mkdir()
    lines = log_lines(current.head(200), booster, meta.threshold)
    (root / "logs/predictions.jsonl").write_text("\n".join([*lines, "{oops"]) + "\n")
    params = project_params.model_dump(mode="json")
    interval = params.pop("interval")  # interval.yaml, beside params.yaml
    params["split"] = split_config.model_dump(mode="json")
    params["monitor"] = cfg.model_dump(mode="json")
    params["mlflow"]["tracking_uri"] = f"sqlite:///{root / 'mlflow.db'}"
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "interval.yaml").write_text(yaml.safe_dump(interval))
    return root


def test_monitor_command_writes_the_verdict_and_logs_to_mlflow(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    done = CliRunner().invoke(app, ["monitor"])
    assert done.exit_code == 0, done.output  # drift found is a verdict, not a failure
    assert "monitor: RETRAIN - drift share" in done.output
    assert "1 of 201 lines malformed" in done.output
    summary = json.loads((project / "reports/monitoring/summary.json").read_text())
    assert summary["retrain"] is True
    assert summary["window"]["prediction_log"]["rows"] == 200
    assert (project / "reports/monitoring" / summary["reports"]["drift"]).is_file()
    assert (project / "reports/monitoring/index.html").is_file()

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("{{ cookiecutter.project_slug }}")
    runs = client.search_runs([experiment.experiment_id], "tags.stage = 'monitor'")
    assert len(runs) == 1
    run_ = runs[0]
    assert run_.data.tags["retrain"] == "true"
    assert run_.data.tags["reasons"].startswith("drift share")
    assert run_.data.metrics["drift_share"] == summary["feature_drift"]["share"]
    artifacts = {a.path for a in client.list_artifacts(run_.info.run_id, "monitoring")}
    assert {
        "monitoring/drift.html",
        "monitoring/quality.html",
        "monitoring/summary.json",
    } <= artifacts


def test_monitor_command_fails_clearly_on_unusable_input(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(
        project, broken, ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts", "reports")
    )
    for batch in (broken / "data/raw").glob("*.parquet"):
        pd.read_parquet(batch).drop(columns=["contract"]).to_parquet(batch, index=False)
    monkeypatch.chdir(broken)
    done = CliRunner().invoke(app, ["monitor"])
    assert done.exit_code == 1
    assert "monitor failed: column(s) contract missing from the raw batches" in done.output
    assert "Traceback" not in done.output
    assert not (broken / "reports/monitoring/summary.json").exists()  # no verdict, no trigger


# --------------------------------------------------------------------------- the HTML report in a browser


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium; installs Debian's `chromium` package when missing and allowed."""
    if found := find_chromium():
        return found
    if not shutil.which("apt-get"):
        pytest.skip("Chromium is not installed and apt-get is not available to install it")
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif (
        shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], check=False).returncode == 0
    ):
        prefix = ["sudo", "-n"]
    else:
        pytest.skip("Chromium is not installed; installing it needs root or passwordless sudo")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, env=env, timeout=1800, check=False
        )
        if done.returncode != 0:
            pytest.skip(f"could not install Chromium ({' '.join(command)}): {done.stderr[-400:]}")
    found = find_chromium()
    if not found:
        pytest.skip("apt-get installed chromium but no chromium binary is on PATH")
    return found


class VisibleText(HTMLParser):
    """Text rendered in table cells (script and style content excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self._skip = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if not self._skip and self._cell is not None:
            self._cell.append(data)


@pytest.mark.e2e
def test_drift_report_renders_the_drift_table_in_headless_chromium(
    check, chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    result = check(covariate=1.0)
    out = tmp_path_factory.mktemp("report")
    run_dir = write_outputs(result, out, keep_runs=5)
    report = run_dir / "drift.html"
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={out / 'profile'}",
        "--virtual-time-budget=20000",  # let the report's JavaScript render before dumping
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = VisibleText()
    parser.feed(dom.stdout)
    cells = parser.cells
    assert cells, "the report rendered no table"
    for column in result.summary["feature_drift"]["drifted"]:
        assert column in cells, f"drifted column {column} is not in a rendered table cell"
    assert any(cell.lower() == "detected" for cell in cells)
    assert any(cell.lower() == "not detected" for cell in cells)

    screenshot = out / "drift.png"
    shot = subprocess.run(
        [*flags, "--window-size=1400,2400", f"--screenshot={screenshot}", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000
    kept = ARTIFACTS / "monitoring-drift-report.png"  # pytest's tmp dirs rotate: keep a copy
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, kept)
    print(f"drift report screenshot kept at {kept}")
