"""Batch scoring's input: the entities file, read and checked against the contract."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.errors import StageInputError
from {{ cookiecutter.package_name }}.scoring import read_entities


def ids(contract: DatasetContract) -> list[int | str]:
    return [7, 42] if contract.entity.dtype == "int" else ["007", "42"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_entities_are_read_typed_as_the_contract_says(
    tmp_path: Path, any_key_contract: DatasetContract, suffix: str
) -> None:
    key, stamp = any_key_contract.entity.key, any_key_contract.timestamp
    frame = pd.DataFrame({key: ids(any_key_contract), stamp: ["2026-03-30T00:00:00Z"] * 2})
    path = tmp_path / f"entities{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    read = read_entities(path, any_key_contract)
    assert read[key].tolist() == ids(any_key_contract)  # "007" stays text for a string key
    assert list(read.columns) == [key, stamp]


def test_a_file_without_the_key_column_names_it(tmp_path: Path, any_key_contract) -> None:
    path = tmp_path / "entities.csv"
    pd.DataFrame({"id": ids(any_key_contract)}).to_csv(path, index=False)
    with pytest.raises(
        StageInputError, match=rf"no entity key column '{any_key_contract.entity.key}'"
    ):
        read_entities(path, any_key_contract)


@pytest.mark.parametrize("dtype", ["int", "string"])
def test_keys_of_the_wrong_type_or_empty_are_refused(tmp_path: Path, contract, dtype) -> None:
    contract = contract.model_copy(
        update={"entity": contract.entity.model_copy(update={"dtype": dtype})}
    )
    key = contract.entity.key
    path = tmp_path / "entities.csv"
    if dtype == "int":
        pd.DataFrame({key: ["a", "b"]}).to_csv(path, index=False)
        with pytest.raises(StageInputError, match=rf"{key} holds string values, not int"):
            read_entities(path, contract)
    pd.DataFrame({key: [1.0, None]}).to_csv(path, index=False)
    with pytest.raises(StageInputError, match=rf"1 rows have no {key}"):
        read_entities(path, contract)


def test_a_missing_file_is_explained(tmp_path: Path, contract) -> None:
    with pytest.raises(StageInputError, match="not found"):
        read_entities(tmp_path / "nope.csv", contract)
