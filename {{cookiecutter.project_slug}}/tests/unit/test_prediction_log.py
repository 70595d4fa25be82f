"""The prediction-record schema: what the service writes, the monitor reads back,
for the project's contract and for a string-keyed one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import entity_ids
from {{ cookiecutter.package_name }}.prediction_log import (
    EXPLANATION,
    PREDICTION,
    RECORD_FIELDS,
    REQUIRED_FIELDS,
    SCORE,
    SHADOW_FIELDS,
    SHADOW_PREDICTION,
    SHADOW_SCORE,
    SHADOW_VERSION,
    PredictionRecord,
    parse_line,
    read_prediction_log,
)
from {{ cookiecutter.package_name }}.prediction_log_files import PredictionLogWriter, log_files

SERVED_FIELDS = tuple(f for f in RECORD_FIELDS if f not in SHADOW_FIELDS)


def ids(contract: DatasetContract, n: int) -> list[int | str]:
    return entity_ids(contract, np.arange(n)).tolist()


def record(contract: DatasetContract, i: int, **changes: object) -> PredictionRecord:
    fields = {
        "timestamp": f"2026-04-0{1 + i % 7}T10:00:00+00:00",
        "entity_id": ids(contract, i + 1)[i],
        "model_name": "m",
        "model_version": "2",
        "features": {c: float(i) for c in contract.feature_columns},
        "score": 0.25,
        "predicted": 0,
    }
    return PredictionRecord(**{**fields, **changes})


def test_records_written_are_read_back(tmp_path: Path, any_key_contract: DatasetContract) -> None:
    c = any_key_contract
    path = tmp_path / "logs" / "predictions.jsonl"
    writer = PredictionLogWriter(path)
    writer.append([record(c, 0), record(c, 1, predicted=1, score=0.9)])
    writer.append([record(c, 2)])
    [day] = log_files(path)  # the day's file: logs/predictions-YYYY-MM-DD.jsonl
    lines = day.read_text().splitlines()
    assert len(lines) == 3
    assert tuple(json.loads(lines[0])) == SERVED_FIELDS  # no shadow: no shadow fields
    assert "entity_id" in RECORD_FIELDS
    assert set(REQUIRED_FIELDS) <= set(RECORD_FIELDS)
    assert list(json.loads(lines[0])["features"]) == c.feature_columns

    log = read_prediction_log(path, c)
    assert log is not None and log.malformed == [] and log.lines == 3
    assert log.issue() is None
    frame = log.frame
    key = c.entity.key
    columns = [c.timestamp, key, "model_version", *c.feature_columns, SCORE, PREDICTION]
    assert list(frame.columns) == [*columns, SHADOW_VERSION, SHADOW_SCORE, SHADOW_PREDICTION]
    assert frame[key].tolist() == ids(c, 3)
    assert frame[SCORE].tolist() == [0.25, 0.9, 0.25]
    assert frame[PREDICTION].tolist() == [0, 1, 0]
    assert frame[c.feature_columns[-1]].tolist() == [0.0, 1.0, 2.0]
    assert frame[c.timestamp].iloc[0] == pd.Timestamp("2026-04-01T10:00:00", tz="UTC")


def test_optional_fields_may_be_absent_or_invalid(any_key_contract: DatasetContract) -> None:
    c = any_key_contract
    entry = json.loads(record(c, 0).to_json())
    for key in ("entity_id", "model_name", "model_version", "predicted"):
        del entry[key]
    parsed = parse_line(json.dumps(entry), c)
    assert (parsed.score, parsed.predicted, parsed.entity_id, parsed.model_version) == (
        0.25,
        None,
        None,
        "",
    )
    assert len(parsed.features) == len(c.feature_columns)
    assert (parsed.shadow_version, parsed.shadow_score, parsed.shadow_predicted) == (None,) * 3
    null_id = parse_line(record(c, 0, entity_id=None, predicted=True).to_json(), c)
    assert null_id.predicted is None and null_id.entity_id is None  # a bool is not 0/1


def test_shadow_fields_are_written_only_when_a_candidate_scored_and_read_back(
    tmp_path: Path, any_key_contract: DatasetContract
) -> None:
    c = any_key_contract
    path = tmp_path / "predictions.jsonl"
    shadowed = record(c, 1, shadow_version="3", shadow_score=0.75, shadow_predicted=1)
    PredictionLogWriter(path).append([record(c, 0), shadowed])
    (file,) = log_files(path)
    plain, both = (json.loads(line) for line in file.read_text().splitlines())
    assert tuple(plain) == SERVED_FIELDS
    assert tuple(both) == RECORD_FIELDS
    assert (both["model_version"], both["score"], both["predicted"]) == ("2", 0.25, 0)
    assert (both["shadow_version"], both["shadow_score"], both["shadow_predicted"]) == (
        "3",
        0.75,
        1,
    )

    frame = read_prediction_log(path, c).frame
    assert frame[SHADOW_VERSION].tolist() == [None, "3"]
    assert np.isnan(frame[SHADOW_SCORE].iloc[0]) and frame[SHADOW_SCORE].iloc[1] == 0.75
    assert frame[SHADOW_PREDICTION].isna().tolist() == [True, False]
    assert frame[SHADOW_PREDICTION].iloc[1] == 1


def test_a_bad_shadow_is_dropped_and_the_line_kept(any_key_contract: DatasetContract) -> None:
    c = any_key_contract
    entry = json.loads(
        record(c, 0, shadow_version="3", shadow_score=0.5, shadow_predicted=0).to_json()
    )
    for bad in (
        {"shadow_score": 1.5},
        {"shadow_score": "0.5"},
        {"shadow_score": None},
        {"shadow_version": 3},
        {"shadow_version": ""},
    ):
        parsed = parse_line(json.dumps({**entry, **bad}), c)
        assert (parsed.shadow_version, parsed.shadow_score) == (None, None), bad
        assert parsed.score == 0.25  # the champion's answer still counts
    label = parse_line(json.dumps({**entry, "shadow_predicted": True}), c)
    assert (label.shadow_version, label.shadow_score, label.shadow_predicted) == ("3", 0.5, None)


def test_an_entity_id_of_the_wrong_type_makes_the_line_malformed(
    tmp_path: Path, any_key_contract: DatasetContract
) -> None:
    c = any_key_contract
    good = record(c, 0)
    wrong = ["12", 1.5, True] if c.entity.dtype == "int" else [12, True, ["x"]]
    path = tmp_path / "predictions.jsonl"
    lines = [good.to_json(), *(record(c, 1, entity_id=w).to_json() for w in wrong)]
    path.write_text("\n".join(lines) + "\n")
    log = read_prediction_log(path, c)
    assert log is not None
    assert log.frame[c.entity.key].tolist() == [good.entity_id]
    assert [n for n, _ in log.malformed] == [2, 3, 4]
    assert all(f"dataset.entity.dtype {c.entity.dtype}" in why for _, why in log.malformed)
    assert log.issue().startswith(f"prediction log {path}: 3 of 4 lines malformed and skipped")


def test_features_are_read_by_the_contracts_names(
    tmp_path: Path, any_key_contract: DatasetContract
) -> None:
    c = any_key_contract
    entry = json.loads(record(c, 0).to_json())
    missing = c.feature_columns[0]
    del entry["features"][missing]
    text = record(c, 1, features={**record(c, 1).features, missing: "high"}).to_json()
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps(entry) + "\n" + text + "\n")
    log = read_prediction_log(path, c)
    assert log is not None and len(log.frame) == 0
    assert log.malformed == [
        (1, f"features lack {missing}"),
        (2, f"feature {missing} is not a number ('high')"),
    ]


def test_a_malformed_line_is_reported_with_examples(tmp_path: Path, contract) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(
        record(contract, 0).to_json()
        + "\n{oops\n"
        + record(contract, 1, score=-0.1).to_json()
        + "\n"
        + record(contract, 2, timestamp="yesterday").to_json()
        + "\n"
    )
    log = read_prediction_log(path, contract)
    assert log is not None and len(log.frame) == 1
    issue = log.issue()
    assert issue is not None
    assert issue.startswith(f"prediction log {path}: 3 of 4 lines malformed and skipped")
    assert "line 2: not JSON" in issue and "line 3: score is not a probability (-0.1)" in issue
    assert "line 4: timestamp is not ISO-8601 ('yesterday')" in issue


def test_no_log_yet_is_none(tmp_path: Path, contract) -> None:
    assert read_prediction_log(tmp_path / "absent.jsonl", contract) is None


def test_an_explanation_is_logged_when_asked_for_and_never_spoils_a_line(
    tmp_path: Path, any_key_contract: DatasetContract
) -> None:
    c = any_key_contract
    path = tmp_path / "predictions.jsonl"
    feature = c.feature_columns[0]
    explanation = {
        "margin": -1.5,
        "bias": -2.0,
        "contributions": [{"feature": feature, "value": 3.0, "contribution": 0.75}],
        "rest": -0.25,
    }
    explained = record(c, 1, explanation=explanation)
    shadowed = record(c, 2, shadow_version="3", shadow_score=0.5, shadow_predicted=1)
    PredictionLogWriter(path).append([record(c, 0), explained, shadowed])
    (file,) = log_files(path)
    plain, with_explanation, shadow = (json.loads(line) for line in file.read_text().splitlines())
    assert tuple(plain) == SERVED_FIELDS and EXPLANATION not in plain
    assert tuple(with_explanation) == (*SERVED_FIELDS, EXPLANATION)
    assert with_explanation[EXPLANATION] == explanation
    assert tuple(shadow) == RECORD_FIELDS  # the shadow's fields, no explanation
    # the reader ignores explanations: a malformed one leaves the line as good as any
    odd = json.loads(explained.to_json()) | {EXPLANATION: "not an object"}
    with file.open("a") as handle:
        handle.write(json.dumps(odd) + "\n")
    log = read_prediction_log(path, c)
    assert log is not None and log.malformed == [] and len(log.frame) == 4
    assert EXPLANATION not in log.frame.columns
