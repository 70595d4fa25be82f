"""Serving a rollout (challenger.py through the service): the registry's `candidate` in
the shadow or for a canary share of entities, over a real Feast store and a real MLflow
registry, for the project's contract and a string-keyed one (conftest.serving_setup)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.challenger import Challenger, canary_bucket, in_canary
from {{ cookiecutter.package_name }}.champion import (
    CANDIDATE,
    DECISION_TAG,
    ChampionModel,
    load_version,
)
from {{ cookiecutter.package_name }}.model import predict_proba
from {{ cookiecutter.package_name }}.online_read import online_features
from {{ cookiecutter.package_name }}.prediction_log import read_prediction_log
from {{ cookiecutter.package_name }}.prediction_log_files import log_files
from {{ cookiecutter.package_name }}.serving import create_app

from conftest import PROJECT_ROOT, Registry, booster_of, known_ids, predict, string_keyed


@pytest.fixture(scope="module")
def setup(serving_setup: dict) -> dict:
    return serving_setup


def set_candidate(setup: dict, version: str | None, decision: str | None = None) -> None:
    """Point `candidate` at `version` (None: remove it), with the gate's decision tag."""
    client, model = setup["client"], setup["model"]
    if version is None:
        if CANDIDATE in client.get_registered_model(model).aliases:
            client.delete_registered_model_alias(model, CANDIDATE)
        return
    client.set_registered_model_alias(model, CANDIDATE, version)
    if decision is not None:
        client.set_model_version_tag(model, version, DECISION_TAG, decision)


def rollout_app(setup: dict, log: Path, mode: str, share: float = 0.0) -> TestClient:
    """A service starting now with serving.rollout `mode` (a restart: nothing cached)."""
    contract, model = setup["contract"], setup["model"]
    champion = ChampionModel(model, contract, refresh_seconds=0)
    challenger = Challenger(model, contract, mode, refresh_seconds=0, canary_share=share)
    app = create_app(setup["store"], champion, log, contract, challenger=challenger)
    return TestClient(app)


def scores_of(setup: dict, version: str, ids: list) -> dict:
    """What `version` scores for each id, from the online features (no service involved)."""
    contract = setup["contract"]
    model = load_version(setup["client"], setup["model"], version, contract)
    known, _ = online_features(setup["store"], ids, contract)
    scores = predict_proba(model.booster, known)
    return {
        i: (float(s), int(s >= model.threshold))
        for i, s in zip(known[contract.entity.key], scores, strict=True)
    }


def log_lines(path: Path) -> list[dict]:
    """Every record of the log `path` (its daily files), in the order written."""
    return [json.loads(line) for file in log_files(path) for line in file.read_text().splitlines()]


def test_shadow_logs_both_scores_and_answers_with_the_champions(setup, tmp_path: Path) -> None:
    champion, candidate = setup["versions"]
    set_candidate(setup, candidate)
    ids = known_ids(setup, 40)
    log = tmp_path / "predictions.jsonl"
    http = rollout_app(setup, log, "shadow")
    body = predict(setup, ids, http)
    ours, theirs = scores_of(setup, champion, ids), scores_of(setup, candidate, ids)
    assert body["model_version"] == champion
    for answer in body["predictions"]:
        assert answer["model_version"] == champion
        assert (answer["score"], answer["label"]) == pytest.approx(ours[answer["id"]], abs=1e-6)
    records = log_lines(log)
    assert [r["entity_id"] for r in records] == ids
    for r in records:
        assert (r["model_version"], r["shadow_version"]) == (champion, candidate)
        assert r["score"] == pytest.approx(ours[r["entity_id"]][0], abs=1e-6)
        assert (r["shadow_score"], r["shadow_predicted"]) == pytest.approx(
            theirs[r["entity_id"]], abs=1e-6
        )
    assert any(r["score"] != r["shadow_score"] for r in records)  # two models, not one twice
    frame = read_prediction_log(log, setup["contract"]).frame  # what monitoring reads
    assert frame["shadow_version"].tolist() == [candidate] * len(ids)
    assert frame["shadow_score"].tolist() == [r["shadow_score"] for r in records]
    health = http.get("/health").json()
    assert health["rollout"] == {
        "mode": "shadow",
        "candidate_version": candidate,
        "detail": f"shadow: candidate version {candidate}",
    }


def canary_answers(setup: dict, http: TestClient, ids: list) -> dict:
    return {p["id"]: p["model_version"] for p in predict(setup, ids, http)["predictions"]}


def test_canary_routes_a_stable_share_of_entities(setup, tmp_path: Path) -> None:
    champion, candidate = setup["versions"]
    set_candidate(setup, candidate, decision="awaiting_shadow")
    ids = known_ids(setup, 1000)
    share = 0.3
    log = tmp_path / "predictions.jsonl"
    served = canary_answers(setup, rollout_app(setup, log, "canary", share), ids)
    routed = in_canary(ids, share)
    assert [served[i] for i in ids] == [candidate if r else champion for r in routed]
    assert abs(routed.mean() - share) < 0.05, routed.mean()
    theirs, ours = scores_of(setup, candidate, ids), scores_of(setup, champion, ids)
    for record in log_lines(log):  # the log says which model answered, with its score
        i = record["entity_id"]
        assert record["model_version"] == served[i]
        expected = theirs[i] if served[i] == candidate else ours[i]
        assert (record["score"], record["predicted"]) == pytest.approx(expected, abs=1e-6)
        assert "shadow_version" not in record
    restarted = canary_answers(
        setup, rollout_app(setup, tmp_path / "again.jsonl", "canary", share), ids
    )
    assert restarted == served  # the same ids go to the same model after a restart
    wider = canary_answers(setup, rollout_app(setup, tmp_path / "w.jsonl", "canary", 0.6), ids)
    assert all(
        wider[i] == candidate for i in ids if served[i] == candidate
    )  # a wider canary keeps its entities


def test_canary_share_0_and_1_send_everyone_to_one_model(setup, tmp_path: Path) -> None:
    champion, candidate = setup["versions"]
    set_candidate(setup, candidate, decision="awaiting_shadow")
    ids = known_ids(setup, 200)
    none = canary_answers(setup, rollout_app(setup, tmp_path / "0.jsonl", "canary", 0.0), ids)
    every = canary_answers(setup, rollout_app(setup, tmp_path / "1.jsonl", "canary", 1.0), ids)
    assert set(none.values()) == {champion} and set(every.values()) == {candidate}


def test_the_canary_hash_is_the_same_in_every_process(contract) -> None:
    """sha256 of the id's text, not Python's hash(), which is salted per process."""
    from {{ cookiecutter.package_name }}.contract_rows import entity_ids

    ids = [
        *entity_ids(contract, np.arange(25)).tolist(),
        *entity_ids(string_keyed(contract), np.arange(25)).tolist(),
    ]
    here = [canary_bucket(i) for i in ids]
    assert all(0.0 <= b < 1.0 for b in here) and len(set(here)) == len(set(map(str, ids)))
    script = (
        "import json, sys; from {{ cookiecutter.package_name }}.challenger import canary_bucket; "
        "print(json.dumps([canary_bucket(i) for i in json.loads(sys.argv[1])]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(ids)],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},  # another salt than this process's
    )
    assert json.loads(done.stdout) == here


def test_no_usable_candidate_means_the_champion_alone(setup, tmp_path: Path, caplog) -> None:
    champion, _ = setup["versions"]
    other = Registry(setup["client"], setup["root"], setup["model"]).add(
        booster_of(["retired_feature"])  # registered, but trained on other features
    )
    ids = known_ids(setup, 5)
    cases = {
        "no 'candidate' version": None,
        f"candidate version {champion} is the champion": champion,
        f"the 'candidate' version cannot be served (version {other}": other,
    }
    for mode in ("shadow", "canary"):
        for why, version in cases.items():
            set_candidate(setup, version, decision="awaiting_shadow" if version else None)
            log = tmp_path / f"{mode}-{version}.jsonl"
            http = rollout_app(setup, log, mode, share=1.0)
            with caplog.at_level(logging.WARNING):
                for _ in range(2):
                    body = predict(setup, ids, http)
                    assert {p["model_version"] for p in body["predictions"]} == {champion}
            assert all("shadow_version" not in r for r in log_lines(log))
            rollout = http.get("/health").json()["rollout"]
            assert rollout["candidate_version"] is None and why in rollout["detail"], rollout
            said = [r.getMessage() for r in caplog.records if why in r.getMessage()]
            assert len(said) == 1, said  # one log line when the state changes, not per request
            caplog.clear()
    set_candidate(setup, None)


def test_a_rejected_candidate_is_shadowed_but_never_canaried(setup, tmp_path: Path) -> None:
    champion, candidate = setup["versions"]
    set_candidate(setup, candidate, decision="rejected")
    ids = known_ids(setup, 20)
    canary = rollout_app(setup, tmp_path / "c.jsonl", "canary", share=1.0)
    assert set(canary_answers(setup, canary, ids).values()) == {champion}
    assert "promotion gate passed" in canary.get("/health").json()["rollout"]["detail"]
    shadow = rollout_app(setup, tmp_path / "s.jsonl", "shadow")
    predict(setup, ids, shadow)  # the caller gets the champion's; the shadow is only logged
    assert {r["shadow_version"] for r in log_lines(tmp_path / "s.jsonl")} == {candidate}
    set_candidate(setup, None)


def test_the_openapi_document_names_the_version_of_each_prediction(setup) -> None:
    schemas = setup["http"].get("/openapi.json").json()["components"]["schemas"]
    version = schemas["Prediction"]["properties"]["model_version"]
    assert {t["type"] for t in version["anyOf"]} == {"string", "null"}
    assert "canary" in version["description"]
    assert "canary" in schemas["PredictResponse"]["properties"]["model_version"]["description"]
