"""Stage file helpers: atomic streamed parquet writes and typed reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.files import ParquetStream, read_parquet


def _frame(start: int, rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entity_id": range(start, start + rows),
            "event_timestamp": pd.date_range("2026-03-01", periods=rows, freq="h", tz="UTC"),
            "value": [0.5 * i for i in range(rows)],
            "segment": ["consumer"] * rows,
        }
    )


def test_stream_writes_the_pieces_in_order(tmp_path: Path) -> None:
    path = tmp_path / "out" / "frame.parquet"
    with ParquetStream(path) as stream:
        stream.write(_frame(0, 3))
        stream.write(_frame(3, 4))
    assert stream.rows == 7
    expected = pd.concat([_frame(0, 3), _frame(3, 4)], ignore_index=True)
    expected["event_timestamp"] = expected["event_timestamp"].astype("datetime64[us, UTC]")
    pd.testing.assert_frame_equal(pd.read_parquet(path), expected)


def test_a_failed_stream_leaves_the_previous_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "frame.parquet"
    _frame(0, 2).to_parquet(path, index=False)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="source broke"), ParquetStream(path) as stream:
        stream.write(_frame(10, 5))
        raise RuntimeError("source broke")
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path], "no temporary file is left behind"


def test_a_piece_with_another_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "frame.parquet"
    with pytest.raises((ValueError, TypeError)), ParquetStream(path) as stream:
        stream.write(_frame(0, 2))
        stream.write(_frame(2, 2).drop(columns=["value"]))
    assert not path.exists()


def test_read_casts_float32_columns_before_pandas(tmp_path: Path) -> None:
    path = tmp_path / "frame.parquet"
    _frame(0, 5).to_parquet(path, index=False)
    frame = read_parquet(path, "test", columns=["entity_id", "value"], float32=["value"])
    assert list(frame.columns) == ["entity_id", "value"]
    assert frame["value"].dtype == "float32"
    assert frame["entity_id"].dtype == "int64"
