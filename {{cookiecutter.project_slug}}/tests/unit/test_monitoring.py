"""Monitoring: drift, data quality and model quality decide retraining; bad inputs never do.
Every test holds for the project's contract and for one unlike it (tests/other_contracts.py)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.batches import batch_path
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import (
    FeatureDriftOverride,
    MonitoringConfig,
    MonitoringDriftConfig,
    Params,
    SplitConfig,
    TrainConfig,
    Window,
    load_params,
)
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_frame
from {{ cookiecutter.package_name }}.errors import ConfigError, StageInputError
from {{ cookiecutter.package_name }}.features import build_features, build_labels
from {{ cookiecutter.package_name }}.model import load_model, predict_proba, save_model
from {{ cookiecutter.package_name }}.monitoring import (
    MonitorData,
    MonitoredColumns,
    MonitorResult,
    build_monitor_data,
    describe,
    monitoring_view,
    run_checks,
    verdict,
    write_outputs,
)
from {{ cookiecutter.package_name }}.monitoring.checks import precision_floor, quality_check
from {{ cookiecutter.package_name }}.monitoring.data import UNSEEN, quality_reference
from {{ cookiecutter.package_name }}.prediction_log import read_prediction_log
from {{ cookiecutter.package_name }}.split import Splits, time_split
from {{ cookiecutter.package_name }}.training import train_model

from other_contracts import LOAN, with_second_contract

WEEK = [dt.date(2026, 4, 1) + dt.timedelta(days=i) for i in range(7)]  # after the training days
END = WEEK[-1]
ROWS = 400
ARTIFACTS = Path(__file__).resolve().parents[2] / "reports" / "test-artifacts"  # git-ignored


def with_horizon(contract: DatasetContract, days: int) -> DatasetContract:
    return contract.model_copy(
        update={"label": contract.label.model_copy(update={"horizon_days": days})}
    )


@dataclass
class Trained:
    """A model trained on a contract's tiny window, and what monitoring reads besides."""

    contract: DatasetContract
    raw: pd.DataFrame  # the training window's raw rows
    splits: Splits
    booster: Any
    meta: Any
    test_predictions: pd.DataFrame

    def week(self, **drift: float) -> pd.DataFrame:
        """The week after the training window, with drift from its first day."""
        return contract_frame(self.contract, WEEK, ROWS, population=3000, seed=8, **drift)

    def training_set(self) -> pd.DataFrame:
        c = self.contract
        labels, features = build_labels(self.raw, c), build_features(self.raw, c)
        return labels.merge(features, on=[c.entity.key, c.timestamp])


@pytest.fixture(scope="module", params=with_second_contract("loan"))
def trained(
    request: pytest.FixtureRequest,
    contract: DatasetContract,
    tiny_window: Window,
    split_config: SplitConfig,
    train_config: TrainConfig,
) -> Trained:
    c = contract if request.param == "project" else LOAN
    raw = contract_frame(c, tiny_window.dates(), ROWS, population=3000, seed=7)
    labels, features = build_labels(raw, c), build_features(raw, c)
    splits = time_split(labels.merge(features, on=[c.entity.key, c.timestamp]), split_config, c)
    booster, meta = train_model(splits, train_config, c)
    scores = predict_proba(booster, splits.test)
    test_predictions = splits.test.drop(columns=c.feature_columns).assign(
        score=scores, predicted=(scores >= meta.threshold).astype("int64")
    )
    return Trained(c, raw, splits, booster, meta, test_predictions)


@pytest.fixture(scope="module")
def cfg(project_params: Params) -> MonitoringConfig:
    """The project's monitoring params, with this scenario's window (a week of current
    days, whatever `dataset init` chose for the project) and quality floors for the tiny
    test model."""
    base = project_params.monitor
    quality = base.quality.model_copy(
        update={"min_roc_auc": 0.70, "min_recall": 0.25, "min_labelled_rows": 300}
    )
    update = {"current_days": 7, "min_rows": 200, "sample_rows": 50_000}
    drift = MonitoringDriftConfig()  # distances, as the tests' thresholds assume
    return base.model_copy(update={"quality": quality, "drift": drift, **update})


def monitor_data(
    t: Trained,
    cfg: MonitoringConfig,
    current: pd.DataFrame | None = None,
    contract: DatasetContract | None = None,
    **kwargs: Any,
) -> MonitorData:
    """The training window plus `current` (default: the next week, no drift)."""
    current = t.week() if current is None else current
    return build_monitor_data(
        raw=pd.concat([t.raw, current], ignore_index=True),
        reference=t.splits.train,
        booster=t.booster,
        threshold=t.meta.threshold,
        cfg=cfg,
        contract=contract or t.contract,
        test_predictions=t.test_predictions,
        end_date=END,
        **kwargs,
    )


@pytest.fixture(scope="module")
def check(trained: Trained, cfg: MonitoringConfig) -> Callable[..., MonitorResult]:
    """Run the checks on a scenario: the next week with the given drift, labels known
    `horizon` days after the event (results cached: each costs seconds of Evidently)."""
    cache: dict[tuple, MonitorResult] = {}

    def run(horizon: int = 0, **drift: float) -> MonitorResult:
        key = (horizon, *sorted(drift.items()))
        if key not in cache:
            contract = with_horizon(trained.contract, horizon)
            data = monitor_data(trained, cfg, trained.week(**drift), contract)
            cache[key] = run_checks(data, cfg)
        return cache[key]

    return run


def stamp(when: pd.Timestamp, i: int) -> str:
    """ISO-8601 UTC, as `datetime.isoformat()` (the serving API) or with a `Z` suffix."""
    return when.isoformat() if i % 2 else when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log_lines(t: Trained, rows: pd.DataFrame) -> list[str]:
    """Prediction-log lines as the serving API writes them, one per raw row."""
    c = t.contract
    features = build_features(rows.reset_index(drop=True), c)
    scores = predict_proba(t.booster, features)
    lines = []
    for i, score in enumerate(scores):
        row = features.iloc[i]
        key = row[c.entity.key]
        record = {
            "timestamp": stamp(row[c.timestamp], i),
            "entity_id": int(key) if c.entity.dtype == "int" else str(key),
            "model_name": "model",
            "model_version": "3",
            "features": {f: float(row[f]) for f in c.feature_columns},
            "score": float(score),
            "predicted": int(score >= t.meta.threshold),
        }
        lines.append(json.dumps(record))
    return lines


# --------------------------------------------------------------------------- the monitored view


def test_the_monitored_view_decodes_features_back_to_what_people_read(trained: Trained) -> None:
    c = trained.contract
    columns = MonitoredColumns.of(c)
    assert columns.monitored == [*c.numeric, *c.derived, *c.categorical]
    raw = trained.raw.head(50).reset_index(drop=True)
    features = build_features(raw, c)
    view = monitoring_view(features, columns)
    for column in c.numeric:  # a value flagged missing is missing again
        pd.testing.assert_series_equal(
            view[column], raw[column].astype("float64"), check_names=False
        )
    for column in c.categorical:  # the raw category, null where the raw value was null
        expected = raw[column].astype(object).where(raw[column].notna(), None)
        assert view[column].tolist() == expected.tolist()
    for column, spec in c.categorical.items():  # a group with no category set
        zeroed = features.copy()
        zeroed[c.one_hot_groups[column]] = 0.0
        decoded = monitoring_view(zeroed, columns)[column]
        assert decoded.tolist() == [None if spec.nullable else UNSEEN] * len(raw)


def test_a_contract_column_named_like_a_monitoring_column_is_refused() -> None:
    clash = LOAN.model_copy(update={"numeric": {"score": LOAN.numeric["balance"]}})
    with pytest.raises(ConfigError, match="column\\(s\\) score, which monitoring adds"):
        MonitoredColumns.of(clash)


# --------------------------------------------------------------------------- drift and quality


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


def test_covariate_drift_names_the_drifted_features_and_retrains(check, trained: Trained) -> None:
    result = check(covariate=1.0)
    drift = result.summary["feature_drift"]
    c = trained.contract
    assert result.retrain is True
    assert {*c.numeric, *c.categorical} <= set(drift["drifted"])  # every input shifted
    for name in drift["drifted"]:
        column = drift["features"][name]
        assert column["score"] >= column["threshold"]
    assert drift["share"] >= drift["max_share"]
    first = result.reasons[0]
    assert first.startswith(f"drift share {drift['share']:.2f} >= 0.30")
    assert next(iter(c.numeric)) in first
    assert any(r.startswith("prediction drift: score wasserstein") for r in result.reasons)


def test_concept_drift_fails_the_quality_check_and_retrains(check) -> None:
    result = check(concept=1.0)  # labels known at once (horizon 0): the week's labels count
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
    assert quality["days"]["first_day"] == "2026-04-01"
    assert quality["days"]["last_day"] == "2026-04-07"


def test_with_a_label_horizon_quality_waits_for_matured_labels(
    trained: Trained, cfg: MonitoringConfig, check
) -> None:
    """Labels count once `dataset.label.horizon_days` have passed at the window's end:
    quality is judged on the newest current_days days of matured labels, drift on the
    newest days, and the summary says which days quality was judged on."""
    horizon = with_horizon(trained.contract, 10)
    data = monitor_data(trained, cfg, trained.week(concept=1.0), horizon)
    label, ts = horizon.label.column, horizon.timestamp
    quality = data.window["quality"]
    assert quality["label_horizon_days"] == 10
    assert quality["labels_known_before"] == "2026-03-29T00:00:00+00:00"  # Apr 8 - 10 days
    assert (quality["first_day"], quality["last_day"]) == ("2026-03-22", "2026-03-28")
    matured = trained.raw.loc[trained.raw[ts].dt.date.between(dt.date(2026, 3, 22), END)]
    matured = matured.loc[matured[ts] < pd.Timestamp("2026-03-29", tz="UTC")]
    assert quality["rows"] == len(data.labelled) == len(matured)
    assert data.labelled[ts].min().date() == dt.date(2026, 3, 22)
    assert data.labelled[ts].max().date() == dt.date(2026, 3, 28)
    assert data.current[ts].min().date() == WEEK[0]  # drift: still the newest week
    assert data.current[label].isna().all()  # the week's labels are not known yet

    s = run_checks(data, cfg).summary
    assert s["model_quality"]["status"] == "checked"
    assert s["model_quality"]["failed"] == []  # the concept drift is not visible yet
    assert s["model_quality"]["days"]["first_day"] == "2026-03-22"
    assert s["retrain"] is False, s["reasons"]
    assert "labelled rows of 2026-03-22..2026-03-28" in describe(MonitorResult(summary=s))

    later = check(horizon=3, concept=1.0).summary["model_quality"]  # 4 drifted days matured
    assert (later["days"]["first_day"], later["days"]["last_day"]) == ("2026-03-29", "2026-04-04")
    assert "roc_auc" in later["failed"]


def test_too_few_matured_labels_skip_quality_naming_the_days(
    trained: Trained, cfg: MonitoringConfig
) -> None:
    horizon = with_horizon(trained.contract, 60)  # nothing in the data is old enough
    data = monitor_data(trained, cfg, contract=horizon)
    assert len(data.labelled) == 0
    known_before = END + dt.timedelta(days=1 - 60)
    first, last = known_before - dt.timedelta(days=7), known_before - dt.timedelta(days=1)
    quality = run_checks(data, cfg).summary["model_quality"]
    assert quality["status"] == "skipped"
    assert f"0 labelled rows in the days {first}..{last}" in quality["reason"]
    assert "horizon_days: 60" in quality["reason"]


def test_sampling_reaches_the_same_verdict(trained: Trained, cfg: MonitoringConfig, check) -> None:
    sampled_cfg = cfg.model_copy(update={"sample_rows": 1500})
    for drift in ({}, {"covariate": 1.0}, {"concept": 1.0}):
        data = monitor_data(
            trained, sampled_cfg, trained.week(**drift), with_horizon(trained.contract, 0)
        )
        sampled = run_checks(data, sampled_cfg).summary
        full = check(**drift).summary
        assert sampled["window"]["sampled_current_rows"] == 1500
        assert sampled["window"]["sampled_reference_rows"] == 1500
        assert sampled["retrain"] == full["retrain"], (drift, sampled["reasons"], full["reasons"])
        assert bool(sampled["feature_drift"]["drifted"]) == bool(full["feature_drift"]["drifted"])


def test_empty_current_window_is_reported_and_never_retrains(
    trained: Trained, cfg: MonitoringConfig, tmp_path: Path
) -> None:
    t = trained
    data = build_monitor_data(
        raw=t.raw.iloc[:0],
        reference=t.splits.train,
        booster=t.booster,
        threshold=t.meta.threshold,
        cfg=cfg,
        contract=t.contract,
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
        raw=t.raw.tail(50),
        reference=t.splits.train,
        booster=t.booster,
        threshold=t.meta.threshold,
        cfg=cfg,
        contract=t.contract,
    )
    s = run_checks(few, cfg).summary
    assert s["retrain"] is False
    assert any("monitor.min_rows=200" in w for w in s["warnings"])


def test_missing_columns_are_named_with_where_they_come_from(
    trained: Trained, cfg: MonitoringConfig
) -> None:
    c = trained.contract
    category, label = next(iter(c.categorical)), c.label.column
    reference = trained.splits.train
    with pytest.raises(
        StageInputError,
        match=f"column\\(s\\) {category} \\(dataset.categorical\\) missing from the raw batches",
    ):
        build_monitor_data(
            raw=trained.raw.drop(columns=[category]),
            reference=reference,
            booster=trained.booster,
            threshold=trained.meta.threshold,
            cfg=cfg,
            contract=c,
        )
    for column, origin in (
        (label, "dataset.label.column"),
        (c.one_hot_groups[category][0], f"one-hot of dataset.categorical {category}"),
    ):
        with pytest.raises(StageInputError, match=f"{column} \\({origin}\\) missing from the tr"):
            build_monitor_data(
                raw=trained.raw,
                reference=reference.drop(columns=[column]),
                booster=trained.booster,
                threshold=trained.meta.threshold,
                cfg=cfg,
                contract=c,
            )
    with pytest.raises(
        StageInputError, match=f"{label} \\(dataset.label.column\\) missing from the test"
    ):
        quality_reference(
            trained.test_predictions.drop(columns=[label]), 0.5, MonitoredColumns.of(c)
        )


# --------------------------------------------------------------------------- the prediction log


def test_served_predictions_join_matured_labels_and_malformed_lines_are_issues(
    trained: Trained, cfg: MonitoringConfig, tmp_path: Path
) -> None:
    t, c = trained, with_horizon(trained.contract, 10)
    current = t.week()
    matured = t.raw.loc[t.raw[c.timestamp].dt.date == dt.date(2026, 3, 25)].head(150)
    good = [*log_lines(t, matured), *log_lines(t, current.head(300))]
    entry = json.loads(good[0])
    bad = [
        "{not json",
        "[1, 2, 3]",
        json.dumps({k: v for k, v in entry.items() if k != "score"}),
        json.dumps({**entry, "score": 1.7}),
        json.dumps({**entry, "timestamp": "yesterday"}),
        json.dumps({**entry, "features": None}),
        json.dumps({**entry, "features": {**entry["features"], c.feature_columns[0]: "ten"}}),
    ]
    path = tmp_path / "predictions.jsonl"
    path.write_text("\n".join([*good[:150], *bad, "", *good[150:]]) + "\n")
    log = read_prediction_log(path, c)
    assert log is not None and len(log.frame) == 450 and log.lines == 457
    assert [n for n, _ in log.malformed] == list(range(151, 158))

    data = monitor_data(t, cfg, current, c, prediction_log=log)
    served = data.window["prediction_log"]
    assert served["rows"] == 300  # the newest week's served predictions
    assert served["labelled_rows"] == 150  # labels joined by entity and day, where matured
    assert served["model_versions"] == ["3"]
    assert data.window["current_rows"] == len(current) + 300
    labelled = data.labelled.loc[data.labelled["source"] == "serving"]
    assert labelled[c.label.column].tolist() == matured[c.label.column].astype(float).tolist()
    s = run_checks(data, cfg).summary
    assert s["retrain"] is False, s["reasons"]
    assert s["issues"][0].startswith(f"prediction log {path}: 7 of 457 lines malformed")
    assert "line 151" in s["issues"][0]
    assert read_prediction_log(tmp_path / "absent.jsonl", c) is None


def test_each_model_version_in_the_log_gets_its_own_drift_and_quality(
    trained: Trained, cfg: MonitoringConfig, tmp_path: Path
) -> None:
    """A rollout's log: version 3 (the champion) answers most entities and version 4 a
    canary's few; version 5 scores version 3's requests in the shadow. Labels have matured
    for the older requests, all of them version 3's."""
    from sklearn.metrics import precision_score, roc_auc_score

    t, c = trained, with_horizon(trained.contract, 10)
    matured = t.raw.loc[
        t.raw[c.timestamp].dt.date.between(dt.date(2026, 3, 22), dt.date(2026, 3, 28))
    ]
    current = t.week()
    entries = [
        json.loads(line) for line in log_lines(t, pd.concat([matured.head(700), current.head(600)]))
    ]
    threshold = t.meta.threshold
    for i, entry in enumerate(entries):
        if i >= 700 and i % 4 == 0:  # a quarter of the current requests: the canary
            entry["model_version"] = "4"
            continue
        shadow = entry["score"] ** 2  # another model's score
        entry.update(
            shadow_version="5", shadow_score=shadow, shadow_predicted=int(shadow >= threshold)
        )
    path = tmp_path / "predictions.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    data = monitor_data(t, cfg, current, c, prediction_log=read_prediction_log(path, c))
    result = run_checks(data, cfg)
    s = result.summary
    assert s["retrain"] is False, s["reasons"]  # the verdict is the whole window's, as before
    versions = {(v["version"], v["role"]): v for v in s["model_versions"]["versions"]}
    assert set(versions) == {("3", "served"), ("4", "served"), ("5", "shadow")}

    def rows(version: str) -> list[dict]:  # the current window's requests `version` answered
        return [e for e in entries[700:] if e["model_version"] == version]

    champion, canary, shadow = (
        versions[("3", "served")],
        versions[("4", "served")],
        versions[("5", "shadow")],
    )
    assert (champion["rows"], canary["rows"], shadow["rows"]) == (450, 150, 450)
    assert champion["mean_score"] == pytest.approx(np.mean([e["score"] for e in rows("3")]))
    assert shadow["mean_score"] == pytest.approx(np.mean([e["shadow_score"] for e in rows("3")]))
    assert champion["score_drift"]["status"] == shadow["score_drift"]["status"] == "checked"
    assert champion["score_drift"]["stattest"] == cfg.drift.score_stattest
    assert canary["score_drift"]["status"] == "skipped"  # 150 < monitor.min_rows
    assert "monitor.min_rows=200" in canary["score_drift"]["reason"]
    assert canary["quality"]["status"] == "skipped"  # none of its labels has matured

    labels = matured.head(700)[c.label.column].to_numpy()
    for entry, score, given in (
        (champion, "score", "predicted"),
        (shadow, "shadow_score", "shadow_predicted"),
    ):
        quality = entry["quality"]
        assert quality["status"] == "checked" and quality["labelled_rows"] == 700
        ours = [e[score] for e in entries[:700]]
        assert quality["roc_auc"] == pytest.approx(roc_auc_score(labels, ours))
        assert quality["precision"] == pytest.approx(
            precision_score(labels, [e[given] for e in entries[:700]], zero_division=0)
        )

    out = tmp_path / "monitoring"
    write_outputs(result, out, keep_runs=5)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["versions"]["5_shadow"]["rows"] == 450
    assert metrics["versions"]["3_served"]["roc_auc"] == pytest.approx(
        champion["quality"]["roc_auc"]
    )
    assert "5 shadow: 450 rows" in (out / "index.html").read_text()
    assert "version 4 (served): 150 predictions" in describe(result)


def test_new_categories_and_missing_values_are_issues_not_triggers(
    trained: Trained, cfg: MonitoringConfig, tmp_path: Path
) -> None:
    t, c = trained, trained.contract
    category = next(col for col, spec in c.categorical.items() if not spec.nullable)
    number = list(c.numeric)[-1]  # not the first: the label depends on it (contract_rows.py)
    current = t.week()
    rng = np.random.default_rng(0)
    current.loc[rng.random(len(current)) < 0.3, number] = np.nan
    current[category] = current[category].astype(object)
    current.loc[current.index[:40], category] = "no-such-value"
    lines = []
    for i, line in enumerate(log_lines(t, current.iloc[100:400])):
        entry = json.loads(line)
        if i < 20:  # a category the serving side could not encode: every one-hot is zero
            entry["features"].update({f: 0.0 for f in c.one_hot_groups[category]})
        lines.append(json.dumps(entry))
    path = tmp_path / "predictions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    data = monitor_data(t, cfg, current, prediction_log=read_prediction_log(path, c))
    s = run_checks(data, cfg).summary
    assert s["retrain"] is False, s["reasons"]
    issues = " | ".join(s["issues"])
    assert f"new categories in {category}: 'no-such-value' (40), '(unseen)' (20)" in issues
    assert f"missing values in {number}" in issues
    assert s["data_quality"]["new_categories"][category]["rows"] == 60
    assert s["data_quality"]["missing_share"][number]["current"] > 0.25
    assert s["data_quality"]["missing_share"][number]["reference"] < 0.1


# --------------------------------------------------------------------------- the verdict


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


def test_precision_is_judged_as_a_lift_over_the_labelled_rows_positive_rate(
    trained: Trained, cfg: MonitoringConfig
) -> None:
    columns = MonitoredColumns.of(trained.contract)
    label = columns.label
    # the test days as labelled rows (label, score, prediction)
    labelled = quality_reference(trained.test_predictions, trained.meta.threshold, columns)

    def judge(rows: pd.DataFrame, **limits: Any) -> dict[str, Any]:
        quality = cfg.quality.model_copy(
            update={"min_roc_auc": 0.5, "min_recall": 0.0, "min_labelled_rows": 100, **limits}
        )
        data = MonitorData(rows, rows, rows, None, trained.meta.threshold, {}, columns)
        return quality_check(rows, data, cfg.model_copy(update={"quality": quality}))

    # The same model on labelled rows where most negatives are missing: a higher base rate.
    keep = (labelled[label] == 1) | (np.random.default_rng(0).random(len(labelled)) < 0.15)
    high = labelled[keep.to_numpy()]
    lift = {"min_precision_lift": 1.0, "min_precision": None}
    low_rate = judge(labelled, **lift)
    assert low_rate["failed"] == []
    strict = {"min_precision_lift": 0.99 / high[label].mean(), "min_precision": None}
    high_rate = judge(high, **strict)
    precision, rate = high_rate["current"]["precision"], high_rate["current"]["positive_rate"]
    assert rate > low_rate["current"]["positive_rate"] and high_rate["failed"] == ["precision"]
    assert high_rate["thresholds"]["precision"] == pytest.approx(0.99)
    skipped = {"status": "skipped"}
    lift_rule = f"{strict['min_precision_lift']} x positive rate {rate:.3f} (0.990)"
    assert verdict(skipped, skipped, high_rate) == (
        True,
        [f"precision {precision:.3f} < {lift_rule}"],
    )
    # An absolute floor instead of the lift, or both (the higher one binds).
    assert judge(high, min_precision_lift=None, min_precision=0.05)["failed"] == []
    both = judge(high, min_precision_lift=0.5, min_precision=0.995)
    assert both["failed"] == ["precision"] and both["thresholds"]["precision"] == 0.995
    assert verdict(skipped, skipped, both)[1] == [f"precision {precision:.3f} < 0.995"]
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
    trained: Trained, cfg: MonitoringConfig
) -> None:
    first, second = list(trained.contract.numeric)[:2]
    override = FeatureDriftOverride(stattest="psi", threshold=0.5)
    drift = cfg.drift.model_copy(update={"per_feature": {first: override}})
    custom = cfg.model_copy(update={"drift": drift, "sample_rows": 2000})
    data = monitor_data(trained, custom)
    features = run_checks(data, custom).summary["feature_drift"]["features"]
    assert features[first]["stattest"] == "psi"
    assert features[first]["threshold"] == 0.5
    assert features[second]["stattest"] == "wasserstein"

    typo = type(cfg.drift).model_validate({"per_feature": {"no_such_column": {"threshold": 0.2}}})
    with pytest.raises(ConfigError, match="unknown feature\\(s\\) no_such_column"):
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


# --------------------------------------------------------------------------- the monitor command


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
    trained: Trained,
    split_config: SplitConfig,
    cfg: MonitoringConfig,
    project_params: Params,
) -> Path:
    """A project folder holding what the monitor stage reads for the contract: raw batches
    (the training window and a week with covariate drift), training set, model, test
    predictions, a prediction log, and params.yaml declaring the contract."""
    t, c = trained, trained.contract
    root = tmp_path_factory.mktemp("monitor-project")
    current = t.week(covariate=1.0)
    raw = pd.concat([t.raw, current], ignore_index=True)
    for day, batch in raw.groupby(raw[c.timestamp].dt.date):
        path = batch_path(root / "data/raw", day)
        path.parent.mkdir(parents=True, exist_ok=True)
        batch.to_parquet(path, index=False)
    (root / "data/training").mkdir(parents=True)
    t.training_set().to_parquet(root / "data/training/training_set.parquet", index=False)
    save_model(t.booster, t.meta, root / "models")
    (root / "data/predictions").mkdir(parents=True)
    t.test_predictions.to_parquet(root / "data/predictions/test_predictions.parquet", index=False)
    (root / "logs").mkdir()
    lines = log_lines(t, current.head(200))
    (root / "logs/predictions.jsonl").write_text("\n".join([*lines, "{oops"]) + "\n")
    params = project_params.model_dump(mode="json")
    params.pop("interval")  # interval.yaml, beside params.yaml
    params["dataset"] = c.model_dump(mode="json")
    params["split"] = split_config.model_dump(mode="json")
    params["monitor"] = cfg.model_dump(mode="json")
    params["mlflow"]["tracking_uri"] = f"sqlite:///{root / 'mlflow.db'}"
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "interval.yaml").write_text(yaml.safe_dump({"end_date": END.isoformat()}))
    return root


def test_monitor_command_writes_the_verdict_and_logs_to_mlflow(
    project: Path, trained: Trained, monkeypatch: pytest.MonkeyPatch
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
    horizon = trained.contract.label.horizon_days
    assert summary["window"]["quality"]["label_horizon_days"] == horizon
    known = dt.date(2026, 4, 8) - dt.timedelta(days=horizon)
    assert summary["model_quality"]["days"]["last_day"] == (known - dt.timedelta(1)).isoformat()
    assert (project / "reports/monitoring" / summary["reports"]["drift"]).is_file()
    assert (project / "reports/monitoring/index.html").is_file()

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(
        load_params(project / "params.yaml").mlflow.experiment
    )
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
    project: Path, trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(
        project, broken, ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts", "reports")
    )
    category = next(iter(trained.contract.categorical))
    for batch in (broken / "data/raw").glob("*.parquet"):
        pd.read_parquet(batch).drop(columns=[category]).to_parquet(batch, index=False)
    monkeypatch.chdir(broken)
    done = CliRunner().invoke(app, ["monitor"])
    assert done.exit_code == 1
    assert (
        f"monitor failed: column(s) {category} (dataset.categorical) missing from the raw batches"
        in done.output
    )
    assert "Traceback" not in done.output
    assert not (broken / "reports/monitoring/summary.json").exists()  # no verdict, no trigger


def strip_seconds(value: Any) -> Any:
    """A summary without its timings."""
    if isinstance(value, dict):
        return {k: strip_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [strip_seconds(v) for v in value]
    return value


def test_the_stage_reads_only_what_it_judges_and_gets_the_whole_windows_data(
    project: Path, trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitor stage reads the raw batches from the oldest day its windows use (the
    prediction log's drift window reaches back before the batches') and the sampled rows
    of the train split: monitor data and verdict are those of the whole window and
    training set."""
    from {{ cookiecutter.package_name }}.batches import read_raw
    from {{ cookiecutter.package_name }}.stages import monitor as stage

    monkeypatch.chdir(project)
    p = load_params(project / "params.yaml")
    p = p.model_copy(update={"monitor": p.monitor.model_copy(update={"sample_rows": 300})})
    c, cfg = p.dataset, p.monitor
    booster, meta = load_model(p.paths.model_dir, c)
    log = read_prediction_log(p.paths.prediction_log, c, stage.log_since(p))
    assert log is not None and len(log.frame)
    given = {
        "booster": booster,
        "threshold": meta.threshold,
        "cfg": cfg,
        "contract": c,
        "prediction_log": log,
        "test_predictions": pd.read_parquet(p.paths.predictions),
        "end_date": p.window.end_date,
        "calibration": meta.calibration,
    }
    whole_raw = read_raw(p.paths.raw)
    train = time_split(pd.read_parquet(p.paths.training_set), p.split, c).train
    whole = build_monitor_data(raw=whole_raw, reference=train, **given)

    raw = stage.read_window_raw(p, log)
    reference, reference_rows = stage.read_reference(p)
    narrowed = build_monitor_data(
        raw=raw, reference=reference, reference_rows=reference_rows, **given
    )
    served_from = log.frame[c.timestamp].max().floor("D") - dt.timedelta(cfg.current_days - 1)
    assert len(raw) < len(whole_raw)  # older batches were not read...
    assert raw[c.timestamp].min().floor("D") <= served_from  # ...those of served days were
    assert reference_rows == len(train) > len(reference) == cfg.sample_rows
    assert set(reference.columns) == {*c.feature_columns, c.label.column}
    for part in ("reference", "current", "labelled", "window_rows", "quality_reference"):
        pd.testing.assert_frame_equal(getattr(narrowed, part), getattr(whole, part), obj=part)
    pd.testing.assert_frame_equal(narrowed.versions, whole.versions)
    assert narrowed.window == whole.window
    assert narrowed.window["reference_rows"] == len(train)
    assert strip_seconds(run_checks(narrowed, cfg).summary) == strip_seconds(
        run_checks(whole, cfg).summary
    )


def test_a_batch_whose_footer_does_not_date_its_rows_is_read(
    project: Path, trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch file the run does not use is not read, whether its footer dates its rows
    (parquet statistics) or not (its timestamps are read then)."""
    from {{ cookiecutter.package_name }}.stages import monitor as stage

    copy = tmp_path / "project"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("mlflow.db", "reports"))
    monkeypatch.chdir(copy)
    p = load_params(copy / "params.yaml")
    ts = p.dataset.timestamp
    oldest = sorted((copy / "data/raw").glob("batch_*.parquet"))[0]
    rows = pd.read_parquet(oldest)
    before = stage.read_window_raw(p, None)
    assert before[ts].min() > rows[ts].max()  # the oldest day is not used
    newest = sorted((copy / "data/raw").glob("batch_*.parquet"))[-1]
    for path in (oldest, newest):
        pq.write_table(pq.read_table(path), path, write_statistics=False)
    pd.testing.assert_frame_equal(stage.read_window_raw(p, None), before)


# --------------------------------------------------------------------------- the HTML report in a browser


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
    drifted = result.summary["feature_drift"]["drifted"]
    # Evidently pages its table (10 rows a page): the first page shows drifted columns
    shown = [column for column in drifted if column in cells]
    assert len(shown) >= min(len(drifted), 5), f"drifted {drifted}, rendered {cells}"
    assert any(cell.lower() == "detected" for cell in cells)
    features = result.summary["feature_drift"]["features"]
    calm = [c for c, f in features.items() if not f["drifted"]]
    calm += [] if result.summary["prediction_drift"]["drifted"] else ["score"]
    if calm and len(drifted) < 10:  # a column without drift made the first page
        assert any(cell.lower() == "not detected" for cell in cells), (calm, cells)

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
