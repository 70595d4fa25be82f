"""The generated project's docker-compose stack and pre-commit configuration.

No Docker engine runs where these tests run, so the stack itself is never
started here: these tests check what can be checked without it (the file
parses, services, ports and configuration keys agree with the project's own
configuration and .env.example)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from conftest import VARIANTS

SERVICES = {
    "minio",
    "minio-init",
    "postgres",
    "redis",
    "mlflow",
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
}
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
}
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")


def compose(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / "docker-compose.yml").read_text())


def env_example(project: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(set keys, keys shown commented out as `# KEY=value`) of .env.example."""
    active, commented = {}, {}
    for line in (project / ".env.example").read_text().splitlines():
        if m := re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line):
            active[m.group(1)] = m.group(2)
        elif m := re.match(r"^# ([A-Z][A-Z0-9_]*)=(\S*)$", line):
            commented[m.group(1)] = m.group(2)
    return active, commented


def published(service: dict[str, Any]) -> dict[int, str]:
    """container port -> host binding, from "127.0.0.1:9000:9000" entries."""
    out = {}
    for entry in service.get("ports", []):
        host_ip, host_port, container_port = str(entry).split(":")
        out[int(container_port)] = f"{host_ip}:{host_port}"
    return out


def lock_version(project: Path, package: str) -> str:
    match = re.search(rf"^{package}==(\S+)", (project / "requirements.lock").read_text(), re.M)
    assert match is not None, package
    return match.group(1)


def test_compose_file_is_valid_against_the_compose_spec(baked: dict[str, Path]) -> None:
    """The Compose Specification's JSON schema, vendored in check-jsonschema: offline."""
    files = [str(baked[name] / "docker-compose.yml") for name in VARIANTS]
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", list(VARIANTS))
def test_compose_services_and_ports_match_the_project_config(
    baked: dict[str, Path], name: str
) -> None:
    project = baked[name]
    stack = compose(project)
    services = stack["services"]
    assert set(services) == SERVICES
    for service_name, service in services.items():
        for binding in published(service).values():
            assert binding.startswith("127.0.0.1:"), f"{service_name} must bind to 127.0.0.1"

    active, commented = env_example(project)
    s3 = urlparse(commented["S3_ENDPOINT_URL"])
    assert published(services["minio"])[9000] == f"127.0.0.1:{s3.port}"
    mlflow = urlparse(commented["MLFLOW_TRACKING_URI"])
    assert published(services["mlflow"])[5000] == f"127.0.0.1:{mlflow.port}"
    redis_host, redis_port = commented["FEAST_REDIS_CONNECTION"].split(":")
    assert published(services["redis"])[6379] == f"{redis_host}:{redis_port}"
    assert published(services["airflow-api-server"])[8080] == "127.0.0.1:8080"
    dvc_config = (project / ".dvc" / "config").read_text()
    if "endpointurl" in dvc_config:  # an S3 endpoint answered at bake time: the stack's MinIO
        endpoint = re.search(r"endpointurl = (\S+)", dvc_config).group(1)
        assert urlparse(endpoint).port == s3.port
    bucket = VARIANTS[name].answers.get("s3_bucket", "churn-model-dvc")
    assert active["S3_BUCKET"] == bucket
    assert f"s3://{bucket}/" in dvc_config


@pytest.mark.parametrize("name", list(VARIANTS))
def test_compose_reads_every_secret_from_env_example_keys(
    baked: dict[str, Path], name: str
) -> None:
    text = (baked[name] / "docker-compose.yml").read_text()
    active, _ = env_example(baked[name])
    used = {m.group(1) for m in INTERPOLATION.finditer(text)}
    assert used, "the stack takes its settings from .env"
    assert used <= set(active), f"not in .env.example: {sorted(used - set(active))}"
    for var in (
        "MINIO_ROOT_PASSWORD",
        "POSTGRES_PASSWORD",
        "AIRFLOW_DB_PASSWORD",
        "MLFLOW_DB_PASSWORD",
        "AIRFLOW_JWT_SECRET",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert var in used
        assert active[var] == "" or active[var].startswith("change-me"), "placeholders only"


def test_airflow_and_mlflow_use_the_same_configuration_keys_as_the_project(
    baked: dict[str, Path],
) -> None:
    project = baked["default"]
    stack = compose(project)
    services = stack["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(
            "postgresql+psycopg2://airflow:"
        )
        assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        assert env["FEAST_REDIS_CONNECTION"] == "redis:6379"
        assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            assert key in env
        assert ".:/opt/project" in services[name]["volumes"]
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/project/dags"
    commands = {services[n]["command"][0] for n in AIRFLOW_SERVICES}
    assert commands == {"db", "api-server", "scheduler", "dag-processor"}

    databases = stack["configs"]["postgres_databases"]["content"]
    assert "CREATE DATABASE airflow" in databases and "CREATE DATABASE mlflow" in databases
    mlflow = services["mlflow"]
    backend = mlflow["command"][mlflow["command"].index("--backend-store-uri") + 1]
    assert backend.startswith("postgresql+psycopg2://mlflow:") and backend.endswith(
        "@postgres:5432/mlflow"
    )
    assert "--serve-artifacts" in mlflow["command"]
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    # Inside the stack, DVC's default remote is the project's `s3` remote, at MinIO.
    dvc_local = stack["configs"]["dvc_config_local"]["content"]
    assert "remote = s3" in dvc_local and "endpointurl = http://minio:9000" in dvc_local
    assert "['remote \"s3\"']" in (project / ".dvc" / "config").read_text()


def test_stack_image_matches_the_lock(baked: dict[str, Path]) -> None:
    project = baked["default"]
    dockerfile = (project / "Dockerfile").read_text()
    assert f"ARG AIRFLOW_VERSION={lock_version(project, 'apache-airflow')}" in dockerfile
    python = (project / ".python-version").read_text().strip()
    assert f"ARG PYTHON_VERSION={python}" in dockerfile
    assert "--constraint /opt/project/requirements.lock" in dockerfile
    ignored = (project / ".dockerignore").read_text().splitlines()
    assert "*" in ignored, "the build context is only what the image copies"


def test_docs_say_the_stack_is_not_tested(baked: dict[str, Path]) -> None:
    page = (baked["default"] / "docs" / "local-stack.md").read_text()
    assert "not exercised by the test suite" in page
    assert "docs/local-stack.md" in (baked["default"] / "README.md").read_text()


def test_pre_commit_runs_the_ci_linters_at_the_locked_versions(baked: dict[str, Path]) -> None:
    project = baked["default"]
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    hooks = {
        repo["repo"]: (repo["rev"], {h["id"] for h in repo["hooks"]}) for repo in config["repos"]
    }
    ruff_rev, ruff_hooks = hooks["https://github.com/astral-sh/ruff-pre-commit"]
    assert ruff_hooks == {"ruff-check", "ruff-format"}
    assert ruff_rev == f"v{lock_version(project, 'ruff')}"
    assert "check-yaml" in hooks["https://github.com/pre-commit/pre-commit-hooks"][1]
    schema_rev, schema_hooks = hooks["https://github.com/python-jsonschema/check-jsonschema"]
    assert schema_hooks == {"check-github-workflows"}
    assert schema_rev == lock_version(project, "check-jsonschema")
    dvc_rev, dvc_hooks = hooks["https://github.com/iterative/dvc"]
    assert dvc_hooks == {"dvc-pre-commit", "dvc-pre-push", "dvc-post-checkout"}
    assert dvc_rev == lock_version(project, "dvc")
