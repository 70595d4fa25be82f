"""`dataset init`: a table none of the code knows becomes the project's contract,
source, window and suites, and the raw gate then passes on it (and fails on a bad day)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }}.config import load_params
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_frame, source_rows
from {{ cookiecutter.package_name }}.dataset_init import describe, infer, settings
from {{ cookiecutter.package_name }}.dataset_write import init_project
from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.gates import GateFailed
from {{ cookiecutter.package_name }}.stages import ingest, validate_raw

from conftest import PROJECT_ROOT

TABLE_CONTRACT = DatasetContract.model_validate(
    {
        "entity": {"name": "account", "key": "account_ref", "dtype": "string"},
        "timestamp": "seen_at",
        "label": {"column": "defaulted", "positive": "yes", "negative": ["no"]},
        "numeric": {"balance": {"nullable": True}, "age_days": {}},
        "categorical": {
            "region": {"values": ["north", "south-east", "west"], "nullable": True},
            "tier": {"values": [1, 2, 3]},
        },
        "slices": ["region"],
    }
)
DAYS = [dt.date(2026, 5, 1) + dt.timedelta(days=i) for i in range(20)]
OPTIONS = {
    "entity": "account_ref",
    "entity_name": "account",
    "timestamp": "seen_at",
    "label": "defaulted",
    "positive": "yes",
    "categorical": ["tier"],
    "slices": ["region"],
}


def table_rows(days: list[dt.date] = DAYS) -> pd.DataFrame:
    rows = source_rows(TABLE_CONTRACT, contract_frame(TABLE_CONTRACT, days, 60, seed=5))
    rows["seen_at"] = rows["seen_at"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return rows.sample(frac=1.0, random_state=1)  # a file keeps no order


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's own files (params, interval, dvc.yaml, suites) in a scratch folder."""
    for name in ("params.yaml", "interval.yaml", "dvc.yaml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    shutil.copytree(PROJECT_ROOT / "expectations", tmp_path / "expectations")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["ingest"]["source"] = "synthetic"  # as shipped: a first init needs no --force
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "incoming" / "accounts.csv"
    path.parent.mkdir()
    table_rows().to_csv(path, index=False)
    return path


def test_init_writes_the_contract_source_window_and_suites(project: Path, table: Path) -> None:
    done = init_project(project, table, False, **OPTIONS)
    p = load_params(project / "params.yaml")
    contract = p.dataset
    assert contract.entity == TABLE_CONTRACT.entity
    assert contract.label.positive == "yes" and contract.label.negative == ["no"]
    assert {c: s.nullable for c, s in contract.numeric.items()} == {
        "balance": True,
        "age_days": False,
    }
    assert set(contract.categorical) == {"region", "tier"}
    assert set(contract.categorical["region"].values) == {"north", "south-east", "west"}
    assert contract.categorical["region"].nullable
    assert contract.categorical["tier"].values == [1, 2, 3]
    assert contract.slices == ["region"] and contract.derived == []
    assert p.ingest.source == "files" and p.ingest.files.path == "data/source/accounts.csv"
    assert (project / "data/source/accounts.csv").is_file()
    assert p.interval.end_date == DAYS[-1] and p.data.window_days == len(DAYS)
    assert p.split.valid_days + p.split.test_days < len(DAYS)
    assert "data/source/accounts.csv" in (project / "dvc.yaml").read_text()
    for suite in done["suites"].values():
        assert suite.is_file()
    assert "account_ref" in describe(done["inferred"])


def test_the_raw_gate_passes_on_the_table_and_stops_a_bad_day(project: Path, table: Path) -> None:
    init_project(project, table, False, **OPTIONS)
    p = load_params(project / "params.yaml")
    ingest.run(p.window, p.ingest, p.dataset, p.paths.raw)
    report = validate_raw.run(p.paths, p.window, p.validate_raw, p.dataset)
    assert report.passed

    rows = table_rows()
    last = rows["seen_at"].str.startswith(DAYS[-1].isoformat())
    rows.loc[last, "age_days"] = np.nan  # not nullable in the table
    rows.to_csv(project / "data/source/accounts.csv", index=False)
    ingest.run(p.window, p.ingest, p.dataset, p.paths.raw)
    with pytest.raises(GateFailed, match=DAYS[-1].isoformat()):
        validate_raw.run(p.paths, p.window, p.validate_raw, p.dataset)


def test_a_second_init_needs_force(project: Path, table: Path) -> None:
    init_project(project, table, False, **OPTIONS)
    with pytest.raises(StageInputError, match="--force"):
        init_project(project, table, False, **OPTIONS)
    init_project(project, table, True, **OPTIONS)


def test_the_window_is_the_trailing_run_of_days_with_rows() -> None:
    gap = DAYS[5]
    rows = table_rows([d for d in DAYS if d != gap])
    inferred = infer(rows, **OPTIONS)
    assert inferred.end_date == DAYS[-1]
    assert inferred.window_days == len(DAYS) - DAYS.index(gap) - 1
    assert any(str(gap) in note for note in inferred.review)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"label": "no_such_column"}, r"\['no_such_column'\] not in the table"),
        ({"positive": "maybe"}, "--positive 'maybe' is not a value of defaulted"),
        ({"positive": None}, "pass --positive"),
    ],
)
def test_bad_options_name_what_to_fix(change: dict, message: str) -> None:
    with pytest.raises(StageInputError, match=message):
        infer(table_rows(), **{**OPTIONS, **change})


def test_a_column_of_free_text_is_refused_unless_dropped() -> None:
    rows = table_rows()
    rows["note"] = [f"free text {i}" for i in range(len(rows))]
    with pytest.raises(StageInputError, match=r"column note has .* --drop note"):
        infer(rows, **OPTIONS)
    contract = infer(rows, **OPTIONS, drop=["note"]).contract
    assert contract.ignored == ["note"] and "note" not in contract.feature_columns


def test_a_horizon_longer_than_the_window_allows_is_refused(project: Path, table: Path) -> None:
    with pytest.raises(StageInputError, match="too few to train"):
        init_project(project, table, False, **OPTIONS, horizon_days=len(DAYS) - 2)
    assert load_params(project / "params.yaml").ingest.source == "synthetic"  # nothing written


def test_settings_are_relative_to_the_table_and_attainable() -> None:
    inferred = infer(table_rows(), **OPTIONS)
    extra = settings(inferred)
    assert extra["data"]["window_days"] == len(DAYS)
    low, _, high = inferred.daily_rows
    assert extra["validate_raw"]["min_rows_per_day"] <= low <= high
    assert high <= extra["validate_raw"]["max_rows_per_day"]
    lifts = extra["promote.minimum_lifts"]
    assert lifts["pr_auc"] > 1.0
    assert lifts["pr_auc"] * inferred.positive_rate < 1.0
    slice_lift = extra["promote.slice_minimum_lifts"]["pr_auc"]
    assert inferred.slice_rate is not None and slice_lift * inferred.slice_rate < 1.0
    test_rows = inferred.daily_rows[1] * extra["split"]["test_days"]
    assert 10 <= extra["evaluate"]["min_slice_rows"] <= max(10, test_rows // 4)
    # a small table: a longer current window, and drift judged by tests with p-values
    assert extra["monitor"]["current_days"] == len(DAYS) // 3
    assert extra["monitor"]["min_rows"] <= inferred.daily_rows[1] * len(DAYS) // 3
    assert extra["monitor.drift"]["num_stattest"] == "ks"
    assert extra["monitor.drift"]["cat_stattest"] == "chisquare"
