"""The prediction-record schema: what the service writes, the monitor reads back."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from {{ cookiecutter.package_name }}.features import ENTITY, FEATURE_COLUMNS, TIMESTAMP
from {{ cookiecutter.package_name }}.prediction_log import (
    PREDICTION,
    RECORD_FIELDS,
    REQUIRED_FIELDS,
    SCORE,
    PredictionLogWriter,
    PredictionRecord,
    parse_line,
    read_prediction_log,
)


def record(i: int, **changes: object) -> PredictionRecord:
    fields = {
        "timestamp": f"2026-04-0{1 + i % 7}T10:00:00+00:00",
        "request_id": f"req-{i}",
        "customer_id": 100 + i,
        "model_name": "m",
        "model_version": "2",
        "features": {c: float(i) for c in FEATURE_COLUMNS},
        "score": 0.25,
        "predicted": 0,
    }
    return PredictionRecord(**{**fields, **changes})


def test_records_written_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "predictions.jsonl"
    writer = PredictionLogWriter(path)
    writer.append([record(0), record(1, predicted=1, score=0.9)])
    writer.append([record(2)])
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert tuple(json.loads(lines[0])) == RECORD_FIELDS
    assert set(REQUIRED_FIELDS) <= set(RECORD_FIELDS)

    log = read_prediction_log(path)
    assert log is not None and log.malformed == [] and log.lines == 3
    assert log.issue() is None
    frame = log.frame
    columns = [TIMESTAMP, ENTITY, "model_version", *FEATURE_COLUMNS, SCORE, PREDICTION]
    assert list(frame.columns) == columns
    assert frame[ENTITY].tolist() == [100, 101, 102]
    assert frame[SCORE].tolist() == [0.25, 0.9, 0.25]
    assert frame[PREDICTION].tolist() == [0, 1, 0]
    assert frame[TIMESTAMP].iloc[0] == pd.Timestamp("2026-04-01T10:00:00", tz="UTC")


def test_optional_fields_may_be_absent_or_invalid(tmp_path: Path) -> None:
    entry = json.loads(record(0).to_json())
    for key in ("request_id", "customer_id", "model_name", "model_version", "predicted"):
        del entry[key]
    _stamp, values, score, predicted, customer, version = parse_line(json.dumps(entry))
    assert (score, predicted, customer, version) == (0.25, None, None, "")
    assert len(values) == len(FEATURE_COLUMNS)
    bad_flag = parse_line(record(0, predicted=True, customer_id="x").to_json())
    assert bad_flag[3] is None and bad_flag[4] is None  # a bool is not 0/1, a string not an id


def test_a_malformed_line_is_reported_with_examples(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(record(0).to_json() + "\n{oops\n" + record(1, score=-0.1).to_json() + "\n")
    log = read_prediction_log(path)
    assert log is not None and len(log.frame) == 1
    issue = log.issue()
    assert issue is not None
    assert issue.startswith(f"prediction log {path}: 2 of 3 lines malformed and skipped")
    assert "line 2: not JSON" in issue and "line 3: score is not a probability (-0.1)" in issue
