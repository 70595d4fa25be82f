"""Publish the DAG files to an S3 prefix that Airflow reads its DAGs from.

For Airflow deployments whose dags folder is an S3 bucket (Amazon MWAA, or a
sync sidecar next to the scheduler). With git-sync nothing needs publishing:
Airflow pulls this repository itself. The sync mirrors the folder: new and
changed files are uploaded, files gone from the folder are deleted remotely,
unchanged files are left alone (compared by MD5 with the object's ETag).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from {{ cookiecutter.package_name }}.files import file_digest

log = logging.getLogger(__name__)

SKIPPED_DIRS = {"__pycache__", ".ipynb_checkpoints"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


class PublishError(ValueError):
    """A destination or source that cannot be published: shown as one line, exit 1."""


@dataclass
class SyncResult:
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix/")."""
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise PublishError(f"{uri!r} is not an S3 URI; expected s3://<bucket>/<prefix>")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def local_files(source: Path) -> dict[str, Path]:
    """Files to publish, by path relative to `source` (no caches, no hidden files)."""
    if not source.is_dir():
        raise PublishError(f"{source} is not a folder: nothing to publish")
    files = {}
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if not path.is_file() or path.suffix in SKIPPED_SUFFIXES:
            continue
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in rel.parts):
            continue
        files[rel.as_posix()] = path
    return files


def sync_folder(source: Path, uri: str, client: Any, delete: bool = True) -> SyncResult:
    """Mirror `source` to `uri` with a boto3 S3 client."""
    bucket, prefix = parse_s3_uri(uri)
    files = local_files(source)
    remote: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            remote[obj["Key"][len(prefix) :]] = obj["ETag"].strip('"')
    result = SyncResult()
    for rel, path in files.items():
        if remote.get(rel) == file_digest(path):
            result.unchanged.append(rel)
            continue
        client.upload_file(str(path), bucket, prefix + rel)
        result.uploaded.append(rel)
    if delete:
        for rel in sorted(set(remote) - set(files)):
            client.delete_object(Bucket=bucket, Key=prefix + rel)
            result.deleted.append(rel)
    log.info(
        "published %s to %s: %d uploaded, %d deleted, %d unchanged",
        source,
        uri,
        len(result.uploaded),
        len(result.deleted),
        len(result.unchanged),
    )
    return result


def s3_client(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client; credentials and region come from the environment (or OIDC in CD)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or None)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    to: str = typer.Option(..., "--to", help="Destination, s3://<bucket>/<prefix>."),
    source: Path = typer.Option(Path("dags"), "--source", help="Folder to publish."),
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", help="S3-compatible endpoint (MinIO); empty for AWS."
    ),
    delete: bool = typer.Option(True, help="Delete remote files that are gone locally."),
) -> None:
    """`make publish-dags`: mirror dags/ to the S3 prefix Airflow reads DAGs from
    (credentials from the environment)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = sync_folder(source, to, s3_client(endpoint_url), delete=delete)
    except PublishError as exc:
        typer.echo(f"publish failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{to}: {len(result.uploaded)} uploaded, {len(result.deleted)} deleted, "
        f"{len(result.unchanged)} unchanged"
    )


if __name__ == "__main__":
    app()
