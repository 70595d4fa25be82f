"""The sources ingest's fetch_batch reads one day from (params.yaml `ingest.source`).

One plain function per source, each returning the rows observed on `day` (UTC):

- `synthetic_batch`: generated rows: the demo's generator (datagen.py) for the demo's
  contract, contract_rows.py for any other;
- `files_batch`: CSV or parquet files (or a glob of them), cut into days by the
  timestamp column; the files are read once per process, not once per day, and each
  day's rows get a key (`files_day_keys`: a hash of them), so ingest fetches again only
  the days whose rows changed;
- `sql_batch`: one query per day through SQLAlchemy, bound to the day's UTC bounds.
"""

from __future__ import annotations

import datetime as dt
import functools
import glob
import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .contract import DatasetContract
from .contract_rows import contract_day, source_rows
from .datagen import generate_day, generates
from .errors import ConfigError, StageInputError
from .ingest_config import FilesSourceConfig, SqlSourceConfig, SyntheticConfig

log = logging.getLogger(__name__)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The day's UTC bounds, half-open: start <= timestamp < end."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def _no_rows(source: str, day: dt.date, check: str, timestamp: str) -> StageInputError:
    start, end = day_bounds(day)
    return StageInputError(
        f"ingest source {source} has no rows for {day.isoformat()} ({timestamp} from "
        f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, end excluded). Every day of the "
        f"window (interval.yaml end_date and the data.window_days before it) needs rows: "
        f"{check}, or move interval.yaml end_date / shorten data.window_days to the days it covers."
    )


# --- synthetic -------------------------------------------------------------------------


def synthetic_batch(day: dt.date, cfg: SyntheticConfig, contract: DatasetContract) -> pd.DataFrame:
    """The generated batch of `day` (deterministic in seed and day), drift from
    `cfg.drift.start_date` on: the demo generator's rows (datagen.py) when the contract
    declares the demo's columns, else rows of the contract (contract_rows.py)."""
    if generates(contract.raw_columns):
        return generate_day(
            day,
            rows=cfg.rows_per_day,
            population=cfg.population,
            seed=cfg.seed,
            drift_start=cfg.drift.start_date,
            covariate_drift=cfg.drift.covariate,
            concept_drift=cfg.drift.concept,
        )
    drifting = cfg.drift.start_date is not None and day >= cfg.drift.start_date
    rows = contract_day(
        contract,
        day,
        cfg.rows_per_day,
        population=cfg.population,
        seed=cfg.seed,
        covariate=cfg.drift.covariate if drifting else 0.0,
        concept=cfg.drift.concept if drifting else 0.0,
    )
    return source_rows(contract, rows)


# --- files -----------------------------------------------------------------------------


def matching_files(pattern: str) -> list[Path]:
    """The files `pattern` (a path or a glob, relative to the working directory, the
    project root in a stage) names, sorted; `**` matches any depth."""
    # glob.glob, not Path.glob: the pattern may be absolute
    matches = glob.glob(pattern, recursive=True)  # noqa: PTH207
    return sorted(Path(p) for p in matches if Path(p).is_file())


def _file_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".csv" in suffixes:  # also data.csv.gz and other compressed CSV
        return "csv"
    raise StageInputError(
        f"ingest.files.path matches {path}, whose format cannot be told from its suffix "
        "(expected .csv or .parquet): set ingest.files.format to csv or parquet."
    )


def _read_file(path: Path, fmt: str) -> pd.DataFrame:
    try:
        if fmt == "csv":
            return pd.read_csv(path, low_memory=False)
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise StageInputError(f"ingest.files: cannot read {path} as {fmt}: {exc}") from exc


def to_utc(values: pd.Series, where: str, column: str) -> pd.Series:
    """Timestamps as UTC: naive values are taken as UTC, aware ones converted to it."""
    try:
        try:
            return pd.to_datetime(values, utc=True)
        except ValueError:  # text in more than one layout (T or space, with or without offset)
            return pd.to_datetime(values, utc=True, format="mixed")
    except (ValueError, TypeError, OverflowError) as exc:
        raise StageInputError(
            f"{where}: column {column} does not parse as timestamps ({exc}); "
            "write them as ISO 8601, e.g. 2026-03-01 08:15:00+00:00 (no offset: UTC)."
        ) from exc


class FileTable:
    """The rows of a files source, sorted by timestamp: a day is a slice of it."""

    def __init__(self, files: list[Path], fmt: str, timestamp: str) -> None:
        frames = []
        for path in files:
            frame = _read_file(path, _file_format(path, fmt))
            if timestamp not in frame.columns:
                raise StageInputError(
                    f"ingest.files: {path} has no {timestamp} column (dataset.timestamp), the "
                    "timestamp daily batches are cut by (UTC); its columns are "
                    f"{', '.join(map(str, frame.columns))}."
                )
            frame[timestamp] = to_utc(frame[timestamp], f"ingest.files: {path}", timestamp)
            frames.append(frame)
        rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        missing = int(rows[timestamp].isna().sum())
        if missing:
            log.warning(
                "ingest.files: %d rows without %s belong to no day: skipped", missing, timestamp
            )
            rows = rows[rows[timestamp].notna()]
        self.rows = rows.sort_values(timestamp, kind="stable").reset_index(drop=True)
        self._timestamps = self.rows[timestamp]
        self._hashes: np.ndarray | None = None
        self._header = ""
        log.info("ingest.files: read %d rows from %d file(s)", len(self.rows), len(files))

    def _bounds(self, day: dt.date) -> tuple[int, int]:
        start, end = (pd.Timestamp(bound) for bound in day_bounds(day))
        lo = self._timestamps.searchsorted(start, side="left")
        hi = self._timestamps.searchsorted(end, side="left")
        return int(lo), int(hi)

    def day(self, day: dt.date) -> pd.DataFrame:
        lo, hi = self._bounds(day)
        return self.rows.iloc[lo:hi].reset_index(drop=True)

    def day_key(self, day: dt.date) -> str:
        """A hash of what `day` returns: the columns, their types and each row's values
        in order (pandas' row hashes, made once per table)."""
        if self._hashes is None:
            self._hashes, self._header = row_hashes(self.rows)
        lo, hi = self._bounds(day)
        digest = hashlib.md5(self._header.encode())
        digest.update(self._hashes[lo:hi].tobytes())
        return digest.hexdigest()


def row_hashes(frame: pd.DataFrame) -> tuple[np.ndarray, str]:
    """One 64-bit hash per row of `frame`'s values, and what they were hashed as: each
    column's name and type. An object column holding other values than text (lists,
    decimals, a mix of numbers and text) is hashed by each value's repr, so 1 and "1" differ."""
    columns, header = {}, []
    for name, column in frame.items():
        kind = str(column.dtype)
        if column.dtype == object and pd.api.types.infer_dtype(column) not in ("string", "empty"):
            column, kind = column.map(repr), "repr"
        columns[name] = column
        header.append((str(name), kind))
    hashes = pd.util.hash_pandas_object(pd.DataFrame(columns), index=False).to_numpy()
    return hashes, repr(header)


@functools.lru_cache(maxsize=2)
def _file_table(stamp: tuple[tuple[str, int, int], ...], fmt: str, timestamp: str) -> FileTable:
    """Keyed by each file's (path, mtime, size): a file changed on disk is read again."""
    return FileTable([Path(path) for path, _, _ in stamp], fmt, timestamp)


def file_table(cfg: FilesSourceConfig, timestamp: str) -> FileTable:
    """The files of `cfg.path`, read once per process (while they do not change)."""
    files = matching_files(cfg.path)
    if not files:
        raise StageInputError(
            f"ingest.files.path {cfg.path!r} matches no file (relative to the project root, "
            f"{Path.cwd()}): point it at a CSV or parquet file, or a glob of them, with "
            f"the {timestamp} column (UTC)."
        )
    stamp = tuple((str(p), (st := p.stat()).st_mtime_ns, st.st_size) for p in files)
    return _file_table(stamp, cfg.format, timestamp)


def files_day_keys(
    days: list[dt.date], cfg: FilesSourceConfig, timestamp: str
) -> dict[dt.date, str]:
    """Each day's key: a hash of the rows the files hold for it (FileTable.day_key). A
    day whose key is unchanged is the same batch, byte for byte, when fetched again."""
    table = file_table(cfg, timestamp)
    return {day: table.day_key(day) for day in days}


def files_batch(day: dt.date, cfg: FilesSourceConfig, timestamp: str) -> pd.DataFrame:
    """The rows of the files source whose `timestamp` falls on `day` (UTC)."""
    batch = file_table(cfg, timestamp).day(day)
    if batch.empty:
        raise _no_rows(
            f"'files' ({cfg.path})",
            day,
            f"check that the files hold that day and that {timestamp} is in UTC (or carries its offset)",
            timestamp,
        )
    return batch


# --- sql -------------------------------------------------------------------------------


def sql_url(cfg: SqlSourceConfig) -> str:
    """The database URL: the variable named by `url_env` when set, else `url`."""
    if cfg.url_env and os.environ.get(cfg.url_env):
        return os.environ[cfg.url_env]
    if cfg.url:
        return cfg.url
    raise ConfigError(
        f"ingest.sql: the environment variable {cfg.url_env} (ingest.sql.url_env) is not set "
        "and ingest.sql.url is empty: export the database's SQLAlchemy URL in it."
    )


@functools.lru_cache(maxsize=4)
def _engine(url: str):  # -> sqlalchemy.Engine; imported lazily: only the sql source needs it
    import sqlalchemy as sa

    try:
        return sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"ingest.sql.url (or the variable named by ingest.sql.url_env) is not a usable "
            f"SQLAlchemy URL: {exc}"
        ) from exc


def sql_batch(day: dt.date, cfg: SqlSourceConfig, timestamp: str) -> pd.DataFrame:
    """The rows `cfg.query` returns for `day`, bound to :day_start and :day_end (UTC)."""
    import sqlalchemy as sa

    url = sql_url(cfg)
    engine = _engine(url)
    where = engine.url.render_as_string(hide_password=True)
    start, end = day_bounds(day)
    # Typed binds: each dialect passes UTC datetimes its own way (SQLite: ISO text).
    query = sa.text(cfg.query).bindparams(
        sa.bindparam("day_start", type_=sa.DateTime(timezone=True)),
        sa.bindparam("day_end", type_=sa.DateTime(timezone=True)),
    )
    try:
        with engine.connect() as conn:
            batch = pd.read_sql_query(query, conn, params={"day_start": start, "day_end": end})
    except sa.exc.SQLAlchemyError as exc:
        message = getattr(exc, "orig", None) or exc
        raise StageInputError(
            f"ingest.sql.query failed on {where} for {day.isoformat()}: {message}"
        ) from exc
    if batch.empty:
        raise _no_rows(
            f"'sql' ({where})",
            day,
            "check ingest.sql.query and that the table holds that day in UTC",
            timestamp,
        )
    if timestamp not in batch.columns:
        raise StageInputError(
            f"ingest.sql.query returns no {timestamp} column (dataset.timestamp, UTC); "
            f"its columns are {', '.join(map(str, batch.columns))}: select or alias it."
        )
    batch[timestamp] = to_utc(batch[timestamp], "ingest.sql.query", timestamp)
    return batch
