"""Day-partitioned outputs: one parquet file per day, and a manifest of what each was
built from, so a daily run builds only the new day.

`ingest`, `featurize` and `training_set` write their outputs this way (dvc.yaml keeps
them across runs: `persist: true`). Each run:

1. computes its **fingerprint**: the source code of the modules that decide what a
   day's file holds, and the settings they read (the contract, the source...). When it
   differs from the manifest's, or there is no manifest, every day is built again;
2. gives each day of the window a **key**: what that day's file is built from (the md5
   of its input file, the upstream manifest's entry). A day whose key and file are
   unchanged is kept; the others are built;
3. deletes the files of days outside the window, builds the missing days, and writes
   the manifest last, so an interrupted run leaves days that the next run redoes.

A day's file then holds exactly what a run from scratch writes for that day: the
tests build a window day by day and from scratch and compare the frames.

A folder of part files reads as one table, the days in order: `pandas.read_parquet`
(pyarrow), `pyarrow.parquet.read_table`, DuckDB `read_parquet` and Spark all read the
folder; files starting with `_` or `.` (the manifest, half-written files) are skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from .files import write_json

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
PART_PREFIX = "part-"


def fingerprint(code: Iterable[ModuleType | Path], **settings: Any) -> str:
    """A hash of the source of `code` (modules or files) and of `settings` (JSON)."""
    digest = hashlib.sha256()
    for item in code:
        path = Path(item.__file__ or "") if isinstance(item, ModuleType) else item
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class DayFiles:
    """One file per day in `folder`: `<prefix><YYYY-MM-DD>.parquet`."""

    folder: Path
    prefix: str = PART_PREFIX

    def path(self, day: dt.date) -> Path:
        return self.folder / f"{self.prefix}{day.isoformat()}.parquet"

    def existing(self) -> dict[dt.date, Path]:
        """The days that have a file, oldest first."""
        if not self.folder.is_dir():
            return {}
        found = {}
        for path in self.folder.glob(f"{self.prefix}*.parquet"):
            try:
                found[dt.date.fromisoformat(path.stem.removeprefix(self.prefix))] = path
            except ValueError:
                continue  # not a day's file
        return dict(sorted(found.items()))

    def clear(self) -> None:
        """Remove every day's file; a file (not a folder) at `folder` goes too."""
        if self.folder.is_file():
            self.folder.unlink()
        elif self.folder.is_dir():
            for path in self.existing().values():
                path.unlink()


@dataclass(frozen=True)
class Plan:
    """What a run does: the days to build, the days kept, and why it rebuilds all."""

    build: list[dt.date]
    keep: list[dt.date]
    rebuild_reason: str | None
    kept_entries: dict[str, dict[str, Any]]

    def describe(self) -> str:
        why = f" ({self.rebuild_reason})" if self.rebuild_reason else ""
        days = "day" if len(self.build) == 1 else "days"
        return f"{len(self.build)} {days} to build{why}, {len(self.keep)} kept"


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest in `root`, or None when there is none or it is unreadable."""
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    ok = isinstance(manifest, dict) and isinstance(manifest.get("days"), dict)
    return manifest if ok else None


def plan(
    root: Path, code_fingerprint: str, wanted: Mapping[dt.date, str], outputs: Sequence[DayFiles]
) -> Plan:
    """Compare the window's days (`wanted`: day -> key) with the manifest in `root`,
    delete the files of the days to build and of the days outside the window, and say
    which days to build."""
    manifest = read_manifest(root)
    reason = None
    if manifest is None:
        reason = "no manifest"
    elif manifest.get("fingerprint") != code_fingerprint:
        reason = "code or settings changed"
    if reason:
        (root / MANIFEST).unlink(missing_ok=True)  # first: a crash below leaves no stale record
        for output in outputs:
            output.clear()
        manifest = {"days": {}}
    assert manifest is not None
    present = [output.existing() for output in outputs]
    keep, build, entries = [], [], {}
    for day, key in sorted(wanted.items()):
        entry = manifest["days"].get(day.isoformat())
        if isinstance(entry, dict) and entry.get("key") == key and all(day in p for p in present):
            keep.append(day)
            entries[day.isoformat()] = entry
        else:
            build.append(day)
    for days in present:
        for day, path in days.items():
            if day not in keep:
                path.unlink()
    return Plan(build, keep, reason, entries)


def record(
    root: Path, code_fingerprint: str, entries: Mapping[str, Mapping[str, Any]], **extra: Any
) -> None:
    """Write the manifest: the fingerprint and, per day (ISO), its key and figures."""
    write_json(
        {"fingerprint": code_fingerprint, **extra, "days": dict(sorted(entries.items()))},
        root / MANIFEST,
    )


def write_part(frame: pd.DataFrame, path: Path) -> None:
    """Write one day's rows atomically, the same bytes whatever else the run builds: no
    pandas metadata, timestamps in microseconds, and a column without any value (Arrow's
    null type) written as strings, so every day's file reads into one table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = pa.schema(
        [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
    )
    table = table.cast(schema).replace_schema_metadata(None)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, coerce_timestamps="us", allow_truncated_timestamps=True)
    tmp.replace(path)
