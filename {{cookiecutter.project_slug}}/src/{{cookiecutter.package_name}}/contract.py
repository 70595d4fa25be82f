"""The dataset contract: params.yaml `dataset`, the one declaration of your table.

It names the entity (the key column and its type), the event timestamp, the label
(its column, the value that means positive, and how long after an event its
outcome is known), the feature columns by role (numeric; categorical with its
vocabulary; nullable or not), the slices (columns, numeric columns cut into
quantile bins, crosses of two: slices.py) and the derived features (derived.py)
the model also reads. Ingest conforms batches to it; the model
features, the Feast entity and feature view, the suites that `dataset init`
writes, monitoring's column mapping, the service's request and the prediction
log all derive from it, so no other file names a column of your table.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .derived import DERIVED

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The model features are float64 in training, in Feast and in serving.
FEATURE_DTYPE = "float64"
Category = str | int  # a categorical column's values: text or small integers
MAX_SLICE_BINS = 20  # dataset.slice_bins: quantile bins per numeric column, at most


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _identifier(value: str, what: str) -> str:
    if not IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} must be an identifier (letters, digits, _; not starting with "
            "a digit): rename the column in your source or in ingest"
        )
    return value


class EntitySpec(_Strict):
    """Who a row is about: Feast's entity, the service's ids, the prediction log's key."""

    name: str  # the Feast entity's name, e.g. account
    key: str  # the column holding the id
    dtype: Literal["int", "string"] = "int"

    @field_validator("name", "key")
    @classmethod
    def _names(cls, value: str) -> str:
        return _identifier(value, "dataset.entity name/key")


class LabelSpec(_Strict):
    """What the model predicts. Ingest writes it as 1 (positive) or 0 (negative)."""

    column: str
    positive: Category | bool = 1  # the source's value meaning "positive"
    # The source's other values (all mean "negative"); empty: any value but `positive`.
    negative: list[Category | bool] = Field(default_factory=list)
    # An event's outcome is known this many days after it: younger labels are not used.
    horizon_days: int = Field(0, ge=0, le=3650)


class NumericSpec(_Strict):
    nullable: bool = False  # nullable: a `<column>_missing` flag feature is added


class CategoricalSpec(_Strict):
    values: list[Category] = Field(min_length=1)  # the vocabulary, in one-hot order
    nullable: bool = False  # a null or unseen value is all zeros in the one-hot group

    @field_validator("values")
    @classmethod
    def _distinct(cls, values: list[Category]) -> list[Category]:
        if len({str(v) for v in values}) != len(values):
            raise ValueError("the vocabulary lists a value twice")
        return values


class DatasetContract(_Strict):
    """params.yaml `dataset` (see the module docstring)."""

    entity: EntitySpec
    timestamp: str  # the UTC time each row was observed; cuts the daily batches
    label: LabelSpec
    numeric: dict[str, NumericSpec] = Field(default_factory=dict)
    categorical: dict[str, CategoricalSpec] = Field(default_factory=dict)
    slices: list[str] = Field(default_factory=list)  # metrics and promotion minimums per value
    # Numeric columns cut into this many quantile bins of the evaluated rows, each bin a slice.
    slice_bins: dict[str, int] = Field(default_factory=dict)
    # Pairs of slice columns (slices or slice_bins) whose combined values are slices too.
    slice_crosses: list[list[str]] = Field(default_factory=list)
    derived: list[str] = Field(default_factory=list)  # names registered in derived.py
    # Columns the source carries that the model does not read: the raw gate expects them.
    ignored: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> DatasetContract:
        roles = {
            "entity.key": [self.entity.key],
            "timestamp": [self.timestamp],
            "label.column": [self.label.column],
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "ignored": self.ignored,
        }
        seen: dict[str, str] = {}
        for role, columns in roles.items():
            for column in columns:
                _identifier(column, f"dataset.{role} column")
                if column in seen:
                    raise ValueError(f"column {column!r} is both {seen[column]} and {role}")
                seen[column] = role
        for column in self.slices:
            _identifier(column, "dataset.slices column")
            if column in seen and seen[column] != "categorical":
                raise ValueError(
                    f"slice column {column!r} is the {seen[column]}: slice by a categorical "
                    "column, or by a column declared only as a slice"
                )
        self._check_slicing()
        if not self.numeric and not self.categorical:
            raise ValueError("declare at least one feature column (dataset.numeric/categorical)")
        for name in self.derived:
            if name not in DERIVED:
                raise ValueError(
                    f"dataset.derived names {name!r}, which derived.py does not register "
                    f"(registered: {', '.join(sorted(DERIVED)) or 'none'})"
                )
            missing = [c for c in DERIVED[name].inputs if c not in self.numeric]
            if missing:
                raise ValueError(
                    f"derived feature {name!r} reads {missing}, not declared in dataset.numeric"
                )
        features = self.feature_columns
        clashes = sorted({c for c in features if features.count(c) > 1})
        if clashes:
            raise ValueError(f"feature names {clashes} are produced twice: rename a column")
        return self

    def _check_slicing(self) -> None:
        """slice_bins name numeric columns; slice_crosses pair two slice columns."""
        for column, bins in self.slice_bins.items():
            if column not in self.numeric:
                raise ValueError(
                    f"dataset.slice_bins names {column!r}, which is not a dataset.numeric "
                    f"column (numeric: {', '.join(self.numeric) or 'none'})"
                )
            if not 2 <= bins <= MAX_SLICE_BINS:
                raise ValueError(
                    f"dataset.slice_bins.{column}: {bins} bins; use 2 to {MAX_SLICE_BINS}"
                )
        sliced = [*self.slices, *self.slice_bins]
        seen: set[tuple[str, ...]] = set()
        for pair in self.slice_crosses:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ValueError(
                    f"dataset.slice_crosses entry {pair}: cross two different columns, "
                    "e.g. [segment, region]"
                )
            unknown = [c for c in pair if c not in sliced]
            if unknown:
                raise ValueError(
                    f"dataset.slice_crosses entry {pair} names {unknown}, neither in "
                    f"dataset.slices nor dataset.slice_bins (sliced: {', '.join(sliced) or 'none'})"
                )
            if tuple(sorted(pair)) in seen:
                raise ValueError(f"dataset.slice_crosses lists {pair} twice")
            seen.add(tuple(sorted(pair)))

    # --- raw rows -------------------------------------------------------------------

    @property
    def raw_columns(self) -> list[str]:
        """The columns of a raw batch, in order; slice columns not declared otherwise last."""
        declared = [
            self.entity.key,
            self.timestamp,
            *self.categorical,
            *self.numeric,
            self.label.column,
        ]
        extra = [c for c in self.slices if c not in declared]
        return [*declared, *extra, *self.ignored]

    @property
    def nullable_columns(self) -> list[str]:
        return [
            c for c, spec in (*self.numeric.items(), *self.categorical.items()) if spec.nullable
        ]

    def encode_label(self, values: pd.Series, where: str) -> pd.Series:
        """The label as 1 (positive) / 0 (negative), or a ValueError naming what is wrong."""
        positive = values == self.label.positive
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            positive = values.astype("string") == str(self.label.positive)
        known = values.notna()
        if self.label.negative:
            allowed = {str(v) for v in (self.label.positive, *self.label.negative)}
            bad = known & ~values.astype("string").isin(allowed)
            if bad.any():
                raise ValueError(
                    f"{where}: label column {self.label.column} holds "
                    f"{sorted(map(str, values[bad].unique()))[:5]}, neither dataset.label."
                    f"positive ({self.label.positive!r}) nor a listed negative value"
                )
        if not known.all():
            raise ValueError(
                f"{where}: label column {self.label.column} has {int((~known).sum())} empty "
                "values: leave rows out until their outcome is known"
            )
        return positive.astype("int64")

    def conform(self, batch: pd.DataFrame, where: str) -> pd.DataFrame:
        """A batch with the key as its declared type, UTC timestamps and a 0/1 label.
        Columns are neither added nor dropped: the raw gate judges the column set."""
        out = batch.copy()
        key = self.entity.key
        if key in out.columns:
            try:
                if self.entity.dtype == "int":
                    out[key] = out[key].astype("int64")
                else:
                    out[key] = out[key].astype("string").astype(object)
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"{where}: entity key {key} is not {self.entity.dtype} "
                    f"(dataset.entity.dtype): {exc}"
                ) from exc
        if self.label.column in out.columns:
            out[self.label.column] = self.encode_label(out[self.label.column], where)
        for column, spec in self.categorical.items():
            if column in out.columns and all(isinstance(v, str) for v in spec.values):
                out[column] = out[column].astype(object).where(out[column].notna(), None)
                out[column] = out[column].map(lambda v: v if v is None else str(v))
        return out

    def label_known_before(self, end_date: dt.date) -> pd.Timestamp:
        """Events at or after this time have no known outcome by the end of `end_date`."""
        end = pd.Timestamp(end_date, tz="UTC") + pd.Timedelta(days=1)
        return end - pd.Timedelta(days=self.label.horizon_days)

    # --- model features -------------------------------------------------------------

    @property
    def missing_flags(self) -> dict[str, str]:
        """Model features flagging a missing value -> the numeric column they flag."""
        return {f"{c}_missing": c for c, spec in self.numeric.items() if spec.nullable}

    def one_hot_columns(self, column: str) -> list[str]:
        """The model features of a categorical column's one-hot group, in vocabulary order."""
        return [
            f"{column}_{re.sub(r'[^0-9A-Za-z_]', '_', str(value))}"
            for value in self.categorical[column].values
        ]

    @property
    def one_hot_groups(self) -> dict[str, list[str]]:
        return {column: self.one_hot_columns(column) for column in self.categorical}

    @property
    def feature_columns(self) -> list[str]:
        """Every model feature, in the order the model reads them."""
        return [
            *self.numeric,
            *self.missing_flags,
            *self.derived,
            *(c for group in self.one_hot_groups.values() for c in group),
        ]

    @property
    def feature_view(self) -> str:
        """The Feast feature view holding the model features."""
        return f"{self.entity.name}_features"

    def key_values(self, values: list[int | str]) -> list[int | str]:
        """Entity ids as the online store keys them."""
        return [int(v) for v in values] if self.entity.dtype == "int" else [str(v) for v in values]
