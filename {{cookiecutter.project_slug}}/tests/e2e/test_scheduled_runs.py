"""The continuous-training DAG under a real scheduler, each task in a workspace of its own.

A copy of this project pushes to a bucket on `moto_server`; backfills run on Airflow's
own components (API server, DAG processor, scheduler):

- LocalExecutor (parallelism 4), a backfill of two data intervals: the two runs, and a
  run's independent stages (`training_set` and `materialize`), run at the same time;
  `materialize` and `promote` of the two runs take turns;
- CeleryExecutor (Redis broker), one interval: two `airflow celery worker` processes,
  each with its own clone of the project (the repository of record is a bare clone
  both fetch from and commit to). The run's tasks run on both workers; then one worker
  is killed in the middle of a task, and that task's retry runs on the other.

Every run succeeds; each run's commit on the runs branch restores exactly that run
(`git checkout <commit> && dvc pull`, then `dvc status` finds nothing to do); the
checkouts stay clean; the model registry holds one version per promote that ran.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_helpers import (
    AWS_TEST_CREDENTIALS,
    airflow_env,
    bucket_keys,
    create_bucket,
    moto_server,
)
from airflow_ui import UiView, look_at_the_ui
from conftest import PROJECT_ROOT
from pipeline_helpers import dvc, generated_copy, run
from pipeline_helpers import env as pipeline_env
from tools.airflow_cluster import Worker, airflow_cluster, backfill, overlap

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]
DAG_ID = "continuous_training"
MODEL = "{{ cookiecutter.project_slug }}"
BUCKET = "scheduled-runs"
# A backfill's runs: at 00:00 on each day, for the window ending the day before.
FROM_DATE, TO_DATE = "2026-04-02", "2026-04-03"
END_DATES = {FROM_DATE: "2026-04-01", TO_DATE: "2026-04-02"}
BRANCH = "pipeline-runs"
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


@dataclass
class Scheduled:
    executor: str
    end_dates: set[str]  # of the runs the backfill made
    project: Path
    repo: Path  # the repository of record the runs are committed to
    runs: list[dict[str, Any]]
    tasks: dict[str, dict[str, dict[str, Any]]]  # run id -> task id -> task instance
    seconds: float
    head_before: str
    ui: UiView
    import_errors: int
    clean: dict[str, str] = field(default_factory=dict)  # checkout -> `git status`
    killed: dict[str, Any] | None = None  # the task instance running when its worker died
    bucket: set[str] = field(default_factory=set)


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        create_bucket(url, BUCKET)
        yield url


def s3_project(dest: Path, endpoint: str, prefix: str) -> Path:
    project = generated_copy(dest)
    dvc(project, "remote", "modify", "s3", "url", f"s3://{BUCKET}/{prefix}")
    dvc(project, "remote", "modify", "s3", "endpointurl", endpoint)
    dvc(project, "remote", "default", "s3")
    run([*GIT, "commit", "--quiet", "--all", "-m", "DVC remote: S3 on moto_server"], project)
    # as docs/data.md says after `dataset init`: the table a .dvc file tracks goes to the
    # remote, where workers without this checkout's cache find it
    dvc(project, "push", extra_env=AWS_TEST_CREDENTIALS)
    return project


def connections() -> dict[str, str]:
    connection = {
        "conn_type": "aws",
        "login": AWS_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "password": AWS_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "extra": {"region_name": AWS_TEST_CREDENTIALS["AWS_DEFAULT_REGION"]},
    }
    return {"AIRFLOW_CONN_DVC_S3": json.dumps(connection)}


def status(checkout: Path) -> str:
    return run(["git", "status", "--porcelain", "--untracked-files=all"], checkout).stdout


ARTIFACTS = PROJECT_ROOT / "reports" / "test-artifacts" / "airflow-ui-scheduled"  # git-ignored
# `[core] hostname_callable` for the test's workers: each names itself in the hostname
# its task instances record (both run on this machine)
WORKER_IDENTITY = Path(__file__).resolve().parent / "worker_identity"


def backfill_on(
    executor: str,
    to_date: str,
    request: pytest.FixtureRequest,
    moto: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Scheduled:
    root = tmp_path_factory.mktemp(executor.lower())
    logs = root / "logs"
    logs.mkdir()
    project = s3_project(root / "project", moto, executor.lower())
    head = run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    extra = {
        **connections(),
        "PIPELINE_TASK_RETRIES": "1",
        "PIPELINE_RETRY_DELAY_SECONDS": "2",
        "PIPELINE_WORKSPACE_DIR": str(root / "workspaces"),
    }
    workers: list[Worker] = []
    repo = project
    if executor == "CeleryExecutor":
        redis = request.getfixturevalue("redis_server")
        repo = root / "origin.git"
        run(["git", "clone", "--quiet", "--bare", str(project), str(repo)], root)
        for name in ("w1", "w2"):
            clone = root / name / "project"
            run(["git", "clone", "--quiet", str(repo), str(clone)], root)
            workers.append(Worker(name, clone))
        extra.update(
            PIPELINE_GIT_REPO=str(repo),
            PIPELINE_STATE_DIR=str(project),  # one MLflow store and Feast registry for both
            AIRFLOW__CELERY__BROKER_URL=f"redis://{redis}/14",
            AIRFLOW__CELERY__RESULT_BACKEND=f"redis://{redis}/15",
        )
    else:
        extra["AIRFLOW__CORE__PARALLELISM"] = "4"
    killed: dict[str, Any] | None = None
    started = time.monotonic()
    home = root / "airflow_home"
    base = airflow_env(home, project / "dags")
    with airflow_cluster(home, project, executor, logs, base, **extra) as cluster:
        cluster.workers = workers
        for worker in workers:
            cluster.start_worker(
                worker,
                logs,
                AIRFLOW__CORE__HOSTNAME_CALLABLE="worker_identity.hostname",
                TEST_WORKER_NAME=worker.name,
                PYTHONPATH=str(WORKER_IDENTITY),
            )
        backfill(cluster, DAG_ID, FROM_DATE, to_date, max_runs=2)

        def kill_a_worker_mid_task(runs: list[dict[str, Any]]) -> None:
            nonlocal killed
            if not workers or killed is not None:
                return
            instances = [
                ti for r in runs for ti in cluster.task_instances(DAG_ID, r["dag_run_id"]).values()
            ]
            succeeded = [ti for ti in instances if ti["state"] == "success"]
            done_on = {str(ti["hostname"]).split(".")[0] for ti in succeeded}
            # after the branches that must overlap, so their times are those of one try
            pair_done = {"training_set", "materialize"} <= {ti["task_id"] for ti in succeeded}
            running = [ti for ti in instances if ti["state"] == "running" and ti["hostname"]]
            victims = [ti for ti in running if ti["hostname"].startswith("w1.")]
            if {"w1", "w2"} <= done_on and pair_done and victims:
                killed = victims[0]
                cluster.kill_worker(workers[0])

        end_dates = {d for day, d in END_DATES.items() if day <= to_date}
        runs = cluster.wait_for_runs(
            DAG_ID, len(end_dates), timeout=1500, on_poll=kill_a_worker_mid_task
        )
        tasks = {r["dag_run_id"]: cluster.task_instances(DAG_ID, r["dag_run_id"]) for r in runs}
        seconds = time.monotonic() - started
        if any(r["state"] != "success" for r in runs):
            states = [(r["dag_run_id"], r["state"]) for r in runs]
            pytest.fail(f"{executor}: runs {states}; logs in {logs}")
        import_errors = cluster.api("GET", "/importErrors")["total_entries"]
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        ui = look_at_the_ui(
            cluster.base_url,
            password["admin"],
            request.getfixturevalue("chromium"),
            DAG_ID,
            [*stage_names(), "commit_run"],
            ARTIFACTS / executor,
            run_id=runs[0]["dag_run_id"],
            run_states={"validate_features": "Success", "commit_run": "Success"},
        )
    result = Scheduled(
        executor,
        end_dates,
        project,
        repo,
        runs,
        tasks,
        seconds,
        head,
        ui,
        import_errors,
        killed=killed,
    )
    result.clean = {str(c): status(c) for c in [project, *(w.project for w in workers)]}
    result.bucket = bucket_keys(moto, BUCKET)
    return result


@pytest.fixture(scope="module")
def local_executor_runs(
    request: pytest.FixtureRequest,
    online_store: None,
    moto: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Scheduled:
    return backfill_on("LocalExecutor", TO_DATE, request, moto, tmp_path_factory)


@pytest.fixture(scope="module")
def celery_executor_runs(
    request: pytest.FixtureRequest,
    online_store: None,
    moto: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Scheduled:
    return backfill_on("CeleryExecutor", FROM_DATE, request, moto, tmp_path_factory)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("local_executor_runs", marks=pytest.mark.local_executor),
        pytest.param("celery_executor_runs", marks=pytest.mark.celery),
    ],
)
def scheduled(request: pytest.FixtureRequest) -> Scheduled:
    return request.getfixturevalue(request.param)


def stage_names() -> list[str]:
    return list(yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"])


def run_commits(repo: Path) -> dict[str, str]:
    """end_date -> the commit of the run on the runs branch."""
    log = run(["git", "log", "--format=%H %s", BRANCH], repo).stdout.splitlines()
    found = {}
    for line in log:
        commit, subject = line.split(" ", 1)
        if subject.startswith(f"{DAG_ID}: end_date="):
            found[subject.split("end_date=")[1].split()[0]] = commit
    return found


def test_every_run_succeeds(scheduled: Scheduled, capsys) -> None:
    with capsys.disabled():
        print(
            f"\n[{scheduled.executor}] backfill of {len(scheduled.runs)} interval(s): "
            f"{scheduled.seconds:.0f} s"
        )
    assert len(scheduled.runs) == len(scheduled.end_dates)
    for run_id, tasks in scheduled.tasks.items():
        states = {t: ti["state"] for t, ti in tasks.items()}
        stages = [s for s in stage_names() if states[s] != "success"]
        assert stages == [], f"{run_id}: {states}"


@pytest.mark.local_executor
def test_a_backfill_runs_its_intervals_at_the_same_time(local_executor_runs: Scheduled) -> None:
    first, second = local_executor_runs.runs
    assert overlap(first, second), "the backfill's two runs ran concurrently"


def test_independent_stages_of_a_run_overlap(scheduled: Scheduled) -> None:
    pairs = [(tasks["training_set"], tasks["materialize"]) for tasks in scheduled.tasks.values()]
    assert any(overlap(a, b) for a, b in pairs), [
        (a["start_date"], a["end_date"], b["start_date"], b["end_date"]) for a, b in pairs
    ]


@pytest.mark.local_executor
def test_shared_state_stages_take_turns_across_runs(local_executor_runs: Scheduled) -> None:
    for stage in ("materialize", "promote"):
        first, second = (tasks[stage] for tasks in local_executor_runs.tasks.values())
        assert not overlap(first, second), f"{stage} of the two runs ran at the same time"


def test_each_run_commit_restores_exactly_that_run(scheduled: Scheduled, tmp_path: Path) -> None:
    commits = run_commits(scheduled.repo)
    assert set(commits) == scheduled.end_dates, commits
    clone = tmp_path / "clone"
    run(["git", "clone", "--quiet", str(scheduled.repo), str(clone)], tmp_path)
    env = {**pipeline_env(), **AWS_TEST_CREDENTIALS}
    for end_date, commit in sorted(commits.items()):
        run(["git", "checkout", "--quiet", "--force", commit], clone)
        interval = yaml.safe_load((clone / "interval.yaml").read_text())
        assert interval == {"end_date": end_date}
        for args in (["dvc", "pull", "--force"], ["dvc", "status"]):
            done = subprocess.run(
                args, cwd=clone, env=env, capture_output=True, text=True, timeout=300, check=False
            )
            assert done.returncode == 0, done.stdout + done.stderr
        assert "Data and pipelines are up to date." in done.stdout, f"{end_date}: {done.stdout}"
        lock = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
        assert lock["ingest"]["params"]["interval.yaml"] == {"end_date": end_date}
        assert json.loads((clone / "reports" / "promotion.json").read_text())["decision"]


def test_no_run_changes_a_checkout(scheduled: Scheduled) -> None:
    assert scheduled.clean == dict.fromkeys(scheduled.clean, ""), scheduled.clean
    assert run(["git", "rev-parse", "HEAD"], scheduled.project).stdout.strip() == (
        scheduled.head_before
    )
    if scheduled.repo != scheduled.project:
        branches = run(["git", "branch", "--list", BRANCH], scheduled.project).stdout
        assert branches == "", "runs commit to the repository of record only"


def test_the_registry_holds_one_version_per_promote(scheduled: Scheduled) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{scheduled.project / 'mlflow.db'}")
    versions = client.search_model_versions(f"name='{MODEL}'")
    end_dates = sorted(v.tags["data.end_date"] for v in versions)
    assert end_dates == sorted(scheduled.end_dates), end_dates


@pytest.mark.celery
def test_celery_runs_tasks_on_both_workers_and_survives_one_dying(
    celery_executor_runs: Scheduled,
) -> None:
    scheduled = celery_executor_runs
    (tasks,) = scheduled.tasks.values()
    hosts = {str(ti["hostname"]).split(".")[0] for ti in tasks.values() if ti["hostname"]}
    assert hosts == {"w1", "w2"}, "the run's tasks ran on both workers"
    killed = scheduled.killed
    assert killed is not None, "a worker was killed while running a task"
    retried = scheduled.tasks[killed["dag_run_id"]][killed["task_id"]]
    assert retried["state"] == "success"
    assert retried["try_number"] >= 2, retried
    assert retried["hostname"].startswith("w2."), retried


def test_the_ui_shows_the_run_its_tasks_and_their_docs(scheduled: Scheduled) -> None:
    """Screenshots: reports/test-artifacts/airflow-ui-scheduled/<executor>/."""
    every = {*stage_names(), "commit_run"}
    assert scheduled.import_errors == 0
    assert scheduled.ui.dag_list == {DAG_ID}
    assert scheduled.ui.grid_tasks == scheduled.ui.graph_nodes == every
    assert scheduled.ui.run_states == {"validate_features": "Success", "commit_run": "Success"}
    assert "in a workspace of its own" in scheduled.ui.stage_docs
