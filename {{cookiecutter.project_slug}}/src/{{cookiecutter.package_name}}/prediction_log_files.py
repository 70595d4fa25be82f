"""Where the prediction log's lines live: one file per UTC day, kept for a retention
period, appended to safely by many threads and processes.

`paths.prediction_log` (logs/predictions.jsonl) names the log. The service appends each
line to the file of the UTC day it writes it on, logs/predictions-YYYY-MM-DD.jsonl, and
deletes the files of days more than `serving.prediction_log_retention_days` ago, when it
starts and at each new day. A file at `paths.prediction_log` itself (a log written before
rotation) is read first, and deleted once it was last written longer ago than that.

A day per file because the monitor works in UTC days (its windows, the labels it joins
by entity and day): it reads the files of the days it needs and no others, and a day
leaves as a whole when it expires. What a line holds is prediction_log.py's business.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from .config import ServingConfig
from .errors import ConfigError

log = logging.getLogger(__name__)

FILE_MODE = 0o640  # owner and group: the lines hold entity ids and feature values
RETENTION_DAYS = ServingConfig.model_fields["prediction_log_retention_days"].default


class JsonRecord(Protocol):
    """A record the writer can append: one JSON object, without newlines."""

    def to_json(self) -> str: ...


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def segment_path(path: Path, day: dt.date) -> Path:
    """The file of the lines written on `day` (UTC): logs/predictions-2026-04-01.jsonl for
    the log logs/predictions.jsonl."""
    return path.with_name(f"{path.stem}-{day.isoformat()}{path.suffix}")


def segments(path: Path) -> list[tuple[dt.date, Path]]:
    """The log's daily segments (day, file), oldest first."""
    if not path.parent.is_dir():
        return []
    name = re.compile(re.escape(path.stem) + r"-(\d\d\d\d-\d\d-\d\d)" + re.escape(path.suffix))
    found = []
    for entry in path.parent.iterdir():
        match = name.fullmatch(entry.name)
        if match is None or not entry.is_file():
            continue
        try:
            found.append((dt.date.fromisoformat(match.group(1)), entry))
        except ValueError:  # 2026-02-30: not one of ours
            continue
    return sorted(found)


def log_files(path: Path, since: dt.date | None = None) -> list[Path]:
    """The files of the log in the order their lines were written: the unrotated file at
    `path` when there is one (written before rotation), then the daily segments (those
    of `since` and later, when given)."""
    files = [path] if path.is_file() else []
    return files + [file for day, file in segments(path) if since is None or day >= since]


def check_retention(retention_days: int, current_days: int, horizon_days: int) -> None:
    """ConfigError when the service would delete lines the monitor still reads: its
    quality window is monitor.current_days of labels matured after dataset.label.horizon_days."""
    if retention_days < current_days + horizon_days:
        raise ConfigError(
            f"serving.prediction_log_retention_days ({retention_days}) is shorter than what "
            "the monitor reads: monitor.current_days + dataset.label.horizon_days = "
            f"{current_days + horizon_days}"
        )


def _write_all(fd: int, data: bytes) -> None:
    """One write(2) of whole lines: O_APPEND makes it land after every earlier write, from
    any thread or process, without interleaving (a regular file on a local disk)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _end_torn_line(fd: int) -> None:
    """Close a line a crashed process left unfinished, so the next line stays whole (the
    torn one is then one malformed line, reported by the reader)."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        _write_all(fd, b"\n")


class PredictionLogWriter:
    """Appends records to the segment of the current UTC day; safe across threads (a lock)
    and processes (one O_APPEND write per append), and across restarts (it appends to the
    day's segment). Deletes segments older than the retention when it starts and at each
    new day. `clock` (tests) returns the current time as an aware datetime."""

    def __init__(
        self,
        path: Path,
        retention_days: int = RETENTION_DAYS,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.path = path
        self.retention_days = retention_days
        self._clock = clock
        self._lock = threading.Lock()
        self._day: dt.date | None = None
        self._fd = -1
        self._close: Callable[[], Any] = lambda: None
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:  # fail now, not at the first request, if the folder is not writable
            self._open(self._today())

    def append(self, records: Sequence[JsonRecord]) -> None:
        if not records:
            return
        data = "".join(record.to_json() + "\n" for record in records).encode()
        with self._lock:
            today = self._today()
            if today != self._day:
                self._open(today)
            _write_all(self._fd, data)

    def close(self) -> None:
        with self._lock:
            self._close()
            self._day = None

    def _today(self) -> dt.date:
        return self._clock().astimezone(dt.UTC).date()

    def _open(self, day: dt.date) -> None:
        self._close()
        fd = os.open(segment_path(self.path, day), os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
        self._close = weakref.finalize(self, os.close, fd)  # closed once: here or when collected
        self._fd, self._day = fd, day
        _end_torn_line(fd)
        self._delete_expired(day)

    def _delete_expired(self, today: dt.date) -> None:
        """Delete the segments of days more than retention_days before `today`, and the
        unrotated file once it was last written that long ago."""
        oldest = today - dt.timedelta(days=self.retention_days)
        expired = [file for day, file in segments(self.path) if day < oldest]
        try:
            written = dt.datetime.fromtimestamp(self.path.stat().st_mtime, dt.UTC).date()
            if written < oldest:
                expired.append(self.path)
        except FileNotFoundError:
            pass
        for file in expired:
            try:
                file.unlink(missing_ok=True)
            except OSError as exc:  # keep serving; the next day tries again
                log.warning("prediction log: cannot delete %s (past retention): %s", file, exc)
            else:
                log.info("prediction log: deleted %s (past %d days)", file, self.retention_days)
