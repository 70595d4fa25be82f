"""The prediction service: Feast online features + the MLflow champion, over HTTP,
for the project's contract and for a string-keyed one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.api_keys import Gatekeeper, new_key, parse_entries
from {{ cookiecutter.package_name }}.champion import CHAMPION, ChampionModel
from {{ cookiecutter.package_name }}.config import RateLimitConfig
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import entity_ids
from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.explain import MAX_EXPLAINED_IDS, explain_rows
from {{ cookiecutter.package_name }}.feature_store import historical_features
from {{ cookiecutter.package_name }}.model import predict_proba
from {{ cookiecutter.package_name }}.online_read import online_features
from {{ cookiecutter.package_name }}.prediction_log import (
    EXPLANATION,
    RECORD_FIELDS,
    SHADOW_FIELDS,
    read_prediction_log,
)
from {{ cookiecutter.package_name }}.prediction_log_files import log_files
from {{ cookiecutter.package_name }}.serving import MAX_BATCH, PREDICT_THREADS, create_app

from conftest import SQLITE_STORE, known_ids, predict


@pytest.fixture(scope="module")
def setup(serving_setup: dict) -> dict:
    """The service over a real Feast store and MLflow registry (conftest.serving_setup)."""
    return serving_setup


def test_predict_one_and_a_batch(setup) -> None:
    ids = known_ids(setup, 5)
    body = predict(setup, ids[:1])
    assert body["model_version"] == setup["versions"][0]
    [prediction] = body["predictions"]
    assert prediction["id"] == ids[0] and type(prediction["id"]) is type(ids[0])
    assert prediction["status"] == "ok" and 0.0 <= prediction["score"] <= 1.0
    assert prediction["label"] in (0, 1)
    assert prediction["model_version"] == setup["versions"][0]
    batch = predict(setup, ids)
    assert [p["id"] for p in batch["predictions"]] == ids


def test_same_prediction_through_batch_path_and_http(setup) -> None:
    contract, features = setup["contract"], setup["features"]
    key = contract.entity.key
    ids = known_ids(setup, 20)
    at = features[contract.timestamp].max() + pd.Timedelta(seconds=1)
    offline = historical_features(
        setup["store"], pd.DataFrame({key: ids, contract.timestamp: at}), contract
    )
    model = ChampionModel(setup["model"], contract).get()
    batch_scores = dict(zip(offline[key], predict_proba(model.booster, offline), strict=True))
    for p in predict(setup, ids)["predictions"]:
        assert p["score"] == pytest.approx(float(batch_scores[p["id"]]), abs=1e-6)


def test_the_service_scores_with_one_xgboost_thread(setup, tmp_path) -> None:
    """XGBoost's default, every core, costs a single row up to 100 ms at p99 on a busy
    machine: whatever model the service scores with gets PREDICT_THREADS threads."""
    contract = setup["contract"]
    champion = ChampionModel(setup["model"], contract)
    http = TestClient(create_app(setup["store"], champion, tmp_path / "p.jsonl", contract))
    assert http.post("/predict", json={"ids": known_ids(setup, 2)}).status_code == 200
    config = json.loads(champion.get().booster.save_config())
    assert config["learner"]["generic_param"]["nthread"] == str(PREDICT_THREADS)


def test_unknown_entity_gets_a_per_entity_answer(setup) -> None:
    known = known_ids(setup, 1)[0]
    [stranger] = entity_ids(setup["contract"], np.array([10_000_042])).tolist()
    first, second = predict(setup, [known, stranger])["predictions"]
    assert first["status"] == "ok"
    assert second == {
        "id": stranger,
        "status": "unknown_entity",
        "score": None,
        "label": None,
        "detail": second["detail"],
        "model_version": None,
    }
    assert "no features" in second["detail"]


def malformed_bodies(contract: DatasetContract, known: int | str) -> dict[str, object]:
    """Request bodies /predict must refuse with a 422, for the contract's id type."""
    wrong = {
        "int": ["12", 1.5, True, None, 2**63, -(2**63) - 1],  # beyond INT64 too
        "string": [12, True, "", None],
    }[contract.entity.dtype]
    return {
        "empty body": {},
        "no ids": {"ids": []},
        **{f"id {value!r}": {"ids": [known, value]} for value in wrong},
        "an extra field": {"ids": [known], "extra": True},
        "the key column's name as the field": {contract.entity.key: [known]},
        "too many ids": {"ids": [known] * (MAX_BATCH + 1)},
        "not an object": [known],
        **{
            f"explain {value!r}": {"ids": [known], "explain": value}
            for value in (-1, len(contract.feature_columns) + 1, "3", 3.0, True, None)
        },
        "too many ids to explain": {"ids": [known] * (MAX_EXPLAINED_IDS + 1), "explain": 1},
    }


def test_malformed_requests_get_422_with_a_message(setup) -> None:
    known = known_ids(setup, 1)[0]
    for what, body in malformed_bodies(setup["contract"], known).items():
        response = setup["http"].post("/predict", json=body)
        assert response.status_code == 422, what
        assert response.json()["detail"], what


def test_the_openapi_schema_names_the_entity_key(setup) -> None:
    contract = setup["contract"]
    schemas = setup["http"].get("/openapi.json").json()["components"]["schemas"]
    ids = schemas["PredictRequest"]["properties"]["ids"]
    kind = {"int": "integer", "string": "string"}[contract.entity.dtype]
    assert ids["items"]["type"] == kind
    assert f"`{contract.entity.key}` (dataset.entity.key)" in ids["description"]
    assert f"`{contract.entity.name}` entity" in ids["description"]
    assert schemas["PredictRequest"]["required"] == ["ids"]
    explain = schemas["PredictRequest"]["properties"]["explain"]
    assert (explain["type"], explain["minimum"], explain["maximum"], explain["default"]) == (
        "integer",
        0,
        len(contract.feature_columns),
        0,
    )
    # explaining is costly: the schema itself caps the ids of a request that asks for it
    assert schemas["PredictRequest"]["then"]["properties"]["ids"]["maxItems"] == MAX_EXPLAINED_IDS
    answer = schemas["Prediction"]["properties"]
    assert answer["id"]["type"] == kind and contract.entity.key in answer["id"]["description"]
    assert contract.label.column in answer["score"]["description"]


def test_every_prediction_is_logged(setup) -> None:
    contract = setup["contract"]
    before = sum(f.read_text().count("\n") for f in log_files(setup["log"]))
    ids = known_ids(setup, 3)
    served = predict(setup, ids)["predictions"]
    lines = [line for f in log_files(setup["log"]) for line in f.read_text().splitlines()]
    assert len(lines) == before + 3
    record = json.loads(lines[-1])
    assert tuple(record) == tuple(f for f in RECORD_FIELDS if f not in SHADOW_FIELDS)
    assert record["entity_id"] == ids[-1] and type(record["entity_id"]) is type(ids[-1])
    assert list(record["features"]) == contract.feature_columns
    assert record["score"] == served[-1]["score"] and record["predicted"] == served[-1]["label"]
    read_back = read_prediction_log(setup["log"], contract)  # what the monitor reads
    assert read_back is not None and read_back.malformed == []
    assert len(read_back.frame) == len(lines)
    assert read_back.frame[contract.entity.key].tolist()[-3:] == ids
    assert read_back.frame["score"].iloc[-1] == record["score"]


def test_explain_returns_each_ids_top_contributions_and_logs_them(setup) -> None:
    contract = setup["contract"]
    columns = contract.feature_columns
    ids = known_ids(setup, 3)
    [stranger] = entity_ids(contract, np.array([10_000_044])).tolist()
    response = setup["http"].post("/predict", json={"ids": [*ids, stranger], "explain": 4})
    assert response.status_code == 200, response.text
    *answers, unknown = response.json()["predictions"]
    assert unknown["status"] == "unknown_entity" and "explanation" not in unknown
    model = ChampionModel(setup["model"], contract).get()
    frame, _ = online_features(setup["store"], ids, contract)
    expected = explain_rows(model.booster, frame[columns].to_numpy("float64"), columns, 4)
    for answer, reference in zip(answers, expected, strict=True):
        explanation = answer["explanation"]
        parts = explanation["contributions"]
        assert [c["feature"] for c in parts] == [c["feature"] for c in reference["contributions"]]
        assert {c["feature"] for c in parts} <= set(columns) and len(parts) == 4
        sizes = [abs(c["contribution"]) for c in parts]
        assert sizes == sorted(sizes, reverse=True)  # the largest first, by |SHAP value|
        assert explanation["margin"] == pytest.approx(reference["margin"], abs=1e-6)
        total = explanation["bias"] + sum(c["contribution"] for c in parts) + explanation["rest"]
        assert total == pytest.approx(explanation["margin"], abs=1e-9)
        # the champion is not calibrated: its score is the margin's probability
        assert answer["score"] == pytest.approx(1 / (1 + np.exp(-explanation["margin"])), abs=1e-6)
    lines = [line for f in log_files(setup["log"]) for line in f.read_text().splitlines()]
    logged = [json.loads(line) for line in lines[-3:]]
    assert [r[EXPLANATION] for r in logged] == [a["explanation"] for a in answers]
    plain = predict(setup, ids[:1])["predictions"][0]  # without `explain`: as before
    assert "explanation" not in plain


def test_health_and_metadata(setup) -> None:
    contract = setup["contract"]
    assert setup["http"].get("/health").json()["status"] == "ok"
    meta = setup["http"].get("/metadata").json()
    assert meta["feature_service"] == "model_features"
    assert meta["features"] == contract.feature_columns
    assert meta["entity"] == {
        "name": contract.entity.name,
        "key": contract.entity.key,
        "dtype": contract.entity.dtype,
    }
    assert meta["features_fresh_until"]
    assert meta["online_store"] == SQLITE_STORE


def test_model_is_refreshed_when_the_alias_moves(setup) -> None:
    ids = known_ids(setup, 1)
    client, versions, model = setup["client"], setup["versions"], setup["model"]
    try:
        client.set_registered_model_alias(model, CHAMPION, versions[1])
        assert predict(setup, ids)["model_version"] == versions[1]
    finally:
        client.set_registered_model_alias(model, CHAMPION, versions[0])


def test_no_champion_is_503_not_500(setup) -> None:
    contract = setup["contract"]
    champion = ChampionModel("no-such-model", contract)
    http = TestClient(create_app(setup["store"], champion, setup["log"], contract))
    response = http.post("/predict", json={"ids": known_ids(setup, 1)})
    assert response.status_code == 503
    assert "no 'champion' version" in response.json()["detail"]
    assert http.get("/health").json()["status"] == "degraded"


def test_a_contract_the_feature_store_does_not_hold_is_refused_at_start(setup) -> None:
    contract = setup["contract"]
    flipped = "string" if contract.entity.dtype == "int" else "int"
    other = contract.model_copy(
        update={"entity": contract.entity.model_copy(update={"dtype": flipped})}
    )
    with pytest.raises(ConfigError, match=rf"keyed by \['{contract.entity.key}'\]"):
        create_app(setup["store"], ChampionModel(setup["model"], other), setup["log"], other)


# --- a calibrated champion: one calibration, applied alike everywhere -------------------


def calibrated_champion(setup: dict, root, train_config, split_config, project_params) -> dict:
    """What the train stage does with train.calibration: isotonic, on setup's training
    set (written under `root`), registered as the champion of a model of its own."""
    import mlflow

    from {{ cookiecutter.package_name }} import tracking
    from {{ cookiecutter.package_name }}.champion import register
    from {{ cookiecutter.package_name }}.config import MlflowConfig
    from {{ cookiecutter.package_name }}.files import write_json
    from {{ cookiecutter.package_name }}.model import save_model
    from {{ cookiecutter.package_name }}.split import time_split
    from {{ cookiecutter.package_name }}.training import train_model

    contract = setup["contract"]
    paths = project_params.paths.model_copy(
        update={k: root / v for k, v in project_params.paths.model_dump().items()}
    )
    paths.training_set.parent.mkdir(parents=True)
    setup["labelled"].to_parquet(paths.training_set, index=False)
    splits = time_split(setup["labelled"], split_config, contract)
    cfg = train_config.model_copy(update={"calibration": "isotonic"})
    booster, meta = train_model(splits, cfg, contract)
    save_model(booster, meta, paths.model_dir)
    sample = splits.train[contract.feature_columns].head(5).astype("float32")
    run_id = tracking.log_training(booster, meta, {}, sample, {})
    write_json({"run_id": run_id}, paths.model_dir / tracking.RUN_FILE)
    name = f"{setup['model']}-calibrated"
    version = register(setup["client"], name, run_id, meta.threshold).version
    setup["client"].set_registered_model_alias(name, CHAMPION, version)
    uri = mlflow.get_tracking_uri()
    mlflow_cfg = MlflowConfig(tracking_uri=uri, experiment="t", registered_model=name)
    return {"paths": paths, "meta": meta, "name": name, "run_id": run_id, "mlflow": mlflow_cfg}


def test_evaluate_scoring_and_serving_give_a_row_the_same_calibrated_score(
    setup, tmp_path, train_config, split_config, project_params
) -> None:
    from {{ cookiecutter.package_name }}.scoring import score_features
    from {{ cookiecutter.package_name }}.stages import evaluate

    contract, features = setup["contract"], setup["features"]
    key, stamp = contract.entity.key, contract.timestamp
    trained = calibrated_champion(setup, tmp_path, train_config, split_config, project_params)
    paths, calibration = trained["paths"], trained["meta"].calibration
    assert calibration.method == "isotonic"
    evaluate.run(paths, split_config, project_params.evaluate, trained["mlflow"], contract)
    evaluated = pd.read_parquet(paths.predictions)
    # rows of the test days that are their entity's newest: what the online store holds
    newest = features.loc[features.groupby(key)[stamp].idxmax()]
    rows = newest.merge(evaluated[[key, stamp, "score"]], on=[key, stamp]).head(8)
    assert len(rows) >= 3
    ids = rows[key].tolist()

    champion = ChampionModel(trained["name"], contract, refresh_seconds=0)
    http = TestClient(create_app(setup["store"], champion, tmp_path / "p.jsonl", contract))
    served = http.post("/predict", json={"ids": ids, "explain": 2}).json()["predictions"]
    scored = score_features(champion.get(), rows, contract)
    assert [p["score"] for p in served] == rows["score"].tolist() == scored["score"].tolist()
    assert [p["label"] for p in served] == scored["predicted"].tolist()
    # calibrated: not the raw score, whose log-odds the explanation accounts for
    margins = np.array([p["explanation"]["margin"] for p in served])
    raw = 1 / (1 + np.exp(-margins))
    np.testing.assert_allclose(rows["score"], calibration.apply(raw), atol=1e-5)
    assert not np.allclose(rows["score"], raw, atol=1e-3)

    metrics = json.loads((paths.reports / "metrics.json").read_text())
    assert metrics["brier"] < metrics["uncalibrated"]["brier"]  # scale_pos_weight: auto
    logged = {a.path for a in setup["client"].list_artifacts(trained["run_id"], "evaluation")}
    assert {"evaluation/shap_importance.csv", "evaluation/reliability.csv"} <= logged
    shap = pd.read_csv(paths.reports / "plots" / "shap_importance.csv")
    assert set(shap["feature"]) == set(contract.feature_columns)


# --- keys, limits, body size, metrics, the OpenAPI contract ------------------------------


def keyed_service(setup: dict, limit: RateLimitConfig) -> dict:
    """The service with two API keys, `ops` and `batch-job`, metered by `limit`."""
    first, second = new_key("ops"), new_key("batch-job")
    gate = Gatekeeper(parse_entries(f"{first[1]}\n{second[1]}", "test"), limit)
    champion = ChampionModel(setup["model"], setup["contract"], refresh_seconds=0)
    app = create_app(setup["store"], champion, setup["log"], setup["contract"], gate, 4096)
    return {"http": TestClient(app), "keys": [first[0], second[0]]}


@pytest.fixture(scope="module")
def keyed(setup) -> dict:
    return keyed_service(setup, RateLimitConfig(requests_per_second=1000, burst=1000))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_without_a_valid_key_the_service_answers_401(setup, keyed) -> None:
    body = {"ids": known_ids(setup, 1)}
    for headers in ({}, bearer("not-a-key"), {"Authorization": f"Basic {keyed['keys'][0]}"}):
        response = keyed["http"].post("/predict", json=body, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"
    for path in ("/metadata", "/metrics"):
        assert keyed["http"].get(path).status_code == 401
    assert keyed["http"].get("/health").status_code == 200  # probes need no key
    ok = keyed["http"].post("/predict", json=body, headers=bearer(keyed["keys"][1]))
    assert ok.status_code == 200, ok.text


def test_each_key_has_its_own_rate_limit_answered_with_429(setup) -> None:
    keyed = keyed_service(setup, RateLimitConfig(requests_per_second=0.5, burst=3))
    ops, batch = keyed["keys"]
    statuses = [keyed["http"].get("/metadata", headers=bearer(ops)).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429, statuses
    limited = keyed["http"].get("/metadata", headers=bearer(ops))
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    assert "requests/s" in limited.json()["detail"]
    assert keyed["http"].get("/metadata", headers=bearer(batch)).status_code == 200


def test_a_body_over_the_limit_is_413_declared_or_streamed(setup, keyed) -> None:
    key = bearer(keyed["keys"][1])
    big = json.dumps({"ids": known_ids(setup, 1) * 2000}).encode()
    response = keyed["http"].post("/predict", content=big, headers=key)
    assert response.status_code == 413 and "4096 bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: the body arrives in pieces
        for start in range(0, len(big), 1024):
            yield big[start : start + 1024]

    streamed = keyed["http"].post("/predict", content=chunks(), headers=key)
    assert streamed.status_code == 413


def test_metrics_parse_as_prometheus_text(setup, keyed) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    http, key = keyed["http"], bearer(keyed["keys"][1])
    [stranger] = entity_ids(setup["contract"], np.array([10_000_043])).tolist()
    assert http.post("/predict", json={"ids": [*known_ids(setup, 2), stranger]}, headers=key)
    http.post("/predict", json={"ids": []}, headers=key)  # 422
    response = http.get("/metrics", headers=key)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert samples[("prediction_entities_total", (("status", "ok"),))] >= 2
    assert samples[("prediction_entities_total", (("status", "unknown_entity"),))] >= 1
    assert (
        samples[("prediction_http_requests_total", (("endpoint", "/predict"), ("status", "200")))]
        >= 1
    )
    assert (
        samples[("prediction_http_requests_total", (("endpoint", "/predict"), ("status", "422")))]
        >= 1
    )
    assert (
        samples[("prediction_http_request_duration_seconds_count", (("endpoint", "/predict"),))]
        >= 2
    )
    assert samples[("prediction_score_count", ())] >= 2
    (info,) = families["prediction_model_info"].samples
    assert info.labels == {"model_name": setup["model"], "model_version": setup["versions"][0]}


def test_every_status_the_service_returns_is_declared(setup) -> None:
    paths = setup["http"].get("/openapi.json").json()["paths"]
    assert set(paths["/predict"]["post"]["responses"]) == {
        "200", "400", "401", "413", "422", "429", "503"
    }  # fmt: skip
    assert {"401", "429", "503"} <= set(paths["/metadata"]["get"]["responses"])
    assert {"200", "401", "429"} <= set(paths["/metrics"]["get"]["responses"])


def exact_ids(body: object) -> bool:
    """Whether a body JSON Schema calls valid is valid for the service too. JSON Schema's
    `integer` admits 1.0 and checks bounds in floating point, so a generated "valid" id
    can be 201.0 or 2**63 + 191, and a generated `explain` 3.0; the service takes only
    JSON integers (ids within INT64)."""
    if isinstance(body, dict) and isinstance(body.get("explain"), float):
        return False
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list):
        return True
    return not any(
        isinstance(i, float) or (isinstance(i, int) and not -(2**63) <= i < 2**63) for i in ids
    )


FUZZ_EXAMPLES = 30  # per operation and mode; derandomized, so every run sends the same cases


@pytest.mark.parametrize("with_keys", [False, True], ids=["no-keys", "keys"])
def test_an_openapi_fuzzer_finds_no_5xx_and_no_accepted_invalid_request(setup, keyed, with_keys):
    """schemathesis, from the service's own OpenAPI document: valid requests (by the
    schema) and invalid ones, every default check (no 5xx, only declared statuses,
    responses match their schemas, invalid bodies rejected, valid ones accepted)."""
    import schemathesis
    from hypothesis import HealthCheck, assume, given, settings
    from schemathesis import GenerationMode
    from schemathesis.config import SchemathesisConfig

    http = keyed["http"] if with_keys else setup["http"]
    headers = bearer(keyed["keys"][1]) if with_keys else {}
    # an invalid body can also be refused for its size (413) before its schema is read
    rejected = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
    checks = {"negative_data_rejection": {"expected-statuses": rejected}}
    config = SchemathesisConfig.from_dict({"checks": checks})
    schema = schemathesis.openapi.from_asgi("/openapi.json", http.app, config=config)
    sent: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if operation.body:
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=FUZZ_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case) -> None:
                assume(case.meta.generation.mode != GenerationMode.POSITIVE or exact_ids(case.body))
                case.call_and_validate(headers=headers)
                label = case.operation.label
                sent[label] = sent.get(label, 0) + 1

            fuzz()
    assert set(sent) >= {"POST /predict", "GET /metadata", "GET /metrics", "GET /health"}
    assert sent["POST /predict"] >= FUZZ_EXAMPLES, sent
