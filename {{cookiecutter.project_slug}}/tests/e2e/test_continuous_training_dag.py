"""The continuous-training DAG end to end, under Airflow, against an S3 remote.

A copy of this project pushes to a bucket on `moto_server` (a real S3 protocol
endpoint on 127.0.0.1), reached through a proxy the test can take down. Two
`airflow dags test` runs, one per data interval, each task in a workspace of its own:

1. the first interval: every stage runs, the first model becomes champion, and the
   run is committed on the runs branch. The S3 endpoint goes down while `ingest`
   runs: its push fails with a clear message, the endpoint returns, the task's retry
   succeeds; then a fresh clone of that commit + `dvc pull` restores every output;
2. an interval whose batch fails the raw gate: the run fails, nothing is committed.

And the Airflow API server and UI (headless Chromium) show the DAGs, runs and docs.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.features import FEATURE_SERVICE

from airflow_helpers import (
    AWS_TEST_CREDENTIALS,
    BIN,
    TcpProxy,
    WebhookReceiver,
    airflow,
    airflow_env,
    bucket_keys,
    create_bucket,
    dags_test,
    free_port,
    moto_server,
    stop,
    wait_for,
)
from airflow_ui import look_at_the_ui
from conftest import PROJECT_ROOT
from pipeline_helpers import dvc, edit_params, generated_copy, run
from pipeline_helpers import env as pipeline_env

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]
DAG_ID = "continuous_training"
MODEL = "{{ cookiecutter.project_slug }}"
BUCKET = "ct-e2e"
# A run for date D ingests the window ending D - 1 (the last complete day).
FIRST, REJECTED = "2026-04-02", "2026-04-04"
PUSH_FAILED = "Pushing to the DVC remote"
BRANCH = "pipeline-runs"
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


@dataclass
class Snapshot:
    head: str
    tip: str | None  # of the runs branch
    champion: str | None
    keys: set[str]
    status: str  # `git status --porcelain`: files the run left modified or untracked


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    before: Snapshot
    after: Snapshot
    messages: list[str]  # what the run sent to the webhook

    def ran(self, stage: str) -> bool:
        return f"Running stage '{stage}'" in self.output


@dataclass
class Scenario:
    project: Path
    first: Run
    push_failures: int
    rejected: Run
    pulled: str  # `dvc status` in a fresh clone of the first run's commit after `dvc pull`
    clone: Path


@dataclass
class Remote:
    moto: str
    proxy: TcpProxy


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        create_bucket(url, BUCKET)
        proxy = TcpProxy(int(url.rsplit(":", 1)[1]))
        proxy.up()
        try:
            yield Remote(url, proxy)
        finally:
            proxy.down()


@pytest.fixture(scope="module")
def project(online_store: None, tmp_path_factory: pytest.TempPathFactory, remote: Remote) -> Path:
    """A git + DVC copy of this project whose default DVC remote is the test bucket."""
    project = generated_copy(tmp_path_factory.mktemp("ct") / "project")
    dvc(project, "remote", "modify", "s3", "url", f"s3://{BUCKET}/{MODEL}")
    dvc(project, "remote", "modify", "s3", "endpointurl", remote.proxy.url)
    dvc(project, "remote", "default", "s3")
    run([*GIT, "commit", "--quiet", "--all", "-m", "DVC remote: S3 on moto_server"], project)
    return project


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory, project: Path) -> Path:
    home = tmp_path_factory.mktemp("airflow_home")
    done = airflow(["db", "migrate"], airflow_env(home, project / "dags"), project)
    assert done.returncode == 0, done.stdout + done.stderr
    return home


def champion(project: Path) -> str | None:
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    try:
        return str(client.get_model_version_by_alias(MODEL, "champion").version)
    except MlflowException:
        return None


def snapshot(project: Path, remote: Remote) -> Snapshot:
    head = run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    tip = run(["git", "rev-parse", "--verify", "--quiet", BRANCH], project, check=False)
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], project).stdout
    keys = bucket_keys(remote.moto, BUCKET)
    return Snapshot(head, tip.stdout.strip() or None, champion(project), keys, status)


@pytest.fixture(scope="module")
def scenario(
    tmp_path_factory: pytest.TempPathFactory, project: Path, remote: Remote, airflow_home: Path
) -> Scenario:
    # S3 credentials reach the push task only through an Airflow connection.
    connection = {
        "conn_type": "aws",
        "login": AWS_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "password": AWS_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "extra": {"region_name": AWS_TEST_CREDENTIALS["AWS_DEFAULT_REGION"]},
    }
    webhook = WebhookReceiver()
    env = airflow_env(
        airflow_home,
        project / "dags",
        AIRFLOW_CONN_DVC_S3=json.dumps(connection),
        AIRFLOW_CONN_PIPELINE_WEBHOOK=json.dumps({"conn_type": "http", "host": webhook.url}),
        PIPELINE_TASK_RETRIES="1",
        PIPELINE_RETRY_DELAY_SECONDS="3",
    )

    def dag_run(day: str, on_line=None, **extra: str) -> Run:
        before, sent = snapshot(project, remote), len(webhook.bodies)
        code, output, seconds = dags_test(DAG_ID, day, {**env, **extra}, project, on_line)
        after = snapshot(project, remote)
        return Run(code, output, seconds, before, after, webhook.texts()[sent:])

    failures = 0
    went_down = False

    def endpoint_down_while_ingest_runs(line: str) -> None:
        nonlocal failures, went_down
        if not went_down and "Running stage 'ingest'" in line:
            went_down = True
            remote.proxy.down()  # before the stage ends and its push starts
        if PUSH_FAILED in line:
            failures += 1
            remote.proxy.up()  # before the retry delay (3 s) runs out

    first = dag_run(FIRST, endpoint_down_while_ingest_runs)
    remote.proxy.up()
    if first.returncode != 0:
        pytest.fail(f"the first DAG run failed:\n{first.output[-6000:]}")

    clone = tmp_path_factory.mktemp("clone") / "project"
    run(["git", "clone", "--quiet", "--branch", BRANCH, str(project), str(clone)], project)
    stage_env = {**pipeline_env(), **AWS_TEST_CREDENTIALS}
    for args in (["dvc", "pull"], ["dvc", "status"]):
        pulled = subprocess.run(
            args, cwd=clone, env=stage_env, capture_output=True, text=True, check=False, timeout=300
        )
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr

    # a short delivery: fewer rows than validate_raw.min_rows_per_day
    edit_params(project, lambda p: p["ingest"]["synthetic"].update({"rows_per_day": 20}))
    run([*GIT, "commit", "--quiet", "--all", "-m", "a short delivery"], project)
    rejected = dag_run(REJECTED, PIPELINE_TASK_RETRIES="1")  # a failed gate is not retried
    webhook.close()
    return Scenario(project, first, failures, rejected, pulled.stdout, clone)


def tries(run: Run, task_id: str) -> int:
    """How often `airflow dags test` started the task in that run (a retry starts it again)."""
    return run.output.count(f"[DAG TEST] starting task_id={task_id} map_index=")


def stage_names(project: Path) -> list[str]:
    return list(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])


def version_tags(project: Path, version: str) -> dict[str, str]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    return client.get_model_version(MODEL, version).tags


def committed_report(project: Path, commit: str) -> dict:
    shown = run(["git", "show", f"{commit}:reports/promotion.json"], project).stdout
    return json.loads(shown)


def test_first_run_runs_every_stage_pushes_and_commits(scenario: Scenario, capsys) -> None:
    first, project = scenario.first, scenario.project
    with capsys.disabled():
        print(
            f"\n[continuous_training] full run (a push retried) {first.seconds:.0f} s, "
            f"rejected batch {scenario.rejected.seconds:.0f} s"
        )
    assert [s for s in stage_names(project) if not first.ran(s)] == []
    assert first.before.keys == set() and first.after.keys, "the run pushed to the bucket"
    assert first.before.tip is None and first.after.tip, "the run is a commit on the runs branch"
    assert first.after.head == first.before.head, "the checkout's HEAD stays"
    assert first.after.status == "", f"the run left files modified:\n{first.after.status}"
    commit = first.after.tip
    message = run(["git", "log", "-1", "--format=%s", commit], project).stdout
    assert message.startswith("continuous_training: end_date=2026-04-01 ")
    parents = run(["git", "log", "-1", "--format=%P", commit], project).stdout.split()
    assert parents == [first.before.head], "the run's commit grows from the code it ran"
    committed = run(["git", "show", f"{commit}:interval.yaml"], project).stdout
    assert yaml.safe_load(committed) == {"end_date": "2026-04-01"}
    assert committed.startswith("#"), "interval.yaml keeps its header comment"
    lock = run(["git", "show", f"{commit}:dvc.lock"], project).stdout
    assert yaml.safe_load(lock)["stages"]["ingest"]["params"]["interval.yaml"] == {
        "end_date": "2026-04-01"
    }
    assert set(yaml.safe_load(lock)["stages"]) == set(stage_names(project))
    tracked = run(["git", "ls-tree", "-r", "--name-only", commit, "reports"], project)
    assert {"reports/metrics.json", "reports/promotion.json"} <= set(tracked.stdout.split())
    assert "S3 credentials from the Airflow connection 'dvc_s3'" in first.output
    assert first.messages == [], "a promoted first model and no failure: nothing to tell"


def test_first_model_becomes_champion_with_lineage_tags(scenario: Scenario) -> None:
    first, project = scenario.first, scenario.project
    assert (first.before.champion, first.after.champion) == (None, "1")
    report = committed_report(project, first.after.tip)
    assert report["decision"] == "promoted"
    assert report["champion_before"] is None
    tags = version_tags(project, "1")
    assert tags["feature_service"] == FEATURE_SERVICE
    assert tags["git_commit"] == first.before.head  # the commit the run started from
    assert tags["dvc.data/training/training_set.parquet"]
    assert tags["data.end_date"] == "2026-04-01"
    assert tags["promotion.decision"] == "promoted"
    assert any(key.startswith("gate.minimum.") for key in tags)


def test_push_fails_clearly_while_s3_is_down_then_the_retry_succeeds(scenario: Scenario) -> None:
    first = scenario.first
    assert scenario.push_failures >= 1, "the push must have failed while the endpoint was down"
    assert "Could not connect to the endpoint URL" in first.output
    assert f"Pushing to the DVC remote 's3' (s3://{BUCKET}/{MODEL}" in first.output
    assert "the workspace of stage ingest is kept for a look" in first.output
    assert first.returncode == 0, "the retry pushed once the endpoint was back"
    assert tries(first, "ingest") == 2
    assert tries(first, "train") == 1


def test_a_fresh_clone_of_the_run_commit_pulls_every_output(scenario: Scenario) -> None:
    assert "Data and pipelines are up to date." in scenario.pulled, scenario.pulled
    assert (scenario.clone / "models").is_dir()
    assert any((scenario.clone / "data" / "raw").iterdir())


def test_a_batch_failing_its_gate_fails_the_run_and_commits_nothing(scenario: Scenario) -> None:
    rejected = scenario.rejected
    assert rejected.returncode != 0
    assert "gate 'raw' FAILED" in rejected.output
    assert rejected.ran("ingest") and rejected.ran("validate_raw")
    assert not rejected.ran("featurize") and not rejected.ran("train")
    assert rejected.after.champion == rejected.before.champion
    assert rejected.after.tip == rejected.before.tip, "nothing was committed"
    assert rejected.after.head == rejected.before.head
    assert rejected.after.status == "", rejected.after.status
    assert tries(rejected, "validate_raw") == 1, "a failed gate is not retried"
    assert len(rejected.messages) == 1, rejected.messages
    message = rejected.messages[0]
    assert "task validate_raw failed: gate 'raw' rejected the data (no retry)" in message
    assert "FAILED   batch 2026-" in message, "the message names the rejected days"


ARTIFACTS = PROJECT_ROOT / "reports" / "test-artifacts" / "airflow-ui"  # git-ignored


def test_api_server_and_ui_show_the_dags_their_runs_and_docs(
    scenario: Scenario, airflow_home: Path, tmp_path: Path, chromium: str
) -> None:
    """The REST API lists the DAGs with no import errors; headless Chromium logs in through
    the real login page and finds the DAG list, the graph, each run's task states and a
    stage's docs. Screenshots: reports/test-artifacts/airflow-ui/."""
    import httpx

    project = scenario.project
    env = airflow_env(airflow_home, project / "dags")
    done = airflow(["dags", "reserialize"], env, project)
    assert done.returncode == 0, done.stdout + done.stderr
    port = free_port()
    log = (tmp_path / "api-server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    stages = stage_names(project)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        wait_for(f"{base}/api/v2/monitor/health", timeout=120, proc=server)
        passwords = airflow_home / "simple_auth_manager_passwords.json.generated"
        password = json.loads(passwords.read_text())["admin"]
        token = httpx.post(
            f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30
        )
        assert token.status_code in (200, 201), token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        dags = httpx.get(f"{base}/api/v2/dags", headers=headers, timeout=30).json()
        listed = {d["dag_id"]: d for d in dags["dags"]}
        assert {DAG_ID, "drift_monitoring"} <= set(listed)
        assert {t["name"] for t in listed[DAG_ID]["tags"]} >= {"continuous-training", "dvc"}
        errors = httpx.get(f"{base}/api/v2/importErrors", headers=headers, timeout=30).json()
        assert errors["total_entries"] == 0, errors
        runs = httpx.get(f"{base}/api/v2/dags/{DAG_ID}/dagRuns", headers=headers, timeout=30)
        by_state = {r["state"]: r["dag_run_id"] for r in runs.json()["dag_runs"]}
        assert set(by_state) == {"success", "failed"}, by_state

        view = look_at_the_ui(
            base,
            password,
            chromium,
            DAG_ID,
            [*stages, "commit_run"],
            ARTIFACTS,
            dags=["drift_monitoring"],
            edges=["ingest-validate_raw", "ingest-monitor"],
            run_id=by_state["failed"],  # the raw gate rejected it: nothing after it ran
            run_states={"validate_raw": "Failed", "featurize": "Upstream Failed"},
        )
    finally:
        stop(server)
        log.close()
    assert view.dag_list == {DAG_ID, "drift_monitoring"}
    assert view.grid_tasks == view.graph_nodes == {*stages, "commit_run"}
    assert view.edges == {"ingest-validate_raw": 1, "ingest-monitor": 0}, "no implied edge"
    assert view.run_states == {"validate_raw": "Failed", "featurize": "Upstream Failed"}
    assert "dvc repro --single-item train" in view.stage_docs
