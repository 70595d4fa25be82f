"""Ingest sources (sources.py) behind fetch_batch: files and SQL cut into UTC days."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from {{ cookiecutter.package_name }} import sources
from {{ cookiecutter.package_name }}.batches import batch_path
from {{ cookiecutter.package_name }}.config import Window, load_params
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_day, source_rows
from {{ cookiecutter.package_name }}.errors import ConfigError, StageInputError
from {{ cookiecutter.package_name }}.ingest_config import (
    DriftConfig,
    FilesSourceConfig,
    IngestConfig,
    SqlSourceConfig,
    SyntheticConfig,
)
from {{ cookiecutter.package_name }}.stages import ingest

from conftest import PROJECT_ROOT
from other_contracts import LOAN

CONTRACT = load_params(PROJECT_ROOT / "params.yaml").dataset
TS = CONTRACT.timestamp
KEY = CONTRACT.entity.key
FIRST = dt.date(2026, 3, 1)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(6)]  # 2026-03-01 .. 2026-03-06


def day_rows(day: dt.date, rows: int = 40) -> pd.DataFrame:
    """A day of rows as the source holds them (the label as the source's own values)."""
    return source_rows(CONTRACT, contract_day(CONTRACT, day, rows, population=500, seed=3))


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """Six days of rows satisfying the contract, shuffled (a source keeps no order)."""
    frame = pd.concat([day_rows(day) for day in DAYS], ignore_index=True)
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture(autouse=True)
def fresh_reads() -> Iterator[None]:
    sources._file_table.cache_clear()
    yield
    sources._file_table.cache_clear()


def files_cfg(path: Path | str, fmt: str = "auto") -> IngestConfig:
    return IngestConfig(source="files", files=FilesSourceConfig(path=str(path), format=fmt))


def same_rows(batch: pd.DataFrame, expected: pd.DataFrame) -> None:
    """`batch` holds exactly `expected`'s rows (any order), timestamps as UTC."""
    assert str(batch[TS].dt.tz) == "UTC"
    key = [KEY, TS]
    got = batch.sort_values(key).reset_index(drop=True)
    want = expected.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        got[CONTRACT.raw_columns], want[CONTRACT.raw_columns], check_dtype=False
    )


# --- files -----------------------------------------------------------------------------


def test_csv_file_is_cut_into_the_generators_days(tmp_path: Path, rows: pd.DataFrame) -> None:
    path = tmp_path / "events.csv"
    rows.to_csv(path, index=False)
    cfg = files_cfg(path)
    for day in DAYS[1:4]:
        same_rows(ingest.fetch_batch(day, cfg, CONTRACT), day_rows(day))


def test_parquet_glob_reads_every_matching_file(tmp_path: Path, rows: pd.DataFrame) -> None:
    (tmp_path / "part").mkdir()
    halves = rows.iloc[: len(rows) // 2], rows.iloc[len(rows) // 2 :]
    for i, half in enumerate(halves):
        half.to_parquet(tmp_path / "part" / f"events_{i}.parquet", index=False)
    (tmp_path / "part" / "notes.txt").write_text("not matched by the glob")
    cfg = files_cfg(tmp_path / "part" / "*.parquet")
    for day in DAYS:
        same_rows(ingest.fetch_batch(day, cfg, CONTRACT), day_rows(day))


def test_format_overrides_the_suffix(tmp_path: Path, rows: pd.DataFrame) -> None:
    path = tmp_path / "events.export"
    rows.to_csv(path, index=False)
    with pytest.raises(StageInputError, match=r"events\.export.*ingest\.files\.format"):
        ingest.fetch_batch(DAYS[0], files_cfg(path), CONTRACT)
    same_rows(ingest.fetch_batch(DAYS[0], files_cfg(path, "csv"), CONTRACT), day_rows(DAYS[0]))


def test_relative_path_is_read_from_the_project_root(
    tmp_path: Path, rows: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data" / "source").mkdir(parents=True)
    rows.to_csv(tmp_path / "data" / "source" / "events.csv", index=False)
    monkeypatch.chdir(tmp_path)  # stages run from the project root
    batch = ingest.fetch_batch(DAYS[2], files_cfg("data/source/*.csv"), CONTRACT)
    same_rows(batch, day_rows(DAYS[2]))


def test_days_are_utc_and_half_open(tmp_path: Path) -> None:
    frame = day_rows(FIRST, rows=6)
    frame[TS] = [
        "2026-03-01 00:00:00+00:00",  # first instant of 03-01
        "2026-03-01 23:59:59.999999+00:00",  # last instant of 03-01
        "2026-03-02T01:30:00+02:00",  # 03-01 23:30 UTC: the offset counts, not the wall clock
        "2026-03-02 00:00:00",  # no offset: UTC, so the first instant of 03-02
        "2026-03-01T22:30:00-02:00",  # 03-02 00:30 UTC
        "2026-03-02 23:59:59",
    ]
    frame.to_csv(tmp_path / "edges.csv", index=False)
    cfg = files_cfg(tmp_path / "edges.csv")
    ids = frame[KEY].tolist()
    first, second = (
        ingest.fetch_batch(FIRST, cfg, CONTRACT),
        ingest.fetch_batch(DAYS[1], cfg, CONTRACT),
    )
    assert sorted(first[KEY]) == sorted(ids[:3])
    assert sorted(second[KEY]) == sorted(ids[3:])
    assert first[TS].min() == pd.Timestamp("2026-03-01", tz="UTC")
    assert first[TS].max() < pd.Timestamp("2026-03-02", tz="UTC") <= second[TS].min()


def test_run_lands_only_the_windows_days(tmp_path: Path, rows: pd.DataFrame) -> None:
    rows.to_csv(tmp_path / "events.csv", index=False)
    raw = tmp_path / "raw"
    window = Window(end_date=DAYS[4], days=3)  # 03-03 .. 03-05 of 03-01 .. 03-06
    written = ingest.run(window, files_cfg(tmp_path / "events.csv"), CONTRACT, raw)
    assert written == [batch_path(raw, day) for day in window.dates()]
    assert sorted(raw.glob("batch_*.parquet")) == written
    for day, path in zip(window.dates(), written, strict=True):
        batch = pd.read_parquet(path)
        assert set(batch[TS].dt.date) == {day}
        # conformed: the label as 1/0, whatever values the source uses
        same_rows(batch, contract_day(CONTRACT, day, 40, population=500, seed=3))


def test_run_fails_naming_the_day_when_a_label_value_is_not_declared(
    tmp_path: Path, rows: pd.DataFrame
) -> None:
    if not CONTRACT.label.negative:
        pytest.skip("the contract accepts any label value as negative")
    rows = rows.copy()
    rows[CONTRACT.label.column] = rows[CONTRACT.label.column].astype(object)
    rows.loc[rows[TS].dt.date == DAYS[1], CONTRACT.label.column] = "unheard-of"
    rows.to_csv(tmp_path / "events.csv", index=False)
    with pytest.raises(StageInputError, match=rf"ingest {DAYS[1]}: label column"):
        ingest.run(
            Window(end_date=DAYS[2], days=3),
            files_cfg(tmp_path / "events.csv"),
            CONTRACT,
            tmp_path / "raw",
        )


def test_a_file_is_read_once_per_run_and_again_when_it_changes(
    tmp_path: Path, rows: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.csv"
    rows.to_csv(path, index=False)
    reads: list[Path] = []
    read_file = sources._read_file
    monkeypatch.setattr(sources, "_read_file", lambda p, fmt: reads.append(p) or read_file(p, fmt))
    ingest.run(
        Window(end_date=DAYS[-1], days=len(DAYS)), files_cfg(path), CONTRACT, tmp_path / "raw"
    )
    assert reads == [path]
    rows[rows[TS].dt.date != DAYS[0]].to_csv(path, index=False)  # the file changes on disk
    with pytest.raises(StageInputError, match="2026-03-01"):
        ingest.fetch_batch(DAYS[0], files_cfg(path), CONTRACT)
    assert reads == [path, path]


def test_a_days_key_follows_its_rows_values_and_types(tmp_path: Path, rows: pd.DataFrame) -> None:
    """files_day_keys: the same rows give the same key, in another file too; another
    value, type or order of values gives another; other days' rows do not count."""
    files = iter(range(100))

    def key(frame: pd.DataFrame) -> str:
        path = tmp_path / f"{next(files)}.parquet"
        frame.to_parquet(path, index=False)
        return sources.FileTable([path], "parquet", TS).day_key(DAYS[0])

    first = key(rows)
    assert key(rows.copy()) == first
    on_day = rows[TS].dt.date == DAYS[0]
    numeric = next(iter(CONTRACT.numeric))
    assert key(rows.assign(**{numeric: rows[numeric].where(~on_day, rows[numeric] + 1)})) != first
    assert key(rows.assign(**{numeric: rows[numeric].astype("float32")})) != first
    swapped = rows.copy()
    i, j = rows.index[on_day][:2]
    swapped.loc[[i, j], numeric] = rows.loc[[j, i], numeric].to_numpy()
    assert key(swapped) != first
    assert key(rows[~on_day | (rows.index == i) | (rows.index == j)]) != first  # rows removed
    later = rows.assign(**{numeric: rows[numeric].where(on_day, 0.0)})
    assert key(later) == first  # only the day's own rows count


def test_row_hashes_tell_a_number_from_its_text_and_hash_lists() -> None:
    hashes, header = sources.row_hashes(pd.DataFrame({"code": [1, "1", None], "n": [1, 1, 1]}))
    assert hashes[0] != hashes[1]
    assert header == repr([("code", "repr"), ("n", "int64")])
    lists, _ = sources.row_hashes(pd.DataFrame({"tags": [[1, 2], [1, 2], [2, 1]]}))
    assert lists[0] == lists[1] != lists[2]


def test_a_day_without_rows_names_the_day(tmp_path: Path, rows: pd.DataFrame) -> None:
    rows[rows[TS].dt.date != DAYS[3]].to_csv(tmp_path / "events.csv", index=False)
    cfg = files_cfg(tmp_path / "events.csv")
    with pytest.raises(StageInputError, match=r"'files' .*events\.csv.*no rows for 2026-03-04"):
        ingest.run(Window(end_date=DAYS[-1], days=len(DAYS)), cfg, CONTRACT, tmp_path / "raw")
    with pytest.raises(StageInputError, match="no rows for 2026-02-28"):
        ingest.fetch_batch(dt.date(2026, 2, 28), cfg, CONTRACT)  # before the data


def test_a_path_matching_nothing_names_the_path(tmp_path: Path) -> None:
    pattern = tmp_path / "nowhere" / "*.csv"
    with pytest.raises(
        StageInputError, match=rf"ingest\.files\.path '{re.escape(str(pattern))}' matches no file"
    ):
        ingest.fetch_batch(FIRST, files_cfg(pattern), CONTRACT)


def test_a_file_without_the_timestamp_names_the_file_and_column(
    tmp_path: Path, rows: pd.DataFrame
) -> None:
    rows.rename(columns={TS: "observed_at"}).to_parquet(tmp_path / "events.parquet")
    with pytest.raises(StageInputError, match=rf"events\.parquet has no {TS} column"):
        ingest.fetch_batch(FIRST, files_cfg(tmp_path / "events.parquet"), CONTRACT)


def test_unparseable_timestamps_name_the_file(tmp_path: Path, rows: pd.DataFrame) -> None:
    frame = rows.astype({TS: str})
    frame.loc[3, TS] = "yesterday-ish"
    frame.to_csv(tmp_path / "events.csv", index=False)
    with pytest.raises(StageInputError, match=rf"events\.csv: column {TS} does not parse"):
        ingest.fetch_batch(FIRST, files_cfg(tmp_path / "events.csv"), CONTRACT)


# --- sql -------------------------------------------------------------------------------

QUERY = f"SELECT * FROM events WHERE {TS} >= :day_start AND {TS} < :day_end"


@pytest.fixture
def database(tmp_path: Path, rows: pd.DataFrame) -> str:
    """An SQLite file holding the rows as pandas writes them (`to_sql`)."""
    url = f"sqlite:///{tmp_path / 'source.db'}"
    engine = sa.create_engine(url)
    rows[rows[TS].dt.date != DAYS[3]].to_sql("events", engine, index=False)
    engine.dispose()
    return url


def sql_cfg(url: str | None = None, query: str = QUERY, url_env: str | None = None):
    return IngestConfig(source="sql", sql=SqlSourceConfig(url=url, url_env=url_env, query=query))


def test_sql_query_is_bound_to_each_utc_day(database: str) -> None:
    for day in DAYS[:3]:
        batch = ingest.fetch_batch(day, sql_cfg(database), CONTRACT)
        assert set(batch[TS].dt.date) == {day}
        same_rows(batch, day_rows(day))


def test_sql_url_env_wins_when_set(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = sql_cfg("sqlite:////nonexistent/dir/nothing.db", url_env="TEST_INGEST_SQL_URL")
    monkeypatch.setenv("TEST_INGEST_SQL_URL", database)
    same_rows(ingest.fetch_batch(FIRST, cfg, CONTRACT), day_rows(FIRST))
    monkeypatch.delenv("TEST_INGEST_SQL_URL")
    with pytest.raises(StageInputError, match=r"ingest\.sql\.query failed on .*nothing\.db"):
        ingest.fetch_batch(FIRST, cfg, CONTRACT)  # unset: the url key is used


def test_sql_url_env_unset_without_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_INGEST_SQL_URL", raising=False)
    with pytest.raises(ConfigError, match="TEST_INGEST_SQL_URL"):
        ingest.fetch_batch(FIRST, sql_cfg(url_env="TEST_INGEST_SQL_URL"), CONTRACT)


def test_sql_day_without_rows_names_the_day(database: str) -> None:
    with pytest.raises(StageInputError, match=r"'sql' .*source\.db.*no rows for 2026-03-04"):
        ingest.fetch_batch(DAYS[3], sql_cfg(database), CONTRACT)


def test_a_bad_query_names_the_key_and_the_databases_message(database: str) -> None:
    query = QUERY.replace("FROM events", "FROM event_log")
    with pytest.raises(
        StageInputError, match=r"ingest\.sql\.query failed.*no such table: event_log"
    ):
        ingest.fetch_batch(FIRST, sql_cfg(database, query), CONTRACT)


def test_a_query_without_the_timestamp_names_the_column(database: str) -> None:
    query = QUERY.replace("SELECT *", f"SELECT {KEY}, {CONTRACT.label.column}")
    with pytest.raises(StageInputError, match=rf"ingest\.sql\.query returns no {TS} column"):
        ingest.fetch_batch(FIRST, sql_cfg(database, query), CONTRACT)


# --- synthetic -------------------------------------------------------------------------


def synthetic_cfg(**drift) -> IngestConfig:
    return IngestConfig(
        synthetic=SyntheticConfig(
            rows_per_day=300, population=1500, seed=11, drift=DriftConfig(**drift)
        )
    )


def test_synthetic_rows_satisfy_any_contract_and_repeat(any_contract: DatasetContract) -> None:
    batch = ingest.conformed_batch(FIRST, synthetic_cfg(), any_contract)
    assert sorted(batch.columns) == sorted(any_contract.raw_columns)
    assert len(batch) == 300
    assert set(batch[any_contract.timestamp].dt.date) == {FIRST}
    assert not batch.duplicated([any_contract.entity.key, any_contract.timestamp]).any()
    assert set(batch[any_contract.label.column]) == {0, 1}
    again = ingest.conformed_batch(FIRST, synthetic_cfg(), any_contract)
    pd.testing.assert_frame_equal(batch, again)
    other_day = ingest.conformed_batch(DAYS[1], synthetic_cfg(), any_contract)
    assert not batch[any_contract.entity.key].equals(other_day[any_contract.entity.key])


def test_synthetic_drift_shifts_the_inputs_from_its_start_date_on(
    any_contract: DatasetContract,
) -> None:
    drifted = synthetic_cfg(start_date=DAYS[1], covariate=0.8)
    plain = ingest.conformed_batch(DAYS[1], synthetic_cfg(), any_contract)
    before = ingest.conformed_batch(FIRST, drifted, any_contract)
    after = ingest.conformed_batch(DAYS[1], drifted, any_contract)
    pd.testing.assert_frame_equal(
        before, ingest.conformed_batch(FIRST, synthetic_cfg(), any_contract)
    )
    shifted = [c for c in any_contract.numeric if after[c].mean() > 1.2 * plain[c].mean()]
    assert shifted, "covariate drift moves the numeric columns up"


def test_synthetic_concept_drift_changes_the_label_not_the_inputs() -> None:
    plain = ingest.conformed_batch(FIRST, synthetic_cfg(), LOAN)
    drifted = ingest.conformed_batch(FIRST, synthetic_cfg(start_date=FIRST, concept=1.0), LOAN)
    label = LOAN.label.column
    inputs = [c for c in LOAN.raw_columns if c != label]
    pd.testing.assert_frame_equal(plain[inputs], drifted[inputs])
    assert (plain[label] != drifted[label]).mean() > 0.05


def test_the_demo_contract_gets_the_demo_generator() -> None:
    from {{ cookiecutter.package_name }}.datagen import RAW_COLUMNS, generates

    assert generates(list(RAW_COLUMNS))
    assert not generates(LOAN.raw_columns)


# --- configuration ---------------------------------------------------------------------


def params_with(tmp_path: Path, **ingest_keys) -> Path:
    data = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    data["ingest"].update(ingest_keys)
    for section, value in ingest_keys.items():
        if value is None:
            del data["ingest"][section]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    (tmp_path / "interval.yaml").write_text((PROJECT_ROOT / "interval.yaml").read_text())
    return path


def test_the_configured_source_delivers_the_contracts_columns(project_params) -> None:
    day = project_params.window.end_date
    batch = ingest.conformed_batch(day, project_params.ingest, project_params.dataset)
    assert sorted(batch.columns) == sorted(project_params.dataset.raw_columns)
    assert set(batch[TS].dt.date) == {day}
    if project_params.ingest.source == "synthetic":
        assert len(batch) == project_params.ingest.synthetic.rows_per_day


def test_an_unknown_source_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ingest\.source"):
        load_params(params_with(tmp_path, source="kafka"))


@pytest.mark.parametrize("source", ["synthetic", "files", "sql"])
def test_the_chosen_sources_section_is_required(tmp_path: Path, source: str) -> None:
    with pytest.raises(ConfigError, match=rf"ingest\.{source}: .*ingest\.source is '{source}'"):
        load_params(params_with(tmp_path, source=source, **{source: None}))


def test_only_the_chosen_section_is_required(tmp_path: Path) -> None:
    params = load_params(params_with(tmp_path, source="files", synthetic=None, sql=None))
    assert params.ingest.files is not None
    assert params.ingest.synthetic is None


def test_a_query_without_the_day_bounds_names_the_key(tmp_path: Path) -> None:
    sql = {"url": "sqlite:///x.db", "query": "SELECT * FROM events WHERE ts >= :day_start"}
    with pytest.raises(ConfigError, match=r"ingest\.sql\.query: .*:day_end"):
        load_params(params_with(tmp_path, sql=sql))


def test_an_unknown_files_key_names_it(tmp_path: Path) -> None:
    files = {"path": "data/source/*.csv", "timestamp": "ts"}
    with pytest.raises(ConfigError, match=r"unknown key 'ingest\.files\.timestamp'"):
        load_params(params_with(tmp_path, files=files))
