"""Expectation suites: from the dataset contract, or profiled from a sample.

`raw_suite`, `features_suite` and `predictions_suite` write the gates' suites for a
contract (params.yaml `dataset`; `dataset init` calls them): what the contract
declares (columns, types, nullability, vocabularies, keys, the 0/1 label) is
critical; what only the data shows (numeric ranges and daily means, with headroom)
is a warning, since a value outside them is unusual, not impossible. Hard rules
about numbers are critical too: a model feature is finite, and a column never
negative in the profiled table stays so. `profile_suite` profiles any sample
without a contract (`expectations init`). Every expectation is a normal GX
expectation in GX's JSON format: tighten, loosen or delete them by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .contract import FEATURE_DTYPE, DatasetContract
from .errors import StageInputError
from .expectation_rules import (
    column_expectations,
    daily_batch_expectations,
    daily_mean,
    expectation,
    not_null,
    null_expectation,
    nullable_floor,
    numeric_expectations,
    of_type,
    type_name,
    unique_keys,
)
from .files import write_json

SCORE, PREDICTED = "score", "predicted"  # the columns evaluate and scoring add
PREDICTED_SHARE = (0.001, 0.6)  # the predicted positive share a sane model stays within
RAW_NOTES = (
    "Gate after ingest, applied to each daily batch on its own (src/{{ cookiecutter.package_name }}/raw_gate.py). "
    "Severity 'critical' stops the pipeline; 'warning' is reported only. $PARAMETER values "
    "are that day's, filled in at validation time: day_start/day_end (the day's bounds), now, "
    "min_rows/max_rows (params.yaml validate_raw, per day), min_label_share/max_label_share "
    "(plausible for the window's label rate)."
)


def _same_columns(frame: pd.DataFrame, expected: list[str], what: str) -> None:
    """StageInputError unless `frame` has rows and exactly the columns `expected`."""
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        raise StageInputError(
            f"{what} does not hold the columns of params.yaml dataset: missing "
            f"{missing or 'none'}; not declared {extra or 'none'}. Fix the source (or ingest), "
            "or declare the columns in the contract"
        )
    if frame.empty:
        raise StageInputError(f"{what} is empty: build the suites from a table with rows")


def _key_type(contract: DatasetContract) -> dict[str, Any]:
    key_type = "int64" if contract.entity.dtype == "int" else "object"
    return of_type(contract.entity.key, key_type, f"dataset.entity.dtype: {contract.entity.dtype}")


def _stored_type(contract: DatasetContract, column: str, frame: pd.DataFrame) -> str:
    """A column's dtype as the gate reads it from a batch file: a categorical column by its
    vocabulary (text: object; integers: int64), any other as the table holds it."""
    spec = contract.categorical.get(column)
    if spec is None:
        return type_name(frame[column])
    if all(isinstance(v, int) and not isinstance(v, bool) for v in spec.values):
        return "int64"
    return "object"


def _raw_types(contract: DatasetContract, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The key and label as ingest writes them; feature and slice columns as stored (a
    nullable numeric column may come as int64 or, holding a null, float64)."""
    out = [_key_type(contract), of_type(contract.timestamp, "Timestamp", "timezone-aware UTC")]
    nullable = set(contract.nullable_columns)
    for column in contract.raw_columns[2:]:
        if column == contract.label.column:
            out.append(of_type(column, "int64", "ingest writes the label as 0/1"))
            continue
        observed = _stored_type(contract, column, frame)
        if column in nullable and observed in ("int64", "float64"):
            out.append(
                expectation(
                    "expect_column_values_to_be_in_type_list",
                    "nullable: a batch holding a null reads as float64",
                    column=column,
                    type_list=["int64", "float64"],
                )
            )
        else:
            out.append(of_type(column, observed))
    return out


def _raw_not_null(contract: DatasetContract) -> list[dict[str, Any]]:
    out = [
        not_null(contract.entity.key, "dataset.entity.key"),
        not_null(contract.timestamp, "dataset.timestamp"),
        not_null(contract.label.column, "rows whose outcome is unknown are left out"),
    ]
    for column, spec in (*contract.categorical.items(), *contract.numeric.items()):
        if not spec.nullable:
            out.append(not_null(column, "not nullable in the data contract"))
    return out


def _categories(contract: DatasetContract) -> list[dict[str, Any]]:
    return [
        expectation(
            "expect_column_values_to_be_in_set",
            f"the vocabulary of dataset.categorical {column}"
            + ("; nulls allowed (nullable)" if spec.nullable else ""),
            column=column,
            value_set=list(spec.values),
        )
        for column, spec in contract.categorical.items()
    ]


def raw_suite(contract: DatasetContract, frame: pd.DataFrame, window_days: int) -> dict[str, Any]:
    """The raw gate's suite (expectations/raw.json) for `contract`, from the whole conformed
    table `frame` (the `window_days` daily batches of a window); the raw gate judges
    each daily batch with it."""
    _same_columns(frame, contract.raw_columns, "the raw table")
    key, ts, label = contract.entity.key, contract.timestamp, contract.label.column
    where = f"profiled table ({window_days} days, {len(frame)} rows)"
    daily = daily_batch_expectations(ts, label)
    declared = {key, ts, label, *contract.numeric, *contract.categorical}
    expectations = [
        expectation(
            "expect_table_columns_to_match_set",
            "exactly the columns of params.yaml dataset",
            column_set=contract.raw_columns,
            exact_match=True,
        ),
        daily[0],  # rows per day
        *_raw_types(contract, frame),
        *_raw_not_null(contract),
        unique_keys([key, ts], f"one row per {contract.entity.name} and timestamp"),
        *daily[1:3],  # inside the day, not in the future
        expectation(
            "expect_column_values_to_be_in_set",
            "ingest writes the label as 1 (dataset.label.positive) or 0",
            column=label,
            value_set=[0, 1],
        ),
        daily[3],  # the day's label share
        *_categories(contract),
    ]
    for column in contract.numeric:
        expectations += numeric_expectations(column, frame[column], where)
        expectations += daily_mean(column, frame, ts)
    for column in contract.nullable_columns:
        expectations += nullable_floor(column, frame[column])
    for column in (c for c in contract.raw_columns if c not in declared):  # slice columns
        expectations += null_expectation(column, frame[column])
    return {"name": "raw", "meta": {"notes": RAW_NOTES}, "expectations": expectations}


def features_suite(contract: DatasetContract, features: pd.DataFrame) -> dict[str, Any]:
    """The features gate's suite (expectations/features.json) for `contract`, with the
    ranges of the feature table `features` (features.build_features' output)."""
    keys = [contract.entity.key, contract.timestamp]
    columns = [*keys, *contract.feature_columns]
    _same_columns(features, columns, "the feature table")
    where = f"profiled feature table ({len(features)} rows)"
    binary = [*contract.missing_flags, *(c for g in contract.one_hot_groups.values() for c in g)]
    expectations = [
        expectation(
            "expect_table_columns_to_match_ordered_list",
            "exactly the model's features, in order: schema skew between training and "
            "serving fails here",
            column_list=columns,
        ),
        expectation("expect_table_row_count_to_be_between", min_value=1),
        unique_keys(keys),
        _key_type(contract),
        of_type(contract.timestamp, "Timestamp", "timezone-aware UTC"),
        *(of_type(c, FEATURE_DTYPE) for c in contract.feature_columns),
        *(not_null(c) for c in columns),
    ]
    for column in (*contract.numeric, *contract.derived):
        expectations += numeric_expectations(column, features[column], where)
    expectations += [
        expectation("expect_column_values_to_be_in_set", column=c, value_set=[0.0, 1.0])
        for c in binary
    ]
    notes = (
        "Gate after featurize: exactly the columns the model expects, in order (schema skew "
        "between training and serving fails here), finite values, binary flags and one-hots; "
        "ranges seen in the profiled table are warnings."
    )
    return {"name": "features", "meta": {"notes": notes}, "expectations": expectations}


def predictions_suite(
    contract: DatasetContract, positive_rate: float | None = None
) -> dict[str, Any]:
    """The predictions gate's suite (expectations/predictions.json): the test-day
    predictions and batch scores, with the entity key, `score` and `predicted` columns.
    With the table's `positive_rate`, the predicted share may reach 3x it."""
    key, entity = contract.entity.key, contract.entity.name
    low, high = PREDICTED_SHARE
    if positive_rate is not None:
        high = round(min(0.99, max(high, 3 * positive_rate)), 3)
    expectations = [
        *(expectation("expect_column_to_exist", column=c) for c in (key, SCORE, PREDICTED)),
        expectation("expect_table_row_count_to_be_between", min_value=1),
        not_null(key, f"every prediction names its {entity}"),
        not_null(SCORE),
        expectation(
            "expect_column_values_to_be_between",
            "probabilities",
            column=SCORE,
            min_value=0.0,
            max_value=1.0,
        ),
        expectation("expect_column_values_to_be_in_set", column=PREDICTED, value_set=[0, 1]),
        expectation(
            "expect_column_mean_to_be_between",
            f"a model flagging almost no {entity} or most of them is broken",
            column=PREDICTED,
            min_value=low,
            max_value=high,
        ),
        expectation(
            "expect_column_stdev_to_be_between",
            "near-constant scores: the model barely discriminates",
            "warning",
            column=SCORE,
            min_value=0.01,
        ),
    ]
    notes = (
        "Gate on model output (test-day predictions; batch scoring): probabilities, labels "
        "and a sanity bound on the predicted positive rate."
    )
    return {"name": "predictions", "meta": {"notes": notes}, "expectations": expectations}


def contract_suites(
    contract: DatasetContract, raw: pd.DataFrame, window_days: int
) -> dict[str, dict[str, Any]]:
    """Every gate's suite for `contract`, from the whole conformed raw table `raw`:
    {"raw": ..., "features": ..., "predictions": ...}."""
    from .features import build_features

    _same_columns(raw, contract.raw_columns, "the raw table")
    return {
        "raw": raw_suite(contract, raw, window_days),
        "features": features_suite(contract, build_features(raw, contract)),
        "predictions": predictions_suite(contract, float(raw[contract.label.column].mean())),
    }


def profile_suite(
    sample: pd.DataFrame,
    name: str,
    keys: list[str] | None = None,
    timestamp: str | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """A starting suite that the sample passes, in GX's suite JSON format. With a
    `timestamp` column it is a raw-gate suite: judged per daily batch with the gate's
    run-time values (day bounds, rows per day, the label share of `label`)."""
    if sample.empty:
        raise StageInputError("the sample is empty: profile a file with rows")
    named = [*(keys or []), *([timestamp] if timestamp else []), *([label] if label else [])]
    missing = [k for k in named if k not in sample.columns]
    if missing:
        raise StageInputError(f"columns {missing} are not in the sample")
    expectations = [
        expectation(
            "expect_table_columns_to_match_set", column_set=list(sample.columns), exact_match=True
        ),
        *(
            daily_batch_expectations(timestamp, label)
            if timestamp
            else [
                expectation(
                    "expect_table_row_count_to_be_between",
                    "bootstrapped as 1..10x the sample size: set the bounds your source delivers",
                    min_value=1,
                    max_value=10 * len(sample),
                )
            ]
        ),
    ]
    if keys:
        expectations.append(unique_keys(keys))
    for column in sample.columns:
        expectations += column_expectations(column, sample[column])
    return {
        "name": name,
        "meta": {"notes": f"Bootstrapped from a sample of {len(sample)} rows; review and tighten."},
        "expectations": expectations,
    }


def write_suite(
    sample_path: Path,
    name: str,
    keys: list[str],
    target: Path,
    force: bool = False,
    timestamp: str | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Profile the sample file (parquet or CSV) and write the suite to `target`."""
    if not sample_path.is_file():
        raise StageInputError(
            f"sample {sample_path} not found: give a parquet or CSV file of your data"
        )
    if target.exists() and not force:
        raise StageInputError(
            f"{target} exists; pass --force to overwrite it or --out to write elsewhere"
        )
    read = pd.read_csv if sample_path.suffix == ".csv" else pd.read_parquet
    sample = read(sample_path)
    if timestamp and timestamp in sample.columns:  # CSV holds text: the gate sees UTC times
        sample[timestamp] = pd.to_datetime(sample[timestamp], utc=True)
    suite = profile_suite(sample, name, keys, timestamp, label)
    write_json(suite, target)
    return suite
