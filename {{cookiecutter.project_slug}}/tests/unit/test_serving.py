"""The prediction service: Feast online features + the MLflow champion, over HTTP,
for the project's contract and for a string-keyed one."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }} import tracking
from {{ cookiecutter.package_name }}.champion import CHAMPION, ChampionModel
from {{ cookiecutter.package_name }}.config import MlflowConfig
from {{ cookiecutter.package_name }}.contract import DatasetContract, EntitySpec
from {{ cookiecutter.package_name }}.contract_rows import contract_frame, entity_ids
from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.feature_store import historical_features, materialize, open_store
from {{ cookiecutter.package_name }}.features import build_features, build_labels
from {{ cookiecutter.package_name }}.model import predict_proba
from {{ cookiecutter.package_name }}.prediction_log import RECORD_FIELDS, read_prediction_log
from {{ cookiecutter.package_name }}.serving import MAX_BATCH, create_app
from {{ cookiecutter.package_name }}.split import time_split
from {{ cookiecutter.package_name }}.training import train_model

from conftest import make_feast_repo
from other_contracts import with_second_contract
from tools.point_in_time import point_in_time_join


def string_keyed(contract: DatasetContract) -> DatasetContract:
    entity = EntitySpec(name="account", key="account_ref", dtype="string")
    return contract.model_copy(update={"entity": entity})


@pytest.fixture(scope="module", params=with_second_contract("string_keyed"))
def setup(
    request, tmp_path_factory, contract, tiny_window, tiny_raw, split_config, train_config
) -> dict:
    if request.param == "project":
        raw = tiny_raw
    else:
        contract = string_keyed(contract)
        raw = contract_frame(contract, tiny_window.dates(), 300, population=2000, seed=5)
    features = build_features(raw, contract)
    root = tmp_path_factory.mktemp(f"serving-{request.param}")
    store = open_store(make_feast_repo(root, features, "sqlite", contract=contract))
    materialize(store, features, contract)
    model = f"serving-test-{request.param}"
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    tracking.setup_mlflow(
        MlflowConfig(
            tracking_uri=mlflow.get_tracking_uri(), experiment="t", registered_model=model
        ),
        root,
    )
    labelled = point_in_time_join(build_labels(raw, contract), features, contract)
    splits = time_split(labelled, split_config, contract)
    versions = []
    for depth in (3, 5):  # two versions, to see the alias move
        cfg = train_config.model_copy(update={"max_depth": depth})
        booster, meta = train_model(splits, cfg, contract)
        sample = splits.train[contract.feature_columns].head(5).astype("float32")
        run_id = tracking.log_training(booster, meta, {"train.max_depth": depth}, sample, {})
        versions.append(str(mlflow.register_model(f"runs:/{run_id}/model", model).version))
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(model, CHAMPION, versions[0])
    champion = ChampionModel(model, contract, refresh_seconds=0)
    log_path = root / "logs" / "predictions.jsonl"
    return {
        "contract": contract,
        "features": features,
        "model": model,
        "store": store,
        "http": TestClient(create_app(store, champion, log_path, contract)),
        "client": client,
        "versions": versions,
        "log": log_path,
    }


def known_ids(setup: dict, n: int) -> list[int | str]:
    key = setup["contract"].entity.key
    return setup["features"][key].drop_duplicates().head(n).tolist()


def predict(setup: dict, ids: list) -> dict:
    response = setup["http"].post("/predict", json={"ids": ids})
    assert response.status_code == 200, response.text
    return response.json()


def test_predict_one_and_a_batch(setup) -> None:
    ids = known_ids(setup, 5)
    body = predict(setup, ids[:1])
    assert body["model_version"] == setup["versions"][0]
    [prediction] = body["predictions"]
    assert prediction["id"] == ids[0] and type(prediction["id"]) is type(ids[0])
    assert prediction["status"] == "ok" and 0.0 <= prediction["score"] <= 1.0
    assert prediction["label"] in (0, 1)
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
    }
    assert "no features" in second["detail"]


def malformed_bodies(contract: DatasetContract, known: int | str) -> dict[str, object]:
    """Request bodies /predict must refuse with a 422, for the contract's id type."""
    wrong = {"int": ["12", 1.5, True, None], "string": [12, True, "", None]}[contract.entity.dtype]
    return {
        "empty body": {},
        "no ids": {"ids": []},
        **{f"id {value!r}": {"ids": [known, value]} for value in wrong},
        "an extra field": {"ids": [known], "extra": True},
        "the key column's name as the field": {contract.entity.key: [known]},
        "too many ids": {"ids": [known] * (MAX_BATCH + 1)},
        "not an object": [known],
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
    answer = schemas["Prediction"]["properties"]
    assert answer["id"]["type"] == kind and contract.entity.key in answer["id"]["description"]
    assert contract.label.column in answer["score"]["description"]


def test_every_prediction_is_logged(setup) -> None:
    contract = setup["contract"]
    before = setup["log"].read_text().count("\n") if setup["log"].exists() else 0
    ids = known_ids(setup, 3)
    served = predict(setup, ids)["predictions"]
    lines = setup["log"].read_text().splitlines()
    assert len(lines) == before + 3
    record = json.loads(lines[-1])
    assert tuple(record) == RECORD_FIELDS
    assert record["entity_id"] == ids[-1] and type(record["entity_id"]) is type(ids[-1])
    assert list(record["features"]) == contract.feature_columns
    assert record["score"] == served[-1]["score"] and record["predicted"] == served[-1]["label"]
    read_back = read_prediction_log(setup["log"], contract)  # what the monitor reads
    assert read_back is not None and read_back.malformed == []
    assert len(read_back.frame) == len(lines)
    assert read_back.frame[contract.entity.key].tolist()[-3:] == ids
    assert read_back.frame["score"].iloc[-1] == record["score"]


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
    assert meta["online_store"] == "sqlite"


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
