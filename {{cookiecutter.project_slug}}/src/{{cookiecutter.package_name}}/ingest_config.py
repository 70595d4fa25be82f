"""params.yaml `ingest`, typed: where fetch_batch (stages/ingest.py) reads each day's rows
(sources.py). Part of config.py's Params; kept apart so that module stays small.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriftConfig(_Strict):
    start_date: dt.date | None = None
    covariate: float = Field(0.0, ge=0.0, le=1.0)
    concept: float = Field(0.0, ge=0.0, le=1.0)


class SyntheticConfig(_Strict):
    """`ingest.source: synthetic`: generated daily batches (sources.synthetic_batch): the
    demo's generator (datagen.py) for its contract, contract_rows.py for any other."""

    rows_per_day: int = Field(ge=10)
    population: int = Field(ge=10)  # distinct entities; each appears at most once a day
    seed: int = 42
    drift: DriftConfig = DriftConfig()

    @model_validator(mode="after")
    def _enough_entities(self) -> SyntheticConfig:
        if self.rows_per_day > self.population:
            raise ValueError(
                f"rows_per_day ({self.rows_per_day}) cannot exceed population "
                f"({self.population}): each entity appears at most once a day"
            )
        return self


class FilesSourceConfig(_Strict):
    """`ingest.source: files`: CSV or parquet files, cut into daily batches by timestamp."""

    # A file or a glob of them (data/source/*.csv), relative to the project root
    path: str = Field(min_length=1)
    format: Literal["auto", "csv", "parquet"] = "auto"  # auto: by each file's suffix


class SqlSourceConfig(_Strict):
    """`ingest.source: sql`: one query per day, through SQLAlchemy."""

    url: str | None = None  # an SQLAlchemy URL, e.g. postgresql+psycopg://host/db
    # The environment variable holding the URL: wins when set (keeps secrets out of git)
    url_env: str | None = Field(None, validate_default=True)
    # Rows of one day: :day_start <= timestamp < :day_end (UTC datetimes)
    query: str = Field(min_length=1)

    @field_validator("url_env")
    @classmethod
    def _some_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value and not info.data.get("url"):
            raise ValueError(
                "set ingest.sql.url (an SQLAlchemy URL) or ingest.sql.url_env "
                "(the environment variable holding it)"
            )
        return value

    @field_validator("query")
    @classmethod
    def _binds_the_day(cls, value: str) -> str:
        missing = [
            f":{name}"
            for name in ("day_start", "day_end")
            if not re.search(rf"(?<![:\w]):{name}\b", value)
        ]
        if missing:
            raise ValueError(
                f"the query must bind {' and '.join(missing)} (the day's UTC bounds, "
                "half-open: timestamp >= :day_start AND timestamp < :day_end)"
            )
        return value


class IngestConfig(_Strict):
    """params.yaml `ingest`: where fetch_batch (stages/ingest.py) reads each day's rows.
    Only the section of the chosen `source` is required."""

    source: Literal["synthetic", "files", "sql"] = "synthetic"
    synthetic: SyntheticConfig | None = Field(None, validate_default=True)
    files: FilesSourceConfig | None = Field(None, validate_default=True)
    sql: SqlSourceConfig | None = Field(None, validate_default=True)

    @field_validator("synthetic", "files", "sql")
    @classmethod
    def _chosen_section(cls, value: _Strict | None, info: ValidationInfo) -> _Strict | None:
        if value is None and info.data.get("source") == info.field_name:
            raise ValueError(
                f"ingest.source is {info.field_name!r} but this section is missing: add "
                f"ingest.{info.field_name} (see params.yaml and docs/pipeline.md, Sources)"
            )
        return value
