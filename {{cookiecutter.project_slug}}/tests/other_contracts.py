"""A dataset contract unlike the demo's, for tests that must hold for any contract:
a string key, other names, a nullable categorical, an integer vocabulary, a label
whose positive value is "yes", a label horizon, an undeclared slice column."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.contract import DatasetContract

LOAN = DatasetContract.model_validate(
    {
        "entity": {"name": "loan", "key": "loan_ref", "dtype": "string"},
        "timestamp": "observed_at",
        "label": {"column": "defaulted", "positive": "yes", "negative": ["no"], "horizon_days": 3},
        "numeric": {"balance": {"nullable": False}, "utilisation": {"nullable": True}},
        "categorical": {
            "grade": {"values": ["A", "B", "C"], "nullable": True},
            "region": {"values": [1, 2, 3]},
        },
        "slices": ["channel"],
    }
)


def with_second_contract(name: str) -> list:
    """Fixture params: the project's contract, then a second one (marked `other_contract`,
    so a run that already tests another table can leave it out)."""
    return ["project", pytest.param(name, marks=pytest.mark.other_contract)]
