"""A real Airflow deployment on this machine, for the scheduled-run tests and
`make airflow-bench`: API server, DAG processor and scheduler (and, for the
CeleryExecutor, Celery workers), each its own process on 127.0.0.1, sharing one SQLite
metadata database. Task instances and runs are read back through the REST API.

This is the template's tooling: the package never imports it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .local_servers import free_port

BIN = Path(sys.executable).parent


def wait_for(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers 2xx; fail after `timeout` seconds or if `proc` exits."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 300:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s (last error: {last})")


def stop(proc: subprocess.Popen, timeout: float = 20, signal: int = 15) -> None:
    """Stop a server started with start_new_session=True, with its children."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=timeout)


@dataclass
class Worker:
    name: str
    project: Path  # its own clone of the project
    proc: subprocess.Popen | None = None


@dataclass
class Cluster:
    home: Path
    project: Path
    base_url: str
    env: dict[str, str]
    executor: str
    workers: list[Worker] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)
    _token: str | None = None

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        if self._token is None:
            passwords = self.home / "simple_auth_manager_passwords.json.generated"
            password = json.loads(passwords.read_text())["admin"]
            answer = httpx.post(
                f"{self.base_url}/auth/token",
                json={"username": "admin", "password": password},
                timeout=30,
            )
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        answer = httpx.request(
            method,
            f"{self.base_url}/api/v2{path}",
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=60,
            **kwargs,
        )
        answer.raise_for_status()
        return answer.json()

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        found = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in found["task_instances"]}

    def wait_for_runs(
        self, dag_id: str, count: int, timeout: float, on_poll: Any = None
    ) -> list[dict[str, Any]]:
        """Wait until `count` runs of `dag_id` have ended; returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise AssertionError(f"{proc.args} exited with {proc.returncode}")
            runs = self.runs(dag_id)
            if on_poll is not None:
                on_poll(runs)
            ended = [r for r in runs if r["state"] in ("success", "failed")]
            if len(ended) >= count:
                return ended
            time.sleep(2)
        states = {r["dag_run_id"]: r["state"] for r in self.runs(dag_id)}
        raise AssertionError(
            f"{count} runs of {dag_id} did not end within {timeout:.0f} s: {states}"
        )

    def start_worker(self, worker: Worker, logs: Path, **extra_env: str) -> None:
        """`airflow celery worker` (concurrency 2) on `worker.project`'s dags/, with its
        own workspaces folder and `extra_env`."""
        env = {
            **self.env,
            "AIRFLOW__CORE__DAGS_FOLDER": str(worker.project / "dags"),
            "PIPELINE_WORKSPACE_DIR": str(worker.project.parent / f"{worker.name}-workspaces"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            **extra_env,
        }
        out = (logs / f"worker-{worker.name}.log").open("w")
        worker.proc = subprocess.Popen(
            [
                str(BIN / "airflow"),
                "celery",
                "worker",
                "--concurrency",
                "2",
                "--celery-hostname",
                f"{worker.name}@%h",
                "--skip-serve-logs",
            ],
            cwd=worker.project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(worker.proc)

    def kill_worker(self, worker: Worker) -> None:
        """SIGKILL the worker with everything it started (its task and the task's dvc)."""
        assert worker.proc is not None
        self.procs.remove(worker.proc)
        stop(worker.proc, timeout=5, signal=9)


@contextlib.contextmanager
def airflow_cluster(
    home: Path,
    project: Path,
    executor: str,
    logs: Path,
    base_env: Mapping[str, str],
    **extra_env: str,
) -> Iterator[Cluster]:
    """API server, DAG processor and scheduler (and nothing else: Celery workers are
    started with Cluster.start_worker) for the DAGs of `project`, on an SQLite metadata
    DB in `home`; `base_env` is the environment they start from (PROJECT_VENV in it)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = dict(
        AIRFLOW__CORE__EXECUTOR=executor,
        AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{base_url}/execution/",
        AIRFLOW__API__BASE_URL=base_url,
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API_AUTH__JWT_SECRET="scheduled-runs-test-secret-not-for-production",
        # a killed worker's task is failed (and retried) after 40 s without heartbeats;
        # much less fails live tasks whose start-up is slow on a loaded machine
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="40",
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="10",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        # only the runs a test asks for (backfills, triggers): no daily run of today
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
    )
    env = {
        **{k: v for k, v in base_env.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        **settings,
        **extra_env,
    }
    for args in (["db", "migrate"], ["dags", "reserialize"]):
        airflow(args, env, project)
    cluster = Cluster(home, project, base_url, env, executor)
    commands = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port)],
        "dag-processor": ["dag-processor"],
        "scheduler": ["scheduler", "--skip-serve-logs"],
    }
    outs = []
    try:
        for name, args in commands.items():
            out = (logs / f"{name}.log").open("w")
            outs.append(out)
            cluster.procs.append(
                subprocess.Popen(
                    [str(BIN / "airflow"), *args],
                    cwd=project,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            if name == "api-server":
                wait_for(f"{base_url}/api/v2/monitor/health", timeout=120, proc=cluster.procs[-1])
        yield cluster
    finally:
        for worker in cluster.workers:
            if worker.proc is not None:
                stop(worker.proc)
        for proc in reversed(cluster.procs):
            stop(proc)
        for out in outs:
            out.close()


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two task instances (or runs) were running at the same time."""
    return parse_time(a["start_date"]) < parse_time(b["end_date"]) and parse_time(
        b["start_date"]
    ) < parse_time(a["end_date"])


def airflow(args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 600) -> str:
    """`airflow <args>`; its output, or RuntimeError with it when it fails."""
    done = subprocess.run(
        [str(BIN / "airflow"), *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def backfill(cluster: Cluster, dag_id: str, from_date: str, to_date: str, max_runs: int) -> None:
    """Un-pause `dag_id` and backfill its runs from `from_date` to `to_date`."""
    airflow(["dags", "unpause", dag_id], cluster.env, cluster.project)
    airflow(
        [
            "backfill",
            "create",
            "--dag-id",
            dag_id,
            "--from-date",
            from_date,
            "--to-date",
            to_date,
            "--max-active-runs",
            str(max_runs),
        ],
        cluster.env,
        cluster.project,
    )
