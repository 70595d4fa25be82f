"""rollout.py: the shadow evidence read from the prediction log, and `rollout status`,
`rollout promote`, `rollout abort` and `rollback` against a real (SQLite) registry, for
the project's contract and a string-keyed one."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.champion import CANDIDATE, CHAMPION, DECISION_TAG
from {{ cookiecutter.package_name }}.config import MlflowConfig, Params, RolloutConfig
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import entity_ids
from {{ cookiecutter.package_name }}.errors import PipelineError
from {{ cookiecutter.package_name }}.prediction_log import PredictionRecord, read_prediction_log
from {{ cookiecutter.package_name }}.prediction_log_files import PredictionLogWriter
from {{ cookiecutter.package_name }}.rollout import (
    REPORT_FILE,
    abort,
    describe,
    judge,
    promote_candidate,
    rollback,
    shadow_evidence,
    status,
)

from conftest import Registry, booster_of

START = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
MINIMUMS = RolloutConfig(min_shadow_hours=24, min_shadow_predictions=100, min_agreement=0.9)


def shadow_records(
    contract: DatasetContract,
    n: int,
    hours: float,
    disagree: int = 0,
    champion: str = "1",
    candidate: str = "2",
) -> list[PredictionRecord]:
    """`n` predictions spread over `hours`, scored by `champion` and, in the shadow, by
    `candidate`; the first `disagree` of them get another label from the candidate."""
    ids = entity_ids(contract, np.arange(n)).tolist()
    step = dt.timedelta(hours=hours / max(n - 1, 1))
    records = []
    for i, entity in enumerate(ids):
        label = i % 2
        records.append(
            PredictionRecord(
                timestamp=(START + i * step).isoformat(),
                entity_id=entity,
                model_name="m",
                model_version=champion,
                features={c: 0.0 for c in contract.feature_columns},
                score=0.8 if label else 0.2,
                predicted=label,
                shadow_version=candidate,
                shadow_score=0.7 if label else 0.3,
                shadow_predicted=1 - label if i < disagree else label,
            )
        )
    return records


def log_of(path: Path, records: list[PredictionRecord], contract: DatasetContract):
    PredictionLogWriter(path).append(records)
    return read_prediction_log(path, contract).frame


def test_the_evidence_counts_the_candidates_shadow_beside_the_champion(
    tmp_path: Path, any_key_contract: DatasetContract
) -> None:
    c = any_key_contract
    records = [
        *shadow_records(c, 200, hours=30, disagree=20),
        *shadow_records(c, 50, hours=1, champion="0"),  # beside an older champion: not counted
        *shadow_records(c, 40, hours=1, candidate="3"),  # another candidate: not counted
    ]
    plain = replace(records[0], shadow_version=None, shadow_score=None, shadow_predicted=None)
    frame = log_of(tmp_path / "log.jsonl", [*records, plain], c)
    evidence = shadow_evidence(frame, c.timestamp, "2", "1")
    assert evidence["predictions"] == 200
    assert evidence["hours"] == pytest.approx(30)
    assert evidence["agreement"] == pytest.approx(0.9)  # 180 of 200 labels the same
    assert evidence["first"].startswith("2026-04-01T00:00")
    assert evidence["mean_abs_score_difference"] == pytest.approx(0.1)
    checks = {ch["name"]: ch["passed"] for ch in judge(evidence, MINIMUMS, "awaiting_shadow")}
    assert checks == {
        "promotion_gate": True,
        "min_shadow_hours": True,
        "min_shadow_predictions": True,
        "min_agreement": True,
    }
    strict = RolloutConfig(min_shadow_hours=48, min_shadow_predictions=500, min_agreement=0.95)
    failed = [ch["detail"] for ch in judge(evidence, strict, "rejected") if not ch["passed"]]
    assert failed == [
        "promotion.decision is 'rejected': rollout promote moves only a candidate the gate passed",
        "30.00 h < min_shadow_hours 48",
        "200 shadowed predictions < min_shadow_predictions 500",
        "agreement 0.9000 < min_agreement 0.95",
    ]
    nothing = shadow_evidence(frame, c.timestamp, "9", "1")
    assert (nothing["predictions"], nothing["agreement"]) == (0, None)
    assert not judge(nothing, RolloutConfig(min_shadow_predictions=0), "promoted")[-1]["passed"]


def params_for(
    project_params: Params, registry: Registry, tmp_path: Path, contract: DatasetContract
) -> Params:
    import mlflow

    paths = project_params.paths.model_copy(
        update={"prediction_log": tmp_path / "predictions.jsonl", "reports": tmp_path / "reports"}
    )
    return project_params.model_copy(
        update={
            "dataset": contract,
            "paths": paths,
            "mlflow": MlflowConfig(
                tracking_uri=mlflow.get_tracking_uri(),
                experiment="t",
                registered_model=registry.name,
            ),
            "promote": project_params.promote.model_copy(update={"rollout": MINIMUMS}),
        }
    )


def aliases(registry: Registry) -> dict[str, str]:
    model = registry.client.get_registered_model(registry.name)
    return {alias: str(version) for alias, version in model.aliases.items()}


def test_rollout_promote_refuses_with_too_little_evidence_and_promotes_with_enough(
    registry: Registry,
    project_params: Params,
    tmp_path: Path,
    any_key_contract: DatasetContract,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    c = any_key_contract
    p = params_for(project_params, registry, tmp_path, c)
    first, second = (registry.add(booster_of(c.feature_columns)) for _ in range(2))
    registry.champion(first)
    registry.client.set_registered_model_alias(registry.name, CANDIDATE, second)
    registry.client.set_model_version_tag(registry.name, second, DECISION_TAG, "awaiting_shadow")

    assert not status(p)["ready"]  # no prediction log yet: no evidence
    PredictionLogWriter(p.paths.prediction_log).append(
        shadow_records(c, 60, hours=2, champion=first, candidate=second)
    )
    with pytest.raises(PipelineError) as refused:
        promote_candidate(p)
    message = str(refused.value)
    assert f"candidate version {second} of '{registry.name}' stays candidate" in message
    assert "2.00 h < min_shadow_hours 24" in message
    assert "60 shadowed predictions < min_shadow_predictions 100" in message
    assert "min_agreement" not in message  # that one is met
    assert aliases(registry) == {CHAMPION: first, CANDIDATE: second}
    report = json.loads((p.paths.reports / REPORT_FILE).read_text())
    assert report["decision"] == "refused" and len(report["reasons"]) == 2
    tags = registry.client.get_model_version(registry.name, second).tags
    assert tags["rollout.decision"] == "refused"
    assert "60 predictions shadowed beside champion" in tags["rollout.evidence"]

    PredictionLogWriter(p.paths.prediction_log).append(
        shadow_records(c, 150, hours=30, champion=first, candidate=second, disagree=5)
    )
    ready = status(p)
    assert ready["ready"] and ready["evidence"]["predictions"] == 210
    assert "ready: `rollout promote` moves champion" in describe(ready)
    promoted = promote_candidate(p)
    assert promoted["decision"] == "promoted"
    assert aliases(registry) == {CHAMPION: second, CANDIDATE: second}
    tags = registry.client.get_model_version(registry.name, second).tags
    assert tags["rollout.decision"] == "promoted" and tags["previous_champion"] == first
    assert "min_agreement" in tags["rollout.reasons"]
    with pytest.raises(PipelineError, match="already the champion"):
        promote_candidate(p)

    assert rollback(p) == (int(second), int(first))  # one command back
    assert aliases(registry) == {CHAMPION: first}, "the rolled-back version is no candidate"


def test_a_rejected_candidate_is_never_rolled_out_and_abort_drops_the_alias(
    registry: Registry,
    project_params: Params,
    tmp_path: Path,
    contract: DatasetContract,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    p = params_for(project_params, registry, tmp_path, contract)
    with pytest.raises(PipelineError, match="has no 'candidate' version"):
        status(p)
    first, second = (registry.add(booster_of(contract.feature_columns)) for _ in range(2))
    registry.champion(first)
    registry.client.set_registered_model_alias(registry.name, CANDIDATE, second)
    registry.client.set_model_version_tag(registry.name, second, DECISION_TAG, "rejected")
    PredictionLogWriter(p.paths.prediction_log).append(
        shadow_records(contract, 300, hours=48, champion=first, candidate=second)
    )
    with pytest.raises(PipelineError, match=r"promotion\.decision is 'rejected'"):
        promote_candidate(p)
    assert aliases(registry)[CHAMPION] == first
    assert abort(p) == second
    assert aliases(registry) == {CHAMPION: first}
    assert "rollout.aborted_at" in registry.client.get_model_version(registry.name, second).tags


def test_the_first_model_needs_no_shadow(
    registry: Registry,
    project_params: Params,
    tmp_path: Path,
    contract: DatasetContract,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    p = params_for(project_params, registry, tmp_path, contract)
    only = registry.add(booster_of(contract.feature_columns))
    registry.client.set_registered_model_alias(registry.name, CANDIDATE, only)
    registry.client.set_model_version_tag(registry.name, only, DECISION_TAG, "promoted")
    report = promote_candidate(p)
    assert report["champion"] is None and [c["name"] for c in report["checks"]] == [
        "promotion_gate"
    ]
    assert aliases(registry) == {CHAMPION: only, CANDIDATE: only}
