"""Infra validation: the candidate loaded from a real MLflow registry (SQLite in tmp_path)
and served in-process by the real app over a real Feast store, before `champion` moves;
the request plan and the judgment of answers and limits on their own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.champion import CHAMPION
from {{ cookiecutter.package_name }}.config import (
    InfraValidationConfig,
    Params,
    PromotionConfig,
    SplitConfig,
    TrainConfig,
)
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.feature_store import open_store
from {{ cookiecutter.package_name }}.features import build_features
from {{ cookiecutter.package_name }}.infra_validation import (
    UNKNOWN_ID,
    Probe,
    Served,
    judge,
    probe_ids,
    request_plan,
    served_checks,
    validate,
)
from {{ cookiecutter.package_name }}.materialization import materialize
from {{ cookiecutter.package_name }}.promotion import CANDIDATE, promote

from conftest import aliases, make_feast_repo, promotion_params, train_and_log

REQUESTS = 30  # timed requests per validation here (the shipped 200 take a few seconds)
LIMITS = InfraValidationConfig(requests=REQUESTS)
GATE = PromotionConfig(
    primary_metric="pr_auc", absolute_minimums={"roc_auc": 0.5}, infra_validation=LIMITS
)


# --------------------------------------------------------------------------- the plan


def test_the_plan_is_fixed_and_covers_every_endpoint() -> None:
    online = {11: True, 12: True, 13: False, 14: True, -1: False}
    plan = request_plan(online, count=5, max_batch=1000)
    assert [(p.method, p.path) for p in plan[:2]] == [("GET", "/health"), ("GET", "/metadata")]
    assert plan[2] == Probe("POST", "/predict", [11])  # warm-up, not timed
    timed = [p for p in plan if p.timed]
    assert [p.ids for p in timed] == [[11], [12], [14], [11], [12]]  # cycling the known ids
    assert plan[-2] == Probe("POST", "/predict", [11, 12, 14, 13])  # the batch, one unknown
    assert plan[-1] == Probe("POST", "/predict", [13])
    assert request_plan(online, count=5, max_batch=1000) == plan
    assert len(request_plan(online, count=5, max_batch=2)[-2].ids) == 2  # within the batch limit


def test_probed_ids_are_a_seeded_choice_of_the_holdout(any_key_contract: DatasetContract) -> None:
    contract = any_key_contract
    key = contract.entity.key
    raw = contract.key_values(list(range(100, 160)) * 3)
    holdout = pd.DataFrame({key: raw})
    ids = probe_ids(holdout, 20, contract)
    assert len(ids) == 21 and len(set(ids)) == 21
    assert ids[-1] == UNKNOWN_ID[contract.entity.dtype]
    assert set(ids[:-1]) <= set(raw)
    assert all(type(i) is type(raw[0]) for i in ids)
    shuffled = holdout.sample(frac=1, random_state=3)
    assert probe_ids(shuffled, 20, contract) == ids, "the same ids whatever the row order"
    assert len(probe_ids(holdout, 500, contract)) == 61  # at most every distinct id


def predicted(*answers: dict, version: str = "3") -> dict:
    return {"model_version": version, "predictions": list(answers)}


SCORED = {"id": 7, "status": "ok", "score": 0.25, "label": 0}
UNKNOWN = {"id": 8, "status": "unknown_entity", "score": None, "label": None}


def test_answers_are_judged_against_the_online_store() -> None:
    online = {7: True, 8: False}
    probe = Probe("POST", "/predict", [7, 8])

    def wrong(status: int, body: object) -> str | None:
        return judge(probe, status, body, online, "3")

    assert wrong(200, predicted(SCORED, UNKNOWN)) is None
    assert wrong(503, {"detail": "no model"}) == (
        "POST /predict (2 ids): HTTP 503: {'detail': 'no model'}"
    )
    assert "answered by version '2', not 3" in wrong(200, predicted(SCORED, UNKNOWN, version="2"))
    assert "id 7 is in the online store but got" in wrong(
        200, predicted(UNKNOWN | {"id": 7}, UNKNOWN)
    )
    assert "id 8 is not in the online store" in wrong(200, predicted(SCORED, SCORED | {"id": 8}))
    assert wrong(200, predicted(SCORED | {"score": 1.5}, UNKNOWN)) is not None
    assert wrong(200, predicted(SCORED | {"label": None}, UNKNOWN)) is not None
    assert "not the ids asked for" in wrong(200, predicted(UNKNOWN, SCORED))
    assert "no list of predictions" in wrong(200, {"model_version": "3"})
    assert "not a JSON object" in wrong(200, "Internal Server Error")
    degraded = {"status": "degraded", "detail": "no champion"}
    health = judge(Probe("GET", "/health"), 200, degraded, online, "3")
    assert health == "GET /health: status 'degraded': no champion"


def test_each_limit_names_its_key_and_the_measured_value() -> None:
    served = Served(requests=35, latencies_ms=[float(i) for i in range(1, 101)], memory_mb=12.5)
    passed = served_checks(served, InfraValidationConfig(max_p99_ms=200, max_memory_mb=64))
    assert [(c.name, c.passed) for c in passed] == [
        ("infra.responses", True),
        ("infra.p99_ms", True),
        ("infra.memory_mb", True),
    ]
    tight = served_checks(served, InfraValidationConfig(max_p99_ms=50, max_memory_mb=10))
    p99, memory = tight[1], tight[2]
    assert not p99.passed and p99.value == pytest.approx(99.01) and p99.required == 50
    assert p99.detail == "p99 99.01 ms > promote.infra_validation.max_p99_ms 50 ms"
    assert memory.detail == "RSS growth 12.50 MB > promote.infra_validation.max_memory_mb 10 MB"
    wrong = Served(requests=35, latencies_ms=[1.0], failures=[f"answer {i}" for i in range(5)])
    responses = served_checks(wrong, LIMITS)[0]
    assert not responses.passed
    assert responses.detail == (
        "5 of 35 requests answered wrongly: answer 0; answer 1; answer 2; ... (2 more)"
    )


# --------------------------------------------------------------------------- served for real


@pytest.fixture(scope="module")
def served_registry(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_raw: pd.DataFrame,
    split_config: SplitConfig,
    project_params: Params,
) -> Iterator[Params]:
    """A project folder with a training set, a Feast store holding its features (SQLite,
    materialized) and its own MLflow store; the working directory while the module runs."""
    root = tmp_path_factory.mktemp("served")
    features = build_features(tiny_raw, project_params.dataset)
    store = open_store(make_feast_repo(root, features, "sqlite"))
    materialize(store, features, project_params.dataset)
    params = promotion_params(root, project_params, tiny_raw, split_config, GATE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.chdir(root)
        yield params


def with_limits(p: Params, **limits: float) -> Params:
    gate = p.promote.model_copy(update={"infra_validation": LIMITS.model_copy(update=limits)})
    return p.model_copy(update={"promote": gate})


def checks_of(report: dict) -> dict[str, bool | None]:
    return {c["name"]: c["passed"] for c in report["checks"] if c["name"].startswith("infra")}


def version_tags(p: Params, version: int) -> dict[str, str]:
    name = p.mlflow.registered_model
    return mlflow.MlflowClient().get_model_version(name, str(version)).tags


def test_only_a_candidate_that_serves_within_the_limits_takes_the_alias(
    served_registry: Params, train_config: TrainConfig
) -> None:
    p = served_registry
    log = p.paths.prediction_log
    log.parent.mkdir(parents=True)
    log.write_text('{"a line the service wrote": 1}\n')
    weak = train_config.model_copy(
        update={"num_boost_round": 2, "max_depth": 1, "early_stopping_rounds": 1}
    )

    train_and_log(p, weak)
    first = promote(p)
    assert first["decision"] == "promoted", first["reasons"]
    assert checks_of(first) == dict.fromkeys(
        ["infra.online_store", "infra.responses", "infra.p99_ms", "infra.memory_mb"], True
    )
    figures = json.loads((p.paths.reports / "promotion.json").read_text())["infra_validation"]
    assert figures["version"] == 1 and figures["failures"] == []
    assert figures["timed_requests"] == REQUESTS and figures["requests"] == REQUESTS + 5
    assert figures["probed_ids"] == figures["ids_online"] == REQUESTS
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert figures["batch_ms"] > 0 and figures["memory_mb"] >= 0
    assert figures["limits"] == {"max_p99_ms": 250.0, "max_memory_mb": 1024.0}
    assert version_tags(p, 1)["gate.infra.p99_ms"].startswith("pass: p99 ")

    # a better model (it beats the champion) whose p99 is over a limit it cannot meet
    train_and_log(p, train_config)
    slow = promote(with_limits(p, max_p99_ms=1e-6))
    assert slow["decision"] == "rejected"
    [reason] = slow["reasons"]  # the only check that failed
    assert reason.startswith("infra.p99_ms: p99 ")
    assert reason.endswith("ms > promote.infra_validation.max_p99_ms 1e-06 ms")
    assert aliases(p) == {CHAMPION: "1", CANDIDATE: "2"}, "the champion stays"
    assert slow["champion_after"] == 1
    report = json.loads((p.paths.reports / "promotion.json").read_text())
    assert report["reasons"] == [reason] and report["infra_validation"]["p99_ms"] > 1e-6
    tags = version_tags(p, 2)
    assert tags["gate.infra.p99_ms"].startswith("fail: p99 ")
    assert tags["promotion.reasons"] == reason

    assert promote(p)["decision"] == "promoted", "within the shipped limits it serves well"
    assert aliases(p)[CHAMPION] == "2"
    assert log.read_text() == '{"a line the service wrote": 1}\n', "the real log is untouched"
    assert [f.name for f in log.parent.iterdir()] == [log.name]


def test_an_online_store_without_the_holdout_ids_fails_with_the_reason(
    served_registry: Params, tmp_path: Path, tiny_raw: pd.DataFrame, contract: DatasetContract
) -> None:
    make_feast_repo(tmp_path, build_features(tiny_raw, contract), "sqlite")  # not materialized
    holdout = pd.DataFrame({contract.entity.key: contract.key_values(list(range(40)))})
    result = validate(served_registry, None, "1", holdout, tmp_path)
    store, *rest = result.checks
    assert store.name == "infra.online_store" and store.passed is False
    assert store.detail.startswith("the online store holds none of the 30 holdout ids probed")
    assert "run `dvc repro materialize`" in store.detail
    assert [(c.name, c.passed) for c in rest] == [
        ("infra.responses", None),
        ("infra.p99_ms", None),
        ("infra.memory_mb", None),
    ]
    assert result.figures["ids_online"] == 0 and "p99_ms" not in result.figures


def test_a_store_of_other_features_cannot_serve_the_candidate(
    served_registry: Params, tmp_path: Path, tiny_raw: pd.DataFrame, contract: DatasetContract
) -> None:
    dropped = sorted(contract.numeric)[0]
    other = contract.model_copy(
        update={"numeric": {k: v for k, v in contract.numeric.items() if k != dropped}}
    )
    make_feast_repo(tmp_path, build_features(tiny_raw, other), "sqlite", contract=other)
    holdout = pd.DataFrame({contract.entity.key: contract.key_values(list(range(40)))})
    result = validate(served_registry, None, "1", holdout, tmp_path)
    store = result.checks[0]
    assert store.passed is False and store.detail.startswith("cannot serve: feature view")
    assert dropped in store.detail
    assert all(c.passed is None for c in result.checks[1:])


def test_switched_off_it_is_a_skipped_check(served_registry: Params) -> None:
    gate = GATE.model_copy(update={"infra_validation": InfraValidationConfig(enabled=False)})
    off = served_registry.model_copy(update={"promote": gate})
    result = validate(off, None, "1", pd.DataFrame())
    [check] = result.checks
    assert (check.name, check.passed) == ("infra", None)
    assert check.detail == "skipped: promote.infra_validation.enabled is false"
    assert result.figures == {"enabled": False}
