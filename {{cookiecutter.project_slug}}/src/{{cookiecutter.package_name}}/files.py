"""Reading and writing stage inputs and outputs, with errors that say what to run."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import StageInputError


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """The hex digest of a file's bytes, read in chunks (md5 for change detection, sha256
    where the digest guards what is loaded)."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, algorithm).hexdigest()


def require(path: Path, produced_by: str) -> Path:
    """Return `path` if it exists, else explain which stage produces it."""
    if not path.exists():
        raise StageInputError(
            f"{path} not found: it is produced by the '{produced_by}' stage. "
            f"Run `dvc repro {produced_by}` (or `dvc pull` to fetch it from the remote)."
        )
    return path


def read_parquet(
    path: Path,
    produced_by: str,
    columns: Sequence[str] | None = None,
    float32: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a stage output (only `columns`, if given). Columns in `float32` are cast in
    Arrow, before pandas sees them, so no float64 copy of a large matrix is ever made."""
    if not float32:
        return pd.read_parquet(require(path, produced_by), columns=columns)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(require(path, produced_by), columns=columns)
    wanted = set(float32)
    schema = pa.schema([f.with_type(pa.float32()) if f.name in wanted else f for f in table.schema])
    frame = table.cast(schema).to_pandas(self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()  # hand the decoding buffers back now
    return frame


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write atomically: a crash mid-write never leaves a half file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # Microsecond timestamps: what DuckDB (Feast's offline store) and Spark read natively.
    frame.to_parquet(tmp, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    tmp.replace(path)


class ParquetStream:
    """Write a parquet file piece by piece (one daily batch at a time), atomically:
    the file appears at `path` only when the block exits without an error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.tmp")
        self._writer: Any = None
        self.rows = 0

    def __enter__(self) -> ParquetStream:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(
                self._tmp,
                table.schema,
                coerce_timestamps="us",
                allow_truncated_timestamps=True,
            )
        self._writer.write_table(table.cast(self._writer.schema))
        self.rows += len(frame)

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self._writer is not None:
            self._writer.close()
        if exc_type is None and self._writer is not None:
            self._tmp.replace(self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def write_json(data: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")
    Path(tmp).replace(path)


def read_json(path: Path, produced_by: str) -> Any:
    return json.loads(require(path, produced_by).read_text())
