"""The prediction service: Feast online features + the MLflow champion, over HTTP."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }} import tracking
from {{ cookiecutter.package_name }}.champion import CHAMPION, ChampionModel
from {{ cookiecutter.package_name }}.config import MlflowConfig
from {{ cookiecutter.package_name }}.feature_store import historical_features, materialize, open_store
from {{ cookiecutter.package_name }}.features import FEATURE_COLUMNS, build_labels
from {{ cookiecutter.package_name }}.model import predict_proba
from {{ cookiecutter.package_name }}.prediction_log import RECORD_FIELDS, read_prediction_log
from {{ cookiecutter.package_name }}.serving import create_app
from {{ cookiecutter.package_name }}.split import time_split
from {{ cookiecutter.package_name }}.training import train_model
from tools.point_in_time import point_in_time_join

from conftest import make_feast_repo

MODEL = "serving-test-model"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_raw, tiny_features, split_config, train_config):
    root = tmp_path_factory.mktemp("serving")
    store = open_store(make_feast_repo(root, tiny_features, "sqlite"))
    materialize(store, tiny_features)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    tracking.setup_mlflow(
        MlflowConfig(
            tracking_uri=mlflow.get_tracking_uri(), experiment="t", registered_model=MODEL
        ),
        root,
    )
    splits = time_split(point_in_time_join(build_labels(tiny_raw), tiny_features), split_config)
    versions = []
    for depth in (3, 5):  # two versions, to see the alias move
        booster, meta = train_model(splits, train_config.model_copy(update={"max_depth": depth}))
        run_id = tracking.log_training(
            booster,
            meta,
            {"train.max_depth": depth},
            splits.train[FEATURE_COLUMNS].head(5).astype("float32"),
            {},
        )
        versions.append(str(mlflow.register_model(f"runs:/{run_id}/model", MODEL).version))
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(MODEL, CHAMPION, versions[0])
    champion = ChampionModel(MODEL, refresh_seconds=0)
    log_path = root / "logs" / "predictions.jsonl"
    http = TestClient(create_app(store, champion, log_path))
    return {"store": store, "http": http, "client": client, "versions": versions, "log": log_path}


def known_ids(tiny_features: pd.DataFrame, n: int) -> list[int]:
    return [int(i) for i in tiny_features["customer_id"].drop_duplicates().head(n)]


def test_predict_one_and_a_batch(setup, tiny_features) -> None:
    ids = known_ids(tiny_features, 5)
    one = setup["http"].post("/predict", json={"customer_ids": ids[:1]})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model_version"] == setup["versions"][0]
    [prediction] = body["predictions"]
    assert prediction["status"] == "ok" and 0.0 <= prediction["score"] <= 1.0
    assert prediction["label"] in (0, 1)
    batch = setup["http"].post("/predict", json={"customer_ids": ids}).json()
    assert [p["customer_id"] for p in batch["predictions"]] == ids


def test_same_prediction_through_batch_path_and_http(setup, tiny_features) -> None:
    ids = known_ids(tiny_features, 20)
    at = tiny_features["event_timestamp"].max() + pd.Timedelta(seconds=1)
    offline = historical_features(
        setup["store"], pd.DataFrame({"customer_id": ids, "event_timestamp": at})
    )
    model = ChampionModel(MODEL).get()
    batch_scores = dict(
        zip(offline["customer_id"], predict_proba(model.booster, offline), strict=True)
    )
    served = setup["http"].post("/predict", json={"customer_ids": ids}).json()["predictions"]
    for p in served:
        assert p["score"] == pytest.approx(float(batch_scores[p["customer_id"]]), abs=1e-6)


def test_unknown_entity_gets_a_per_entity_answer(setup, tiny_features) -> None:
    known = known_ids(tiny_features, 1)[0]
    response = setup["http"].post("/predict", json={"customer_ids": [known, 42]})
    assert response.status_code == 200
    first, second = response.json()["predictions"]
    assert first["status"] == "ok"
    assert second == {
        "customer_id": 42,
        "status": "unknown_entity",
        "score": None,
        "label": None,
        "detail": second["detail"],
    }
    assert "no features" in second["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"customer_ids": []},
        {"customer_ids": ["abc"]},
        {"customer_ids": [1], "extra": True},
        {"customer_ids": list(range(1001))},
        [1, 2],
    ],
)
def test_malformed_requests_get_422_with_a_message(setup, body) -> None:
    response = setup["http"].post("/predict", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_every_prediction_is_logged(setup, tiny_features) -> None:
    before = setup["log"].read_text().count("\n") if setup["log"].exists() else 0
    ids = known_ids(tiny_features, 3)
    setup["http"].post("/predict", json={"customer_ids": ids})
    lines = setup["log"].read_text().splitlines()
    assert len(lines) == before + 3
    record = json.loads(lines[-1])
    assert set(record) == {
        "timestamp",
        "request_id",
        "customer_id",
        "model_name",
        "model_version",
        "features",
        "score",
        "predicted",
    }
    assert list(record["features"]) == FEATURE_COLUMNS
    assert tuple(record) == RECORD_FIELDS
    read_back = read_prediction_log(setup["log"])  # what the monitor reads: the same schema
    assert read_back is not None and read_back.malformed == []
    assert len(read_back.frame) == len(lines)
    assert read_back.frame["score"].iloc[-1] == record["score"]


def test_health_and_metadata(setup) -> None:
    assert setup["http"].get("/health").json()["status"] == "ok"
    meta = setup["http"].get("/metadata").json()
    assert meta["feature_service"] == "model_features"
    assert meta["features"] == FEATURE_COLUMNS
    assert meta["features_fresh_until"]
    assert meta["online_store"] == "sqlite"


def test_model_is_refreshed_when_the_alias_moves(setup, tiny_features) -> None:
    ids = known_ids(tiny_features, 1)
    client, versions = setup["client"], setup["versions"]
    try:
        client.set_registered_model_alias(MODEL, CHAMPION, versions[1])
        body = setup["http"].post("/predict", json={"customer_ids": ids}).json()
        assert body["model_version"] == versions[1]
    finally:
        client.set_registered_model_alias(MODEL, CHAMPION, versions[0])


def test_no_champion_is_503_not_500(setup) -> None:
    app = create_app(setup["store"], ChampionModel("no-such-model"), setup["log"])
    http = TestClient(app)
    response = http.post("/predict", json={"customer_ids": [1]})
    assert response.status_code == 503
    assert "no 'champion' version" in response.json()["detail"]
    assert http.get("/health").json()["status"] == "degraded"
