"""Publishing dags/ to an S3 prefix: a mirror (upload new and changed, delete gone)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from tools.publish import PublishError, app, parse_s3_uri, s3_client, sync_folder

BUCKET = "dags-bucket"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        client = s3_client()
        client.create_bucket(Bucket=BUCKET)
        yield client


def keys(client: Any, prefix: str = "") -> set[str]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {obj["Key"] for obj in listed}


def test_parse_s3_uri() -> None:
    assert parse_s3_uri("s3://b/airflow/dags/") == ("b", "airflow/dags/")
    assert parse_s3_uri("s3://b") == ("b", "")
    with pytest.raises(PublishError, match="not an S3 URI"):
        parse_s3_uri("/local/dags")


def test_sync_mirrors_the_folder(s3: Any, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    (dags / "__pycache__").mkdir(parents=True)
    (dags / "training.py").write_text("# dag 1\n")
    (dags / "monitoring.py").write_text("# dag 2\n")
    (dags / "__pycache__" / "training.cpython-311.pyc").write_bytes(b"\x00")
    (dags / ".airflowignore").write_text("")
    s3.put_object(Bucket=BUCKET, Key="other/keep.txt", Body=b"outside the prefix")

    first = sync_folder(dags, f"s3://{BUCKET}/airflow/dags", s3)
    assert sorted(first.uploaded) == ["monitoring.py", "training.py"]
    assert keys(s3, "airflow/") == {"airflow/dags/monitoring.py", "airflow/dags/training.py"}

    (dags / "training.py").write_text("# dag 1, changed\n")
    (dags / "monitoring.py").unlink()
    second = sync_folder(dags, f"s3://{BUCKET}/airflow/dags", s3)
    assert second.uploaded == ["training.py"]
    assert second.deleted == ["monitoring.py"]
    body = s3.get_object(Bucket=BUCKET, Key="airflow/dags/training.py")["Body"].read()
    assert body == b"# dag 1, changed\n"

    third = sync_folder(dags, f"s3://{BUCKET}/airflow/dags", s3)
    assert (third.uploaded, third.deleted, third.unchanged) == ([], [], ["training.py"])
    assert "other/keep.txt" in keys(s3), "nothing outside the prefix is touched"


def test_publish_dags_command(s3: Any, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "training.py").write_text("# dag\n")
    done = CliRunner().invoke(app, ["--to", f"s3://{BUCKET}/dags", "--source", str(dags)])
    assert done.exit_code == 0, done.output
    assert keys(s3) == {"dags/training.py"}
    missing = CliRunner().invoke(
        app, ["--to", f"s3://{BUCKET}/dags", "--source", str(tmp_path / "nope")]
    )
    assert missing.exit_code == 1
    assert "is not a folder" in missing.output
