"""The columns monitoring reads and shows, all from the dataset contract.

Monitored are the columns people read: the numeric model features (declared and
derived; a value flagged missing shows as missing again) and the raw categories
(each one-hot group decoded back). Every column a monitoring input must hold is
named with where it comes from, so a missing one says what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..contract import DatasetContract
from ..errors import ConfigError, StageInputError
from ..prediction_log import PREDICTION, SCORE

SOURCE = "source"  # which input a current row comes from: "batch" or "serving"
RESERVED = (SCORE, PREDICTION, SOURCE)  # columns monitoring adds beside the contract's


@dataclass(frozen=True)
class MonitoredColumns:
    """The contract's columns as monitoring uses them (`MonitoredColumns.of(contract)`)."""

    entity: str
    timestamp: str
    label: str
    numeric: list[str]  # numeric model features: declared, then derived
    declared_numeric: list[str]  # the raw numeric columns (dataset.numeric)
    categorical: list[str]  # raw categorical columns, decoded from their one-hot groups
    vocabularies: dict[str, list]
    one_hot: dict[str, list[str]]  # categorical column -> its one-hot features
    nullable_categorical: list[str]
    missing_flags: dict[str, str]  # flag feature -> the numeric column it flags
    features: list[str]  # every model feature, in the model's order
    origins: dict[str, str]  # column -> where the contract declares it
    contract: DatasetContract

    @classmethod
    def of(cls, contract: DatasetContract) -> MonitoredColumns:
        categorical = list(contract.categorical)
        columns = cls(
            entity=contract.entity.key,
            timestamp=contract.timestamp,
            label=contract.label.column,
            numeric=[*contract.numeric, *contract.derived],
            declared_numeric=list(contract.numeric),
            categorical=categorical,
            vocabularies={c: list(s.values) for c, s in contract.categorical.items()},
            one_hot=contract.one_hot_groups,
            nullable_categorical=[c for c in categorical if contract.categorical[c].nullable],
            missing_flags=contract.missing_flags,
            features=contract.feature_columns,
            origins=column_origins(contract),
            contract=contract,
        )
        clashes = [
            c for c in (columns.label, columns.timestamp, *columns.monitored) if c in RESERVED
        ]
        if clashes:
            raise ConfigError(
                f"params.yaml dataset names column(s) {', '.join(clashes)}, which monitoring "
                f"adds itself ({', '.join(RESERVED)}): rename them in ingest and the contract"
            )
        return columns

    @property
    def monitored(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def raw_required(self) -> list[str]:
        """What the raw batches must hold: key, timestamp, label and the declared features."""
        return [
            self.entity,
            self.timestamp,
            self.label,
            *self.declared_numeric,
            *self.categorical,
        ]

    @property
    def current(self) -> list[str]:
        """The columns of the current (and labelled) rows."""
        return [*self.monitored, SCORE, PREDICTION, self.label, SOURCE, self.timestamp]


def column_origins(contract: DatasetContract) -> dict[str, str]:
    """Every column of a raw row or a feature row -> the params.yaml key it comes from."""
    origins = {
        contract.entity.key: "dataset.entity.key",
        contract.timestamp: "dataset.timestamp",
        contract.label.column: "dataset.label.column",
        **{c: "dataset.numeric" for c in contract.numeric},
        **{c: "dataset.categorical" for c in contract.categorical},
        **{c: "dataset.derived" for c in contract.derived},
    }
    for flag, column in contract.missing_flags.items():
        origins[flag] = f"missing flag of dataset.numeric {column}"
    for column, group in contract.one_hot_groups.items():
        origins.update({f: f"one-hot of dataset.categorical {column}" for f in group})
    return origins


def require_columns(
    frame: pd.DataFrame, columns: list[str], what: str, origins: dict[str, str]
) -> None:
    """StageInputError naming each column of `columns` that `frame` lacks, and its origin."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        named = ", ".join(f"{c} ({origins.get(c, 'monitoring')})" for c in missing)
        raise StageInputError(
            f"column(s) {named} missing from {what}: monitoring reads the columns params.yaml "
            "dataset declares. Fix the source, or the contract (and re-run the stages that "
            "wrote the input)."
        )
