"""Incremental stages (partitions.py): a window built day by day holds exactly what a
run from scratch writes, and a change of code, contract or settings rebuilds it all.

Each test lands the daily batches of days 1..N, runs the stage, moves the window one
day (day 1 leaves, day N+1 enters: what the scheduled run does every day), runs it
again, and compares the result with a run from scratch on days 2..N+1:
`pandas.testing.assert_frame_equal`, exact (rows, order, dtypes, values)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from {{ cookiecutter.package_name }} import partitions
from {{ cookiecutter.package_name }}.batches import batch_path
from {{ cookiecutter.package_name }}.config import Params, PathsConfig, SplitConfig, Window
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_day
from {{ cookiecutter.package_name }}.files import file_digest, write_parquet
from {{ cookiecutter.package_name }}.ingest_config import IngestConfig, SyntheticConfig
from {{ cookiecutter.package_name }}.parquet_parts import FooterStats, footer_stats, newest_stamp
from {{ cookiecutter.package_name }}.partitions import DayFiles
from {{ cookiecutter.package_name }}.stages import featurize, ingest, training_set

from conftest import make_feast_repo

END = dt.date(2026, 3, 20)
ONE_DAY = dt.timedelta(days=1)
ROWS = 150


def window(contract: DatasetContract, end: dt.date = END) -> Window:
    """Long enough for 4 days of matured labels (a split of 1 + 1 + 1 days needs 3)."""
    return Window(end_date=end, days=contract.label.horizon_days + 4)


def shifted(win: Window) -> Window:
    return Window(end_date=win.end_date + dt.timedelta(days=1), days=win.days)


def scratch_paths(project: Params, root: Path) -> PathsConfig:
    return project.paths.model_copy(
        update={
            "raw": root / "raw",
            "features": root / "features",
            "training_set": root / "training" / "training_set.parquet",
        }
    )


def land(paths: PathsConfig, contract: DatasetContract, win: Window) -> None:
    """The window's daily batches in paths.raw, as ingest leaves them (other days gone)."""
    for day, path in DayFiles(paths.raw, "batch_").existing().items():
        if day not in win.dates():
            path.unlink()
    for day in win.dates():
        if not batch_path(paths.raw, day).is_file():
            rows = contract_day(contract, day, ROWS, population=400, seed=11)
            write_parquet(rows, batch_path(paths.raw, day))


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every day's file the stages write, in order (cleared by the test as it goes)."""
    paths: list[Path] = []

    def recording(write):
        def wrapper(frame: pd.DataFrame, path: Path) -> None:
            paths.append(path)
            write(frame, path)

        return wrapper

    monkeypatch.setattr(partitions, "write_part", recording(partitions.write_part))
    monkeypatch.setattr(ingest, "write_parquet", recording(ingest.write_parquet))
    return paths


def days_of(paths: list[Path], files: DayFiles) -> list[dt.date]:
    """The days whose file of `files` is among `paths`."""
    return [day for day, path in files.existing().items() if path in paths]


def matured(contract: DatasetContract, win: Window) -> list[dt.date]:
    known_before = contract.label_known_before(win.end_date).date()
    return [day for day in win.dates() if day < known_before]


def read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


# --- the building blocks ---------------------------------------------------------------


def test_the_fingerprint_follows_the_code_and_the_settings(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("X = 1\n")
    first = partitions.fingerprint([module], contract={"a": 1})
    assert partitions.fingerprint([module], contract={"a": 1}) == first
    assert partitions.fingerprint([module], contract={"a": 2}) != first
    module.write_text("X = 2\n")
    assert partitions.fingerprint([module], contract={"a": 1}) != first


def test_a_plan_keeps_unchanged_days_and_drops_the_rest(tmp_path: Path) -> None:
    files = DayFiles(tmp_path / "out")
    days = [dt.date(2026, 1, d) for d in (1, 2, 3)]
    for day in days:
        partitions.write_part(pd.DataFrame({"x": [day.day]}), files.path(day))
    entries = {d.isoformat(): {"key": f"k{d.day}", "rows": 1} for d in days}
    partitions.record(tmp_path, "fp", entries)
    wanted = {days[1]: "k2", days[2]: "changed", dt.date(2026, 1, 4): "k4"}
    plan = partitions.plan(tmp_path, "fp", wanted, [files])
    assert plan.keep == [days[1]]
    assert plan.build == [days[2], dt.date(2026, 1, 4)]
    assert plan.rebuild_reason is None
    assert list(files.existing()) == [days[1]]  # day 1 left the window, day 3 is rebuilt
    again = partitions.plan(tmp_path, "other code", {days[1]: "k2"}, [files])
    assert (again.build, again.keep) == ([days[1]], [])
    assert again.rebuild_reason == "code or settings changed"
    assert files.existing() == {}
    assert not (tmp_path / partitions.MANIFEST).exists()


def test_a_column_without_values_is_written_as_text(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet" / "part-2026-01-01.parquet"
    partitions.write_part(pd.DataFrame({"x": [1.0], "s": [None]}), path)
    partitions.write_part(
        pd.DataFrame({"x": [2.0], "s": ["a"]}), path.with_name("part-2026-01-02.parquet")
    )
    assert read(path.parent)["s"].tolist() == [None, "a"]


# --- ingest ----------------------------------------------------------------------------


def synthetic(rows: int = 120, seed: int = 3) -> IngestConfig:
    return IngestConfig(synthetic=SyntheticConfig(rows_per_day=rows, population=600, seed=seed))


def test_ingest_fetches_only_new_days_and_equals_a_fresh_fetch(
    contract: DatasetContract, tmp_path: Path, written: list[Path]
) -> None:
    win, cfg = window(contract), synthetic()
    raw = tmp_path / "daily"
    batches = DayFiles(raw, "batch_")
    ingest.run(win, cfg, contract, raw)
    written.clear()
    ingest.run(shifted(win), cfg, contract, raw)
    assert list(batches.existing()) == shifted(win).dates()
    assert days_of(written, batches) == [shifted(win).end_date]  # the new day alone
    fresh = tmp_path / "fresh"
    ingest.run(shifted(win), cfg, contract, fresh)
    for day in shifted(win).dates():
        assert_frame_equal(read(batch_path(raw, day)), read(batch_path(fresh, day)))

    written.clear()
    ingest.run(shifted(win), synthetic(seed=4), contract, raw)  # another source setting
    assert days_of(written, batches) == shifted(win).dates()
    written.clear()
    ingest.run(shifted(win), synthetic(seed=4), contract, raw)
    assert written == []
    ingest.run(shifted(win), synthetic(seed=4), contract, raw, refetch=True)
    assert days_of(written, batches) == shifted(win).dates()


def test_changed_source_files_fetch_only_the_days_whose_rows_changed(
    contract: DatasetContract, tmp_path: Path, written: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `files` source keys each day by a hash of its rows: a day appended to the file
    is fetched alone, a corrected day alone, and the batches equal a fresh fetch."""
    from {{ cookiecutter.package_name }} import sources
    from {{ cookiecutter.package_name }}.contract_rows import source_rows
    from {{ cookiecutter.package_name }}.ingest_config import FilesSourceConfig

    win = window(contract)
    days = [*win.dates(), shifted(win).end_date]
    rows = [contract_day(contract, day, 50, population=300, seed=2) for day in days]
    monkeypatch.chdir(tmp_path)
    cfg = IngestConfig(source="files", files=FilesSourceConfig(path="rows.parquet"))

    def source(frames: list[pd.DataFrame]) -> None:
        source_rows(contract, pd.concat(frames)).to_parquet("rows.parquet", index=False)
        sources._file_table.cache_clear()

    def fresh(name: str) -> dict[dt.date, str]:
        ingest.run(shifted(win), cfg, contract, tmp_path / name)
        return {
            d: file_digest(p) for d, p in DayFiles(tmp_path / name, "batch_").existing().items()
        }

    source(rows[:-1])
    raw, batches = tmp_path / "raw", DayFiles(tmp_path / "raw", "batch_")
    ingest.run(win, cfg, contract, raw)
    written.clear()
    ingest.run(win, cfg, contract, raw)
    assert written == []
    source(rows)  # one more day
    ingest.run(shifted(win), cfg, contract, raw)
    assert days_of(written, batches) == [shifted(win).end_date]  # the new day alone
    landed = {day: file_digest(path) for day, path in batches.existing().items()}
    assert landed == fresh("fresh")

    corrected = list(rows)
    changed = shifted(win).dates()[2]
    numeric = next(iter(contract.numeric))
    day_rows = corrected[days.index(changed)].copy()
    day_rows.loc[day_rows.index[0], numeric] = 12345.0
    corrected[days.index(changed)] = day_rows
    source(corrected)  # a past day corrected in the source
    written.clear()
    ingest.run(shifted(win), cfg, contract, raw)
    assert days_of(written, batches) == [changed]  # that day alone
    landed = {day: file_digest(path) for day, path in batches.existing().items()}
    assert landed == fresh("fresh_corrected")
    assert 12345.0 in read(batch_path(raw, changed))[numeric].to_numpy()


# --- featurize ---------------------------------------------------------------------------


def test_featurize_day_by_day_equals_from_scratch(
    any_contract: DatasetContract, project_params: Params, tmp_path: Path, written: list[Path]
) -> None:
    contract, win = any_contract, window(any_contract)
    daily = scratch_paths(project_params, tmp_path / "daily")
    land(daily, contract, win)
    featurize.run(daily, contract)
    feature_files, label_files = featurize.outputs(daily)
    written.clear()
    land(daily, contract, shifted(win))
    rows = featurize.run(daily, contract)
    assert list(feature_files.existing()) == list(label_files.existing()) == shifted(win).dates()
    assert days_of(written, feature_files) == days_of(written, label_files) == [END + ONE_DAY]

    fresh = scratch_paths(project_params, tmp_path / "fresh")
    land(fresh, contract, shifted(win))
    assert featurize.run(fresh, contract) == rows
    assert_frame_equal(read(daily.feature_table), read(fresh.feature_table))
    assert_frame_equal(read(daily.label_table), read(fresh.label_table))
    assert len(read(daily.feature_table)) == rows == ROWS * win.days


def test_featurize_rebuilds_a_changed_batch_and_everything_on_a_new_contract_or_code(
    contract: DatasetContract, project_params: Params, tmp_path: Path, written: list[Path]
) -> None:
    win = window(contract)
    paths = scratch_paths(project_params, tmp_path)
    land(paths, contract, win)
    featurize.run(paths, contract)
    feature_files, _ = featurize.outputs(paths)
    changed = win.dates()[3]
    rows = contract_day(contract, changed, ROWS + 1, population=400, seed=12)
    write_parquet(rows, batch_path(paths.raw, changed))
    written.clear()
    featurize.run(paths, contract)
    assert days_of(written, feature_files) == [changed]
    assert len(read(feature_files.path(changed))) == ROWS + 1

    written.clear()
    other = contract.model_copy(
        update={"label": contract.label.model_copy(update={"horizon_days": 1})}
    )
    featurize.run(paths, other)  # any change of the contract rebuilds every day
    assert days_of(written, feature_files) == win.dates()

    # so does a change of the code: the manifest records the fingerprint of older code
    manifest = json.loads((paths.features / partitions.MANIFEST).read_text())
    assert manifest["fingerprint"] == featurize.code_fingerprint(other)
    manifest["fingerprint"] = "older code"
    (paths.features / partitions.MANIFEST).write_text(json.dumps(manifest))
    written.clear()
    featurize.run(paths, other)
    assert days_of(written, feature_files) == win.dates()


# --- training set ------------------------------------------------------------------------


def feast_project(root: Path, contract: DatasetContract, project: Params) -> PathsConfig:
    """A scratch project whose Feast repository reads <root>/data/features.parquet: the
    feature table featurize writes with paths.features = <root>/data."""
    make_feast_repo(root, pd.DataFrame({"x": [0]}), "sqlite", contract=contract)
    (root / "data" / "features.parquet").unlink()
    paths = scratch_paths(project, root)
    return paths.model_copy(update={"features": root / "data"})


def build(paths: PathsConfig, contract: DatasetContract, win: Window, split: SplitConfig) -> int:
    land(paths, contract, win)
    featurize.run(paths, contract)
    return training_set.run(paths, win, split, contract)


def test_the_training_set_day_by_day_equals_from_scratch(
    any_contract: DatasetContract,
    project_params: Params,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    written: list[Path],
) -> None:
    contract, win = any_contract, window(any_contract)
    split = SplitConfig(valid_days=1, test_days=1)
    daily = feast_project(tmp_path / "daily", contract, project_params)
    monkeypatch.chdir(tmp_path / "daily")  # open_store reads ./features
    build(daily, contract, win, split)
    out = DayFiles(daily.training_set)
    written.clear()
    rows = build(daily, contract, shifted(win), split)
    days = matured(contract, shifted(win))
    assert list(out.existing()) == days
    assert days_of(written, out) == [days[-1]]  # the day that has just matured

    fresh = feast_project(tmp_path / "fresh", contract, project_params)
    monkeypatch.chdir(tmp_path / "fresh")
    assert build(fresh, contract, shifted(win), split) == rows
    daily_set = read(daily.training_set)
    assert_frame_equal(daily_set, read(fresh.training_set))
    assert len(daily_set) == rows == ROWS * len(days)
    assert {contract.label.column, *contract.feature_columns} <= set(daily_set.columns)


def test_the_training_set_joins_a_day_again_when_featurize_rebuilt_it(
    contract: DatasetContract,
    project_params: Params,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    written: list[Path],
) -> None:
    win, split = window(contract), SplitConfig(valid_days=1, test_days=1)
    paths = feast_project(tmp_path, contract, project_params)
    monkeypatch.chdir(tmp_path)
    build(paths, contract, win, split)
    out = DayFiles(paths.training_set)
    written.clear()
    training_set.run(paths, win, split, contract)
    assert written == []  # nothing new: nothing joined
    changed = win.dates()[1]
    write_parquet(
        contract_day(contract, changed, ROWS + 3, population=400, seed=5),
        batch_path(paths.raw, changed),
    )
    featurize.run(paths, contract)
    written.clear()
    training_set.run(paths, win, split, contract)
    assert days_of(written, out) == [changed]
    assert len(read(out.path(changed))) == ROWS + 3


def test_footer_stats_span_the_row_groups_holding_rows(tmp_path: Path) -> None:
    """A file's timestamp range and nulls from its footer: a row group without rows (it
    has no statistics) is skipped; one with rows but no statistics leaves it unknown."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamps = pd.to_datetime(["2024-01-03", "2024-01-02", None, "2024-01-05"])
    table = pa.table({"ts": stamps})
    path = tmp_path / "groups.parquet"
    with pq.ParquetWriter(path, table.schema) as writer:
        for rows in (table.slice(0, 0), table.slice(0, 2), table.slice(2, 0), table.slice(2)):
            writer.write_table(rows)
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [0, 2, 0, 2]
    low, high = pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-05")
    assert footer_stats(meta, "ts") == FooterStats(low, high, 1)
    assert newest_stamp(path, "ts") == high
    assert footer_stats(meta, "other") is None

    bare = tmp_path / "no_statistics.parquet"
    pq.write_table(table, bare, write_statistics=False)
    assert footer_stats(pq.ParquetFile(bare).metadata, "ts") is None
    assert newest_stamp(bare, "ts") == high  # read from the column itself
