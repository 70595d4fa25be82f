"""The prediction log: one JSON object per served prediction, one per line.

The service (serving.py) writes a `PredictionRecord` for every prediction it
answers; the monitor (monitoring/) reads the file back with `read_prediction_log`.
Both sides use the definitions here, so the log's schema lives in one place. The files
(one per UTC day, kept serving.prediction_log_retention_days) are prediction_log_files.py's;
docs/monitoring.md says why each field is there.

A record, as written (JSON types):

    timestamp      string   ISO-8601 UTC time of the request (required)
    entity_id      int/str  the entity scored (its dataset.entity.key value): an integer
                            or a string, as dataset.entity.dtype says
    model_name     string   the registered model
    model_version  string   the registry version that scored it
    features       object   every model feature (the contract's feature_columns) -> number
                            or null (required)
    score          number   the model's probability, in [0, 1] (required)
    predicted      0 or 1   the label served (score >= the model's threshold)

In a shadow rollout (serving.rollout: shadow) the registry's `candidate` scores the same
features beside the champion; its answer is logged, never returned. Those records add
(the fields are absent from every other record):

    shadow_version    string   the candidate version that scored in the shadow
    shadow_score      number   its probability, in [0, 1]
    shadow_predicted  0 or 1   its label (shadow_score >= its own threshold)

In a canary rollout each record's model_version is the version that answered.

A request that asked for explanations (/predict with `explain: k`) adds to each of its
records (the field is absent from every other record):

    explanation  object  what /predict returned as the id's explanation (explain.py):
                         margin, bias, rest (numbers) and contributions, a list of
                         {feature, value, contribution}: the model's k largest SHAP
                         values for the row, by absolute value

The reader does not read explanations back: monitoring has no use for them, so a record
whose explanation is malformed is read like any other.

Reading is lenient: a line that is not a valid record (an entity_id of the wrong
type included) is skipped and reported, never fatal (one bad write must not stop
monitoring, nor make it decide anything).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .contract import DatasetContract
from .errors import StageInputError
from .prediction_log_files import log_files


@dataclass(frozen=True)
class PredictionRecord:
    """One served prediction: a line of the log (field order is the line's key order)."""

    timestamp: str
    entity_id: int | str
    model_name: str
    model_version: str
    features: dict[str, float | None]
    score: float
    predicted: int
    shadow_version: str | None = None
    shadow_score: float | None = None
    shadow_predicted: int | None = None
    explanation: dict[str, Any] | None = None

    def to_json(self) -> str:
        # the fields as they are (dataclasses.asdict deep-copies each value: 6x slower);
        # the shadow fields only when a candidate scored in the shadow, the explanation
        # only when one was asked for
        shadow = self.shadow_version is not None
        line = {n: getattr(self, n) for n in RECORD_FIELDS if shadow or n not in SHADOW_FIELDS}
        if self.explanation is not None:
            line[EXPLANATION] = self.explanation
        return json.dumps(line, separators=(",", ":"))


EXPLANATION = "explanation"  # records of explained predictions only
RECORD_FIELDS = tuple(f.name for f in fields(PredictionRecord) if f.name != EXPLANATION)
SHADOW_FIELDS = ("shadow_version", "shadow_score", "shadow_predicted")  # shadow records only
# The fields without which a line is unusable; the others are read when present and valid.
REQUIRED_FIELDS = ("timestamp", "features", "score")
# Columns of the frame read back (besides the contract's timestamp and entity key columns,
# MODEL_VERSION and the features).
MODEL_VERSION = "model_version"
SCORE = "score"
PREDICTION = "prediction"
SHADOW_VERSION = "shadow_version"  # None where no candidate scored in the shadow
SHADOW_SCORE = "shadow_score"  # NaN there
SHADOW_PREDICTION = "shadow_prediction"  # nullable Int64
MALFORMED_EXAMPLES = 5
NUMBER = (int, float)  # JSON numbers; bool is excluded on purpose (type(True) is bool)


@dataclass
class PredictionLog:
    """Served predictions read from the JSON-lines log, with what could not be read.

    `frame` holds the contract's timestamp column (the request time, UTC), its entity key
    column (nullable: Int64, or object strings), MODEL_VERSION, the contract's
    feature_columns, SCORE and PREDICTION (nullable Int64), and the shadow's SHADOW_VERSION,
    SHADOW_SCORE and SHADOW_PREDICTION, one row per valid line."""

    path: Path
    frame: pd.DataFrame
    lines: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)
    # The files read, in order, each with its last line's number: line numbers count across
    # the files (as if they were one), and `where` turns one back into a file and line.
    files: list[tuple[Path, int]] = field(default_factory=list)

    def where(self, number: int) -> str:
        """`line 7`, or `<file> line 7` when the log spans several files."""
        before = 0
        for file, last in self.files if len(self.files) > 1 else []:
            if number <= last:
                return f"{file.name} line {number - before}"
            before = last
        return f"line {number}"

    def issue(self) -> str | None:
        if not self.malformed:
            return None
        shown = "; ".join(
            f"{self.where(n)}: {why}" for n, why in self.malformed[:MALFORMED_EXAMPLES]
        )
        return (
            f"prediction log {self.path}: {len(self.malformed)} of {self.lines} lines malformed "
            f"and skipped ({shown})"
        )


class MalformedLine(ValueError):
    """A log line that is not a valid prediction record; the message says why."""


def _feature_values(features: Any, columns: list[str]) -> list[Any]:
    if not isinstance(features, dict):
        raise MalformedLine("'features' is not an object")
    try:
        values = [features[c] for c in columns]
    except KeyError:
        absent = [c for c in columns if c not in features]
        more = f" (+{len(absent) - 3} more)" if len(absent) > 3 else ""
        raise MalformedLine(f"features lack {', '.join(absent[:3])}{more}") from None
    for column, value in zip(columns, values, strict=True):
        if value is not None and type(value) not in NUMBER:
            raise MalformedLine(f"feature {column} is not a number ({value!r})")
    return values


def _entity_id(entry: dict[str, Any], contract: DatasetContract) -> int | str | None:
    """The line's entity_id (None when absent or null); MalformedLine when its JSON type is
    not the contract's (a bool is not an integer)."""
    value = entry.get("entity_id")
    if value is None:
        return None
    wanted = int if contract.entity.dtype == "int" else str
    if type(value) is not wanted:
        raise MalformedLine(
            f"entity_id is not {'an integer' if wanted is int else 'a string'} "
            f"(dataset.entity.dtype {contract.entity.dtype}): {value!r}"
        )
    return value


class ParsedLine(NamedTuple):
    """One line's values; the timestamp stays text (parsed for all lines at once)."""

    timestamp: str
    features: list[Any]
    score: float
    predicted: int | None
    entity_id: int | str | None
    model_version: str
    shadow_version: str | None = None
    shadow_score: float | None = None
    shadow_predicted: int | None = None


def _label(value: Any) -> int | None:
    return value if type(value) is int and value in (0, 1) else None  # a bool is not 0/1


def _shadow(entry: dict[str, Any]) -> tuple[str | None, float | None, int | None]:
    """The shadow's (version, score, label) when the line holds a usable pair of version
    and score, else Nones: the shadow is optional, so a bad one never makes a line malformed."""
    version, score = entry.get("shadow_version"), entry.get("shadow_score")
    if not isinstance(version, str) or not version or type(score) not in NUMBER:
        return None, None, None
    if not 0.0 <= score <= 1.0:
        return None, None, None
    return version, float(score), _label(entry.get("shadow_predicted"))


def parse_line(line: str, contract: DatasetContract) -> ParsedLine:
    """One line's values; MalformedLine says why the line is unusable."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MalformedLine(f"not JSON ({exc.msg})") from None
    if not isinstance(entry, dict):
        raise MalformedLine("not a JSON object")
    absent = [k for k in REQUIRED_FIELDS if k not in entry]
    if absent:
        raise MalformedLine(f"missing {', '.join(absent)}")
    values = _feature_values(entry["features"], contract.feature_columns)
    score = entry["score"]
    if type(score) not in NUMBER or not 0.0 <= score <= 1.0:
        raise MalformedLine(f"score is not a probability ({score!r})")
    stamp = entry["timestamp"]
    if not isinstance(stamp, str) or not stamp:
        raise MalformedLine(f"timestamp is not ISO-8601 ({stamp!r})")
    return ParsedLine(
        stamp,
        values,
        float(score),
        _label(entry.get("predicted")),
        _entity_id(entry, contract),
        str(entry.get("model_version", "")),
        *_shadow(entry),
    )


def _read_lines(
    path: Path, contract: DatasetContract, before: int = 0
) -> tuple[list[int], list[tuple], list[tuple[int, str]], int, int]:
    """(line numbers of the parsed rows, parsed rows, malformed lines, non-blank lines, the
    last line's number), numbering the lines from `before` + 1."""
    numbers, rows, malformed, count, number = [], [], [], 0, before
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=before + 1):
                if not line.strip():
                    continue
                count += 1
                try:
                    rows.append(parse_line(line, contract))
                    numbers.append(number)
                except MalformedLine as exc:
                    malformed.append((number, str(exc)))
    except OSError as exc:
        raise StageInputError(f"cannot read the prediction log {path}: {exc}") from None
    return numbers, rows, malformed, count, number


def read_prediction_log(
    path: Path, contract: DatasetContract, since: dt.date | None = None
) -> PredictionLog | None:
    """The served predictions of the log `path` (paths.prediction_log: its files in the
    order they were written; with `since`, only the days from `since` on), with the
    contract's entity key and timestamp as column names. None when there is no log yet.

    A line that is not a valid prediction record is skipped and reported, never fatal.
    """
    numbers, rows, malformed, count, files = [], [], [], 0, []
    for file in log_files(path, since):
        found, good, bad, nonblank, last = _read_lines(file, contract, files[-1][1] if files else 0)
        numbers += found
        rows += good
        malformed += bad
        count += nonblank
        files.append((file, last))
    if not files:
        return None
    stamps, values, scores, predicted, entities, versions, *shadow = (
        (list(column) for column in zip(*rows, strict=True))
        if rows
        else ([] for _ in ParsedLine._fields)
    )
    columns, stamp = contract.feature_columns, contract.timestamp
    frame = pd.DataFrame(
        np.array(values, dtype="float64").reshape(-1, len(columns)), columns=columns
    )
    parsed = pd.to_datetime(
        pd.Series(stamps, dtype=object), utc=True, format="ISO8601", errors="coerce"
    )
    frame.insert(0, stamp, parsed)
    ids = (
        pd.array(entities, dtype="Int64")
        if contract.entity.dtype == "int"
        else pd.Series(entities, dtype=object).to_numpy()
    )
    frame.insert(1, contract.entity.key, ids)
    frame.insert(2, MODEL_VERSION, versions)
    frame[SCORE] = np.array(scores, dtype="float64")
    frame[PREDICTION] = pd.array(predicted, dtype="Int64")
    frame[SHADOW_VERSION] = pd.Series(shadow[0], dtype=object).to_numpy()
    frame[SHADOW_SCORE] = np.array(shadow[1], dtype="float64")  # None reads NaN
    frame[SHADOW_PREDICTION] = pd.array(shadow[2], dtype="Int64")
    unparsed = frame[stamp].isna().to_numpy()
    if unparsed.any():
        for index in np.flatnonzero(unparsed):
            malformed.append((numbers[index], f"timestamp is not ISO-8601 ({stamps[index]!r})"))
        malformed.sort()
        frame = frame.loc[~unparsed].reset_index(drop=True)
    return PredictionLog(path=path, frame=frame, lines=count, malformed=malformed, files=files)
