"""The prediction log's files: one per UTC day, deleted after the retention, read back in
order as if they were one file, appended to by many threads and writers at once, whole
after a crash; and the days the monitor reads."""

from __future__ import annotations

import datetime as dt
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import Params
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import entity_ids
from {{ cookiecutter.package_name }}.errors import ConfigError
from {{ cookiecutter.package_name }}.monitoring.windows import quality_window
from {{ cookiecutter.package_name }}.prediction_log import SCORE, PredictionRecord, read_prediction_log
from {{ cookiecutter.package_name }}.prediction_log_files import (
    PredictionLogWriter,
    check_retention,
    log_files,
    segment_path,
    segments,
)
from {{ cookiecutter.package_name }}.serving import serve
from {{ cookiecutter.package_name }}.stages.monitor import log_since

NOON = dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC)


class Clock:
    """The writer's clock, set by the test."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def record(contract: DatasetContract, i: int, **changes: object) -> PredictionRecord:
    """Record `i`: its features are all `i`, so a test can tell which records came back."""
    fields = {
        "timestamp": NOON.isoformat(),
        "entity_id": entity_ids(contract, np.array([i])).tolist()[0],
        "model_name": "m",
        "model_version": "2",
        "features": {c: float(i) for c in contract.feature_columns},
        "score": 0.25,
        "predicted": 0,
    }
    return PredictionRecord(**{**fields, **changes})


def test_a_new_utc_day_starts_a_new_file(tmp_path: Path, contract) -> None:
    path = tmp_path / "predictions.jsonl"
    clock = Clock(dt.datetime(2026, 4, 1, 23, 59, 59, 999_999, tzinfo=dt.UTC))
    writer = PredictionLogWriter(path, clock=clock)
    writer.append([record(contract, 0)])
    clock.now += dt.timedelta(microseconds=1)  # midnight, UTC
    writer.append([record(contract, 1)])
    # 01:30 at UTC+2 is 23:30 UTC the day before: the day is the UTC one
    clock.now = dt.datetime(2026, 4, 3, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    writer.append([record(contract, 2), record(contract, 3)])
    writer.close()
    days = [(day.isoformat(), len(file.read_text().splitlines())) for day, file in segments(path)]
    assert days == [("2026-04-01", 1), ("2026-04-02", 3)]
    assert not path.exists()  # only the day files
    mode = stat.S_IMODE(segment_path(path, dt.date(2026, 4, 1)).stat().st_mode)
    assert mode & 0o007 == 0, oct(mode)  # ids and features: not for every user of the machine


def test_retention_deletes_only_days_past_it(tmp_path: Path, contract) -> None:
    path = tmp_path / "predictions.jsonl"
    today = NOON.date()
    for back in (0, 1, 29, 30, 31, 90):
        segment_path(path, today - dt.timedelta(days=back)).write_text("{}\n")
    others = ["predictions-2026-02-30.jsonl", "predictions-old.jsonl", "other-2025-01-01.jsonl"]
    for name in others:
        (tmp_path / name).write_text("kept\n")
    clock = Clock(NOON)
    writer = PredictionLogWriter(path, 30, clock)
    left = [(today - day).days for day, _ in segments(path)]
    assert left == [30, 29, 1, 0]  # 31 and 90 days ago are gone, when the service starts
    assert all((tmp_path / name).read_text() == "kept\n" for name in others)

    clock.now += dt.timedelta(days=1)  # the next day: the day 30 days back is now 31
    writer.append([record(contract, 0)])
    assert [(clock.now.date() - day).days for day, _ in segments(path)] == [30, 2, 1, 0]


def test_an_unrotated_log_is_read_first_and_expires_by_its_last_write(
    tmp_path: Path, contract
) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text(record(contract, 0).to_json() + "\n")  # written before rotation
    writer = PredictionLogWriter(path, 30, Clock(NOON))
    writer.append([record(contract, 1)])
    log = read_prediction_log(path, contract)
    assert log is not None and log.frame[SCORE].size == 2
    assert log_files(path) == [path, segment_path(path, NOON.date())]

    written = (NOON - dt.timedelta(days=31)).timestamp()
    os.utime(path, (written, written))
    PredictionLogWriter(path, 30, Clock(NOON)).close()
    assert not path.exists()


def test_reading_the_days_equals_reading_them_as_one_file(
    tmp_path: Path, any_key_contract: DatasetContract
) -> None:
    c = any_key_contract
    path = tmp_path / "logs" / "predictions.jsonl"
    clock = Clock(NOON)
    writer = PredictionLogWriter(path, clock=clock)
    for day in range(3):
        writer.append([record(c, 3 * day + i, timestamp=clock.now.isoformat()) for i in range(3)])
        clock.now += dt.timedelta(days=1)
    writer.close()
    second = segment_path(path, dt.date(2026, 4, 2))
    second.write_text(second.read_text() + "{oops\n\n")  # a bad line and a blank one
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(f.read_text() for f in log_files(path)))

    split, single = read_prediction_log(path, c), read_prediction_log(whole, c)
    assert split is not None and single is not None
    pd.testing.assert_frame_equal(split.frame, single.frame)
    assert len(split.frame) == 9 and split.frame[c.timestamp].is_monotonic_increasing
    assert (
        (split.lines, split.malformed)
        == (single.lines, single.malformed)
        == (10, [(7, "not JSON (Expecting property name enclosed in double quotes)")])
    )
    assert "predictions-2026-04-02.jsonl line 4: not JSON" in split.issue()
    assert "(line 7: not JSON" in single.issue()

    since = read_prediction_log(path, c, since=dt.date(2026, 4, 2))
    assert since is not None and since.frame[c.timestamp].min().date() == dt.date(2026, 4, 2)
    assert len(since.frame) == 6


def test_appends_from_many_threads_and_writers_lose_nothing(tmp_path: Path, contract) -> None:
    """Threads share one writer (as the service's do); a second writer on the same log
    appends through its own file descriptor, as another process would."""
    path = tmp_path / "predictions.jsonl"
    writers = [PredictionLogWriter(path, clock=Clock(NOON)) for _ in range(2)]
    threads, batches, size = 8, 150, 4

    def work(t: int) -> None:
        for b in range(batches):
            first = (t * batches + b) * size
            writers[t % 2].append([record(contract, first + i) for i in range(size)])

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    log = read_prediction_log(path, contract)
    assert log is not None and log.malformed == []
    assert log.lines == threads * batches * size
    assert sorted(log.frame[contract.feature_columns[0]]) == list(range(threads * batches * size))


def test_a_restart_after_a_torn_write_keeps_every_whole_line(tmp_path: Path, contract) -> None:
    path = tmp_path / "predictions.jsonl"
    PredictionLogWriter(path, clock=Clock(NOON)).append([record(contract, 0)])
    day = segment_path(path, NOON.date())
    with day.open("a") as handle:  # the process died in the middle of a line
        handle.write(record(contract, 1).to_json()[:40])
    PredictionLogWriter(path, clock=Clock(NOON)).append([record(contract, 2)])
    log = read_prediction_log(path, contract)
    assert log is not None and log.frame[contract.feature_columns[0]].tolist() == [0.0, 2.0]
    assert [n for n, _ in log.malformed] == [2]


def test_the_monitor_reads_the_days_its_windows_need(
    tmp_path: Path, project_params: Params
) -> None:
    p = project_params
    path = tmp_path / "predictions.jsonl"
    p = p.model_copy(update={"paths": p.paths.model_copy(update={"prediction_log": path})})
    quality_start, _ = quality_window(p.dataset, p.window.end_date, p.monitor.current_days)
    assert log_since(p) == quality_start.date()  # no log yet: the quality window

    newest = quality_start.date() - dt.timedelta(days=30)  # the service stopped long ago
    segment_path(path, newest).write_text("")
    assert log_since(p) == newest - dt.timedelta(days=p.monitor.current_days)
    later = p.window.end_date + dt.timedelta(days=2)
    segment_path(path, later).write_text("")
    assert log_since(p) == quality_start.date()


def test_the_service_keeps_what_the_monitor_reads(project_params: Params) -> None:
    check_retention(12, current_days=7, horizon_days=5)
    with pytest.raises(ConfigError, match=r"retention_days \(11\) is shorter .* = 12$"):
        check_retention(11, current_days=7, horizon_days=5)
    p = project_params
    short = p.monitor.current_days + p.dataset.label.horizon_days - 1
    serving = p.serving.model_copy(update={"prediction_log_retention_days": short})
    with pytest.raises(ConfigError, match=r"serving\.prediction_log_retention_days"):
        serve(p.model_copy(update={"serving": serving}))  # refuses before it starts
