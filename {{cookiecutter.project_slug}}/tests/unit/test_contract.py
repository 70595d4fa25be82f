"""The dataset contract: what it accepts, what it rejects, and how it conforms batches."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

import {{ cookiecutter.package_name }}
from {{ cookiecutter.package_name }}.contract import DatasetContract


def declare(**changes: object) -> dict:
    base = {
        "entity": {"name": "account", "key": "account_ref", "dtype": "string"},
        "timestamp": "seen_at",
        "label": {"column": "defaulted", "positive": "yes", "negative": ["no"], "horizon_days": 3},
        "numeric": {"balance": {"nullable": True}},
        "categorical": {"region": {"values": ["north", "south"]}},
        "slices": ["region"],
    }
    return {**base, **changes}


def test_the_project_contract_is_consistent(contract: DatasetContract) -> None:
    assert contract.entity.key in contract.raw_columns
    assert len(set(contract.feature_columns)) == len(contract.feature_columns)
    assert all(s in contract.raw_columns for s in contract.slices)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timestamp": "balance"}, "both numeric and timestamp|both timestamp and numeric"),
        ({"numeric": {}, "categorical": {}}, "at least one feature column"),
        ({"derived": ["no_such_feature"]}, "does not register"),
        ({"derived": ["avg_monthly_spend"]}, "reads .*not declared in dataset.numeric"),
        ({"timestamp": "seen at"}, "must be an identifier"),
        ({"categorical": {"region": {"values": ["a", "a"]}}}, "lists a value twice"),
        ({"categorical": {"region": {"values": []}}}, "at least 1 item"),
        ({"entity": {"name": "a", "key": "k", "dtype": "uuid"}}, "'int' or 'string'"),
        ({"colour": "blue"}, "Extra inputs"),
        ({"slices": ["balance"]}, "slice column 'balance' is the numeric"),
        ({"slices": ["defaulted"]}, "slice column 'defaulted' is the label.column"),
    ],
)
def test_inconsistent_declarations_are_rejected(changes: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DatasetContract.model_validate(declare(**changes))


def test_a_one_hot_name_clashing_with_a_column_is_rejected() -> None:
    clash = declare(numeric={"region_north": {}}, categorical={"region": {"values": ["north"]}})
    with pytest.raises(ValidationError, match="produced twice"):
        DatasetContract.model_validate(clash)


def batch(**columns: list) -> pd.DataFrame:
    base = {
        "account_ref": [17, 18, 19],
        "seen_at": pd.to_datetime(["2026-03-01 01:00"] * 3, utc=True),
        "region": ["north", "south", "north"],
        "balance": [1.0, None, 3.0],
        "defaulted": ["yes", "no", "no"],
    }
    return pd.DataFrame({**base, **columns})


def test_conform_types_the_key_and_encodes_the_label() -> None:
    contract = DatasetContract.model_validate(declare())
    out = contract.conform(batch(), "ingest 2026-03-01")
    assert out["account_ref"].tolist() == ["17", "18", "19"]
    assert out["defaulted"].tolist() == [1, 0, 0] and out["defaulted"].dtype == "int64"
    assert list(out.columns) == list(batch().columns)  # columns are the gate's to judge


def test_conform_rejects_unknown_and_empty_labels_naming_the_column() -> None:
    contract = DatasetContract.model_validate(declare())
    with pytest.raises(ValueError, match=r"defaulted holds \['maybe'\]"):
        contract.conform(batch(defaulted=["yes", "maybe", "no"]), "ingest 2026-03-01")
    with pytest.raises(ValueError, match="defaulted has 1 empty values"):
        contract.conform(batch(defaulted=["yes", None, "no"]), "ingest 2026-03-01")


def test_conform_rejects_a_key_of_the_wrong_type() -> None:
    contract = DatasetContract.model_validate(
        declare(entity={"name": "account", "key": "account_ref", "dtype": "int"})
    )
    with pytest.raises(ValueError, match="entity key account_ref is not int"):
        contract.conform(batch(account_ref=["a-1", "a-2", "a-3"]), "ingest 2026-03-01")


def test_integer_labels_with_a_positive_value_other_than_one() -> None:
    contract = DatasetContract.model_validate(
        declare(label={"column": "defaulted", "positive": 2, "negative": [1]})
    )
    assert contract.conform(batch(defaulted=[2, 1, 1]), "x")["defaulted"].tolist() == [1, 0, 0]


def test_labels_are_known_only_after_the_horizon() -> None:
    contract = DatasetContract.model_validate(declare())
    assert contract.label_known_before(dt.date(2026, 3, 31)) == pd.Timestamp("2026-03-29", tz="UTC")
    none = DatasetContract.model_validate(declare(label={"column": "defaulted"}))
    assert none.label_known_before(dt.date(2026, 3, 31)) == pd.Timestamp("2026-04-01", tz="UTC")


def test_no_module_names_a_column_of_the_table(contract: DatasetContract) -> None:
    """Column names come from the contract: only the demo's generator and derived
    features (and the contract's own docs) may spell them out."""
    package = Path({{ cookiecutter.package_name }}.__file__).parent
    allowed = {package / "datagen.py", package / "derived.py"}
    columns = {*contract.raw_columns, contract.entity.name, *contract.feature_columns}
    for path in sorted(package.rglob("*.py")):
        if path in allowed:
            continue
        text = path.read_text()
        named = sorted(c for c in columns if re.search(rf"[\"']{re.escape(c)}[\"']", text))
        assert not named, f"{path.relative_to(package)} names {named}: take them from the contract"
