"""DAG integrity (the files in dags/ as Airflow loads them) and the shared dags/dvc_pipeline.py."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from airflow_helpers import WebhookReceiver
from conftest import PROJECT_ROOT
from pipeline_helpers import env as pipeline_env

DAGS = PROJECT_ROOT / "dags"
STAGE_TASK_EXTRAS = {"start_run", "commit_run", "report_promotion"}
HEAVY = (
    "pandas",
    "numpy",
    "xgboost",
    "mlflow",
    "sklearn",
    "great_expectations",
    "feast",
    "evidently",
    "dvc",
)

# Runs in a fresh interpreter, as Airflow's DAG processor would: the bundle folder on
# sys.path, examples off, a throw-away AIRFLOW_HOME.
LOAD_DAGS = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    dags = Path(sys.argv[1])
    started = time.perf_counter()
    from airflow.dag_processing.dagbag import BundleDagBag
    imported = time.perf_counter()
    bag = BundleDagBag(dag_folder=dags, bundle_path=dags)
    parsed = time.perf_counter()
    print(json.dumps({
        "airflow_import_s": imported - started,
        "parse_s": parsed - imported,
        "files": {Path(s.file).name: s.duration.total_seconds() for s in bag.dagbag_stats},
        "import_errors": {str(k): v for k, v in bag.import_errors.items()},
        "heavy_modules": sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2:]),
        "dags": {
            dag_id: {
                "tags": sorted(dag.tags),
                "doc_md": bool(dag.doc_md),
                "max_active_runs": dag.max_active_runs,
                "max_active_tasks": dag.max_active_tasks,
                "description": dag.description,
                "catchup": dag.catchup,
                "timetable": type(dag.timetable).__name__,
                "assets": [
                    a.name
                    for a in getattr(dag.timetable.asset_condition, "objects", [dag.timetable.asset_condition])
                ] if getattr(dag.timetable, "asset_condition", None) is not None else [],
                "inner": type(getattr(dag.timetable, "timetable", None)).__name__,
                "tasks": {
                    t.task_id: {
                        "upstream": sorted(t.upstream_task_ids),
                        "owner": t.owner,
                        "retries": t.retries,
                        "backoff": t.retry_exponential_backoff,
                        "doc_md": bool(t.doc_md),
                        "trigger_rule": getattr(t.trigger_rule, "value", t.trigger_rule),
                        "max_active_tis_per_dag": t.max_active_tis_per_dag,
                        "on_failure": [
                            type(c).__name__
                            for c in (t.on_failure_callback if isinstance(t.on_failure_callback, list)
                                      else [t.on_failure_callback] if t.on_failure_callback else [])
                        ],
                    }
                    for t in dag.tasks
                },
            }
            for dag_id, dag in bag.dags.items()
        },
    }))
    """
)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = {k: v for k, v in pipeline_env().items() if not k.startswith(("AIRFLOW", "PIPELINE_"))}
    home = tmp_path_factory.mktemp("airflow_home")
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
    )
    done = subprocess.run(
        [sys.executable, "-c", LOAD_DAGS, str(DAGS), *HEAVY],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dvc_graph() -> tuple[list[str], set[tuple[str, str]]]:
    """Stages and (upstream, downstream) edges of dvc.yaml, as DVC itself sees them
    (tables tracked with `dvc add` are data, not tasks: their .dvc files are left out)."""
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    with Repo(str(PROJECT_ROOT), uninitialized=True) as repo:
        stages = [s.name for s in repo.index.stages if isinstance(s, PipelineStage)]
        edges = {
            (up.addressing, down.addressing)
            for down, up in repo.index.graph.edges
            if isinstance(up, PipelineStage) and isinstance(down, PipelineStage)
        }
    return stages, edges


def test_dag_files_import_without_errors(loaded: dict[str, Any], capsys) -> None:
    with capsys.disabled():
        files = ", ".join(
            f"{name} {seconds * 1000:.0f} ms" for name, seconds in loaded["files"].items()
        )
        print(
            f"\n[DAG parse] airflow import {loaded['airflow_import_s']:.1f} s; "
            f"DagBag fill {loaded['parse_s'] * 1000:.0f} ms; per file: {files}"
        )
    assert loaded["import_errors"] == {}
    assert "continuous_training" in loaded["dags"]
    assert "dvc_pipeline.py" not in loaded["files"], ".airflowignore keeps helpers out"


def test_no_heavy_library_is_imported_when_parsing(loaded: dict[str, Any]) -> None:
    assert loaded["heavy_modules"] == []


def test_every_dag_has_tags_docs_and_every_task_an_owner_retries_and_docs(
    loaded: dict[str, Any],
) -> None:
    for dag_id, dag in loaded["dags"].items():
        assert dag["tags"], dag_id
        assert dag["doc_md"], dag_id
        for task_id, task in dag["tasks"].items():
            where = f"{dag_id}.{task_id}"
            assert task["owner"] and task["owner"] != "airflow", where
            assert task["retries"] >= 1, where
            assert task["backoff"] > 1, f"{where}: exponential back-off"
            assert task["doc_md"], where
            assert task["on_failure"] == ["TaskFailureNotifier"], (
                f"{where}: final failures reported"
            )


def test_stage_tasks_are_the_dvc_yaml_stages_with_its_edges(
    loaded: dict[str, Any], dvc_graph: tuple[list[str], set[tuple[str, str]]]
) -> None:
    stages, edges = dvc_graph
    tasks = loaded["dags"]["continuous_training"]["tasks"]
    assert set(tasks) == set(stages) | STAGE_TASK_EXTRAS
    dag_edges = {
        (up, task_id)
        for task_id, task in tasks.items()
        if task_id in stages
        for up in task["upstream"]
        if up in stages
    }
    # only the direct edges (the transitive reduction), which imply every one DVC sees
    import networkx as nx

    reduced = nx.transitive_reduction(nx.DiGraph(edges))
    assert dag_edges == set(reduced.edges)
    assert nx.transitive_closure(nx.DiGraph(dag_edges)).edges == (
        nx.transitive_closure(nx.DiGraph(edges)).edges
    )
    roots = {s for s in stages if not any(down == s for _, down in edges)}
    leaves = {s for s in stages if not any(up == s for up, _ in edges)}
    assert tasks["start_run"]["upstream"] == []
    for stage in stages:
        if stage in roots:
            assert tasks[stage]["upstream"] == ["start_run"], stage
        else:
            assert set(tasks[stage]["upstream"]) <= set(stages), stage
    assert tasks["commit_run"]["upstream"] == sorted(leaves)
    assert tasks["report_promotion"]["upstream"] == ["commit_run"]
    # an up-to-date stage is skipped: what follows it must still run, unless something failed
    assert {task["trigger_rule"] for task in tasks.values()} == {"none_failed"}


def test_continuous_training_schedule_and_concurrency(loaded: dict[str, Any]) -> None:
    dag = loaded["dags"]["continuous_training"]
    assert dag["max_active_runs"] == 3, "every task has a workspace: runs go side by side"
    assert dag["max_active_tasks"] == 4, "... and so do independent stages"
    assert loaded["dags"]["drift_monitoring"]["max_active_runs"] == 3
    assert loaded["dags"]["drift_monitoring"]["max_active_tasks"] > 1
    one_at_a_time = {
        task_id: task["max_active_tis_per_dag"]
        for task_id, task in dag["tasks"].items()
        if task["max_active_tis_per_dag"] is not None
    }
    assert one_at_a_time == {"materialize": 1, "promote": 1}, "they write shared service state"
    assert "00:00 UTC" in dag["description"], "the UI shows the asset; the cron is said here"
    assert "retrain_request" in dag["description"]
    assert dag["timetable"] == "AssetOrTimeSchedule"
    assert dag["inner"] == "CronTriggerTimetable"
    assert dag["assets"] == ["retrain_request"]
    assert dag["catchup"] is False


def test_drift_monitoring_runs_its_stages_between_start_run_and_commit_run(
    loaded: dict[str, Any],
) -> None:
    tasks = loaded["dags"]["drift_monitoring"]["tasks"]
    assert {task_id: task["upstream"] for task_id, task in tasks.items()} == {
        "start_run": [],
        "ingest": ["start_run"],
        "validate_raw": ["ingest"],
        "monitor": ["validate_raw"],
        "commit_run": ["monitor"],
        "verdict": ["commit_run"],
        "drift_found": ["verdict"],
        "request_retraining": ["drift_found", "verdict"],
    }
    assert {task["trigger_rule"] for task in tasks.values()} == {"none_failed"}


# Prepended to each script below, which call DAG task code directly in a fresh interpreter
# with Airflow: the DAG folder on sys.path (as Airflow has it), and a stand-in for the
# TaskInstance a task gets: its task is the real one, xcom_pull reads `xcoms` (task_id ->
# what that task returned).
TASK_SCRIPT_PRELUDE = textwrap.dedent(
    """
    import datetime as dt, json, os, runpy, sys
    from pathlib import Path

    dags = Path(sys.argv[1])
    sys.path.insert(0, str(dags))
    import dvc_pipeline
    import workspaces


    class TaskInstance:
        def __init__(self, task, xcoms):
            self.task, self.xcoms = task, xcoms

        def xcom_pull(self, task_ids):
            return self.xcoms.get(task_ids)

    """
)


def task_script(body: str) -> str:
    return TASK_SCRIPT_PRELUDE + textwrap.dedent(body)


# drift_monitoring's tasks in order, on a scratch git project, dvc_pipeline.run_stage
# recording instead of running: two runs of one interval, the second finding every stage
# up to date.
CALL_DRIFT_TASKS = task_script(
    """
    from airflow.sdk.exceptions import AirflowSkipException

    SUMMARY = "reports/monitoring/summary.json"
    summary = os.environ["SUMMARY"]
    calls, up_to_date = [], set()

    def run_stage(pipeline, name, pin, upstream, **kwargs):
        calls.append({"stage": name, "pin": vars(pin), "upstream": [r.stage for r in upstream]})
        if name in up_to_date:
            return None
        lock, files = {"cmd": f"python -m {{ cookiecutter.package_name }} {name}", "outs": []}, {}
        if name == "monitor":
            lock["outs"] = [{"path": SUMMARY, "hash": "md5", "md5": "0" * 32, "size": 1}]
            files[SUMMARY] = summary
        return workspaces.StageResult(name, True, lock, files)

    dvc_pipeline.run_stage = run_stage
    dag = runpy.run_path(str(dags / "drift_monitoring.py"))["dag"]

    def one_run():
        xcoms, skipped = {}, {}
        for task_id, kwargs in (
            ("start_run", {"data_interval_end": dt.datetime(2026, 4, 2, tzinfo=dt.UTC)}),
            ("ingest", {}),
            ("validate_raw", {}),
            ("monitor", {}),
            ("commit_run", {"run_id": "scheduled__2026-04-02"}),
            ("verdict", {}),
        ):
            task = dag.get_task(task_id)
            if task_id != "start_run":
                kwargs["ti"] = TaskInstance(task, xcoms)
            try:
                xcoms[task_id] = task.python_callable(*task.op_args, **kwargs)
            except AirflowSkipException as skip:
                xcoms[task_id], skipped[task_id] = None, str(skip)
        done = {"xcoms": xcoms, "skipped": skipped, "calls": calls[:]}
        calls.clear()
        return done

    first = one_run()
    up_to_date.update({"ingest", "validate_raw", "monitor"})
    print(json.dumps({"first": first, "second": one_run()}))
    """
)


def run_task_script(script: str, home: Path, **env: str) -> str:
    """Run one of the scripts above (DAG task code called directly) in a fresh interpreter
    with Airflow, a throw-away AIRFLOW_HOME and `env`; its stdout."""
    full = {k: v for k, v in pipeline_env().items() if not k.startswith(("AIRFLOW", "PIPELINE_"))}
    full.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        **env,
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(DAGS)],
        env=full,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_drift_monitoring_runs_the_dvc_monitor_stage_and_reads_its_verdict(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", "interval.yaml"):
        (project / name).write_text((PROJECT_ROOT / name).read_text())
    git(project, "init", "--quiet")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "the project")
    head = git(project, "rev-parse", "HEAD").strip()
    summary = {"retrain": True, "reasons": ["data drift: 4 of 9 features"]}
    stdout = run_task_script(
        CALL_DRIFT_TASKS,
        tmp_path / "airflow_home",
        PIPELINE_PROJECT_DIR=str(project),
        PIPELINE_WORKSPACE_DIR=str(tmp_path / "workspaces"),
        SUMMARY=json.dumps(summary),
    )
    runs = json.loads(stdout.strip().splitlines()[-1])
    first, second = runs["first"], runs["second"]
    pin = first["xcoms"]["start_run"]
    assert pin == {
        "commit": head,
        "base": head,
        "end_date": "2026-04-01",
        "branch": "pipeline-runs",
    }
    # each stage gets what the stages before it in this DAG handed on
    assert [(c["stage"], c["upstream"]) for c in first["calls"]] == [
        ("ingest", []),
        ("validate_raw", ["ingest"]),
        ("monitor", ["ingest", "validate_raw"]),
    ]
    assert all(c["pin"] == pin for c in first["calls"])
    assert first["skipped"] == {}
    assert first["xcoms"]["verdict"] == summary
    commit = first["xcoms"]["commit_run"]
    assert git(project, "rev-parse", "pipeline-runs").strip() == commit
    assert git(project, "show", f"{commit}:reports/monitoring/summary.json") == json.dumps(summary)
    lock = yaml.safe_load(git(project, "show", f"{commit}:dvc.lock"))
    assert list(lock["stages"]) == ["ingest", "validate_raw", "monitor"]
    assert yaml.safe_load(git(project, "show", f"{commit}:interval.yaml")) == {
        "end_date": "2026-04-01"
    }
    assert git(project, "log", "-1", "--format=%s", commit).strip() == (
        "drift_monitoring: end_date=2026-04-01 (scheduled__2026-04-02)"
    )
    # the same interval again: every stage up to date, nothing to commit, the verdict read
    # from the run it continues from
    assert second["xcoms"]["start_run"]["base"] == commit
    assert set(second["skipped"]) == {"ingest", "validate_raw", "monitor"}
    assert "monitor is up to date" in second["skipped"]["monitor"]
    assert second["xcoms"]["commit_run"] is None
    assert second["xcoms"]["verdict"] == summary
    # no task wrote to the checkout
    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(project, "rev-parse", "HEAD").strip() == head


FAIL_THE_GATE = task_script(
    """
    from airflow.sdk.exceptions import AirflowFailException

    output = ["gate 'raw' FAILED: suite expectations/raw.json\\n", "  FAILED   batch 2026-04-03: rows\\n"]

    def gate_fails(args, **kwargs):
        raise dvc_pipeline.CommandFailed(args, 1, output, output=output)

    def run_stage(pipeline, name, pin, upstream, **kwargs):
        return dvc_pipeline.repro_stage(name, workspace=Path.cwd(), venv=Path.cwd())

    dvc_pipeline.run_in_project = gate_fails
    dvc_pipeline.run_stage = run_stage
    pin = {"commit": "c" * 40, "base": "b" * 40, "end_date": "2026-04-03", "branch": "pipeline-runs"}
    for dag_file in ("drift_monitoring.py", "continuous_training.py"):
        dag = runpy.run_path(str(dags / dag_file))["dag"]
        task = dag.get_task("validate_raw")
        try:
            task.python_callable(*task.op_args, ti=TaskInstance(task, {"start_run": pin}))
        except AirflowFailException as failed:
            print(json.dumps([dag.dag_id, failed.__cause__.gate, failed.__cause__.findings]))
    """
)


UP_TO_DATE = task_script(
    """
    from airflow.sdk.exceptions import AirflowSkipException

    dag = runpy.run_path(str(dags / "continuous_training.py"))["dag"]
    task = dag.get_task("train")
    pin = {"commit": "c" * 40, "base": "b" * 40, "end_date": "2026-04-03", "branch": "pipeline-runs"}
    xcoms = {"start_run": pin, "validate_raw": None}  # validate_raw was up to date
    for stage in ("ingest", "featurize", "validate_features", "training_set", "evaluate"):
        xcoms[stage] = workspaces.StageResult(stage, True, {"cmd": stage}).to_xcom()
    returns = iter([
        workspaces.StageResult("train", True, {"cmd": "train"}),
        workspaces.StageResult("train", False, {"cmd": "train"}),
        None,
    ])
    upstream = []

    def run_stage(pipeline, name, pin, results, **kwargs):
        upstream.append([r.stage for r in results])
        return next(returns)

    dvc_pipeline.run_stage = run_stage
    for _ in range(3):
        try:
            handed_on = task.python_callable(*task.op_args, ti=TaskInstance(task, xcoms))
            print("returned:", json.dumps(handed_on["ran"]))
        except AirflowSkipException as skipped:
            print("skipped:", skipped)
    print("upstream:", json.dumps(upstream))
    """
)


def test_an_up_to_date_stage_shows_as_skipped(tmp_path: Path) -> None:
    stdout = run_task_script(UP_TO_DATE, tmp_path)
    printed = [
        line
        for line in stdout.splitlines()
        if line.startswith(("returned:", "skipped:", "train:", "upstream:"))
    ]
    ancestors_handed_on = ["ingest", "featurize", "validate_features", "training_set"]
    assert printed == [
        "returned: true",
        "train: restored from DVC's run cache (the same inputs ran before)",
        "returned: false",
        "skipped: train is up to date: its code, params and inputs match the run's base "
        "(bbbbbbbbbbbb)",
        "upstream: " + json.dumps([ancestors_handed_on] * 3),
    ]


def test_a_failed_gate_fails_its_task_without_retries(tmp_path: Path) -> None:
    stdout = run_task_script(FAIL_THE_GATE, tmp_path)
    failed = [json.loads(line) for line in stdout.splitlines() if line.startswith("[")]
    findings = ["FAILED   batch 2026-04-03: rows"]
    assert failed == [
        ["drift_monitoring", "raw", findings],
        ["continuous_training", "raw", findings],
    ]


REPORT_PROMOTION = task_script(
    """
    dag = runpy.run_path(str(dags / "continuous_training.py"))["dag"]

    class Run:
        run_id = "scheduled__2026-04-03"

    task = dag.get_task("report_promotion")
    files = {"reports/promotion.json": os.environ["PROMOTION_REPORT"]}
    promoted = workspaces.StageResult("promote", True, {"cmd": "python -m {{ cookiecutter.package_name }} promote"}, files)
    decisions = [
        task.python_callable(ti=TaskInstance(task, xcoms), dag_run=Run())
        for xcoms in ({"promote": promoted.to_xcom()}, {"promote": None})
    ]
    print(json.dumps(decisions))
    """
)


def test_a_rejected_promotion_is_sent_to_the_webhook_once(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "dvc.yaml").write_text((PROJECT_ROOT / "dvc.yaml").read_text())
    report = {
        "decision": "rejected",
        "reasons": ["pr_auc 0.40 does not beat the champion's 0.45"],
        "candidate": {"version": 3},
        "champion_before": {"version": 2},
    }
    with WebhookReceiver() as webhook:
        stdout = run_task_script(
            REPORT_PROMOTION,
            tmp_path / "airflow_home",
            AIRFLOW_CONN_PIPELINE_WEBHOOK=webhook.url,
            PIPELINE_PROJECT_DIR=str(project),
            PROMOTION_REPORT=json.dumps(report),
        )
        # promote ran: the decision, and one message; promote up to date: nothing new
        assert json.loads(stdout.strip().splitlines()[-1]) == ["rejected", None]
        assert webhook.texts() == [
            "continuous_training / scheduled__2026-04-03: candidate version 3 rejected, "
            "version 2 stays champion:\n- pr_auc 0.40 does not beat the champion's 0.45"
        ]


# --------------------------------------------------------------------------- dvc_pipeline


@pytest.fixture(scope="module")
def dp() -> ModuleType:
    if str(DAGS) not in sys.path:
        sys.path.insert(0, str(DAGS))  # as Airflow has it: dvc_pipeline imports workspaces
    spec = importlib.util.spec_from_file_location("dvc_pipeline", DAGS / "dvc_pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dvc_pipeline"] = module  # as when a DAG file imports it
    spec.loader.exec_module(module)
    return module


def test_load_pipeline_reads_this_projects_dvc_yaml(dp: ModuleType) -> None:
    pipeline = dp.load_pipeline(PROJECT_ROOT)
    assert list(pipeline.stages) == list(
        yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]
    )
    assert pipeline.roots == ["ingest"]
    promote = pipeline.stages["promote"]
    assert "${paths.reports}/promotion.json" in promote.outs  # as written in dvc.yaml
    assert "dvc repro --single-item promote" in promote.doc_md()


def test_persist_and_ancestors_come_from_this_projects_dvc_yaml(dp: ModuleType) -> None:
    pipeline = dp.load_pipeline(PROJECT_ROOT)
    assert pipeline.stages["validate_raw"].persist == ("${paths.gate_reports}/raw",)
    assert pipeline.stages["monitor"].persist == ("${paths.monitoring}/runs",)
    assert pipeline.stages["train"].persist == ()
    assert pipeline.ancestors("ingest") == []
    assert pipeline.ancestors("monitor") == [
        "ingest",
        "validate_raw",
        "featurize",
        "validate_features",
        "training_set",
        "tune",
        "train",
        "evaluate",
        "validate_predictions",
    ], "every stage it depends on, directly or not, in dvc.yaml order; not materialize"


def test_upstream_results_are_what_the_tasks_handed_on(dp: ModuleType) -> None:
    handed_on = dp.ws.StageResult("ingest", True, {"cmd": "ingest"}, {"a.json": "{}"})

    class TaskInstance:
        def xcom_pull(self, task_ids: str) -> dict[str, Any] | None:
            return {"ingest": handed_on.to_xcom()}.get(task_ids)

    results = dp.upstream_results(TaskInstance(), ["ingest", "validate_raw"])
    assert results == [handed_on], "an up-to-date stage (no XCom) hands nothing on"


# The edges of the shipped dvc.yaml, as the former dvc_pipeline (which resolved `${...}`
# from params.yaml) and DVC itself build them.
SHIPPED_EDGES = {
    ("ingest", "validate_raw"),
    ("ingest", "featurize"),
    ("validate_raw", "featurize"),
    ("featurize", "validate_features"),
    ("featurize", "training_set"),
    ("featurize", "materialize"),
    ("validate_features", "training_set"),
    ("validate_features", "materialize"),
    ("materialize", "promote"),  # infra validation reads the online store
    ("training_set", "tune"),
    ("tune", "train"),
    ("training_set", "train"),
    ("training_set", "evaluate"),
    ("training_set", "promote"),
    ("training_set", "monitor"),
    ("train", "evaluate"),
    ("train", "promote"),
    ("train", "monitor"),
    ("evaluate", "validate_predictions"),
    ("evaluate", "monitor"),
    ("validate_predictions", "promote"),
    ("validate_predictions", "monitor"),
    ("ingest", "monitor"),
}


def test_the_graph_comes_from_unresolved_paths_and_matches_dvcs(
    dp: ModuleType,
    dvc_graph: tuple[list[str], set[tuple[str, str]]],
    tmp_path: Path,
) -> None:
    (tmp_path / "dvc.yaml").write_text((PROJECT_ROOT / "dvc.yaml").read_text())
    # not YAML at all: reading it would fail, so the graph is built without params.yaml
    (tmp_path / "params.yaml").write_text("paths: [unclosed\n")
    pipeline = dp.load_pipeline(tmp_path)
    assert "${paths.raw}" in pipeline.stages["ingest"].outs
    edges = {(up, down) for down, ups in pipeline.upstream.items() for up in ups}
    assert edges == SHIPPED_EDGES
    assert edges == dvc_graph[1]


def write_dvc_yaml(root: Path, stages: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    return root


def test_edges_follow_paths_as_written_and_inside_output_folders(
    dp: ModuleType, tmp_path: Path
) -> None:
    root = write_dvc_yaml(
        tmp_path,
        {
            "get": {"cmd": "get", "outs": ["${paths.data}"]},
            "one_file": {"cmd": "a", "deps": ["${paths.data}/part-1.csv"], "outs": ["a.txt"]},
            "report": {
                "cmd": "r",
                "deps": ["a.txt", "src/unrelated.py", "${paths.elsewhere}"],
                "metrics": [{"m.json": {"cache": False}}],
            },
            "summary": {"cmd": "s", "deps": ["./m.json"], "plots": [{"${paths.plots}/p.csv": {}}]},
            "alone": {"cmd": "x", "deps": ["other/"]},
        },
    )
    pipeline = dp.load_pipeline(root)
    assert pipeline.upstream == {
        "get": (),
        "one_file": ("get",),
        "report": ("one_file",),
        "summary": ("report",),
        "alone": (),
    }
    assert pipeline.roots == ["get", "alone"]
    assert pipeline.leaves == ["summary", "alone"]
    assert pipeline.stages["summary"].outs == ("${paths.plots}/p.csv",)


def test_direct_upstream_leaves_out_the_edges_another_path_implies(
    dp: ModuleType, tmp_path: Path
) -> None:
    root = write_dvc_yaml(
        tmp_path,
        {
            "raw": {"cmd": "r", "outs": ["raw/"]},
            "features": {"cmd": "f", "deps": ["raw/"], "outs": ["features/"]},
            "model": {"cmd": "m", "deps": ["raw/", "features/"], "outs": ["model.json"]},
            "monitor": {"cmd": "o", "deps": ["raw/", "model.json"], "outs": ["drift.json"]},
            "side": {"cmd": "s", "deps": ["raw/"], "outs": ["side.json"]},
        },
    )
    pipeline = dp.load_pipeline(root)
    assert pipeline.upstream["monitor"] == ("raw", "model")
    assert pipeline.direct_upstream == {
        "raw": (),
        "features": ("raw",),
        "model": ("features",),  # raw -> model: implied by raw -> features -> model
        "monitor": ("model",),
        "side": ("raw",),
    }


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ({"a": {"foreach": [1, 2], "do": {"cmd": "a"}}}, "foreach/matrix"),
        (
            {
                "a": {"cmd": "a", "deps": ["b.txt"], "outs": ["a.txt"]},
                "b": {"cmd": "b", "deps": ["a.txt"], "outs": ["b.txt"]},
            },
            "cycle",
        ),
    ],
)
def test_a_pipeline_the_dag_cannot_build_is_refused_clearly(
    dp: ModuleType, tmp_path: Path, stages: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        dp.load_pipeline(write_dvc_yaml(tmp_path, stages))


def test_batch_end_date_is_the_last_complete_day(dp: ModuleType) -> None:
    utc = dt.UTC
    midnight = dt.datetime(2026, 4, 2, tzinfo=utc)
    assert dp.batch_end_date(midnight, None) == dt.date(2026, 4, 1)  # daily run [04-01, 04-02)
    asset_run = dt.datetime(2026, 4, 5, 10, 30, tzinfo=utc)
    assert dp.batch_end_date(None, asset_run) == dt.date(2026, 4, 4)  # no interval: day before
    east = dt.datetime(2026, 4, 2, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert dp.batch_end_date(east, None) == dt.date(2026, 3, 31)  # 23:00 UTC on 04-01
    with pytest.raises(ValueError, match="neither"):
        dp.batch_end_date(None, None)


def fake_venv(root: Path, script: str) -> Path:
    bin_dir = root / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    dvc = bin_dir / "dvc"
    dvc.write_text(f"#!/bin/sh\n{script}\n")
    dvc.chmod(0o755)
    return root / "venv"


def test_run_in_project_uses_the_project_venv_and_streams_output(
    dp: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = fake_venv(tmp_path, 'echo "cwd=$(pwd) venv=$VIRTUAL_ENV args=$*"; echo "$PATH"')
    monkeypatch.setenv("PROJECT_VENV", str(venv))
    monkeypatch.setenv("PYTHONPATH", "/airflow/site-packages")
    assert dp.project_venv(tmp_path) == venv
    out = dp.run_in_project(["dvc", "repro", "--single-item", "train"], project=tmp_path)
    first, path = out.splitlines()
    assert first == f"cwd={tmp_path} venv={venv} args=repro --single-item train"
    assert path.split(os.pathsep)[0] == str(venv / "bin")


DVC_REPRO_OUTPUT = """Running stage 'train':
> python -m {{ cookiecutter.package_name }} train
trained 60 rounds

To track the changes with git, run:

\tgit add dvc.lock

To enable auto staging, run:

\tdvc config core.autostage true
Use `dvc push` to send your updates to remote storage.
"""


def test_stage_logs_leave_out_dvcs_git_and_push_advice(
    dp: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    (tmp_path / "out.txt").write_text(DVC_REPRO_OUTPUT)
    venv = fake_venv(tmp_path, f"cat {tmp_path / 'out.txt'}")
    with caplog.at_level("INFO"):
        output = dp.repro_stage("train", workspace=tmp_path, venv=venv)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Running stage 'train'" in logged and "trained 60 rounds" in logged
    for advice in ("git add", "autostage", "dvc push", "To track the changes"):
        assert advice not in logged, advice
    assert output == DVC_REPRO_OUTPUT, "the returned output is whole"


def test_repro_stage_runs_one_stage_in_its_workspace_pulling_what_it_lacks(
    dp: ModuleType, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    venv = fake_venv(tmp_path, 'echo "cwd=$(pwd) args=$*"; echo "Running stage \'train\':"')
    output = dp.repro_stage("train", workspace=workspace, venv=venv, env={"EXTRA": "1"})
    assert output.splitlines()[0] == (
        f"cwd={workspace} args=repro --single-item --allow-missing --pull train"
    )
    assert dp.stage_ran(output, "train") and not dp.stage_ran(output, "evaluate")


def test_a_gate_failing_in_the_stage_output_raises_gate_rejected(
    dp: ModuleType, tmp_path: Path
) -> None:
    venv = fake_venv(
        tmp_path,
        "echo \"gate 'features' FAILED: 1 of 4 expectations\"; echo '  FAILED  nulls'; exit 1",
    )
    with pytest.raises(dp.GateRejected) as rejected:
        dp.repro_stage("validate_features", workspace=tmp_path, venv=venv)
    assert rejected.value.gate == "features"
    assert rejected.value.findings == ["FAILED  nulls"]
    other = fake_venv(tmp_path / "other", "echo 'no such file'; exit 2")
    with pytest.raises(dp.CommandFailed) as failed:
        dp.repro_stage("validate_features", workspace=tmp_path, venv=other)
    assert type(failed.value) is dp.CommandFailed and failed.value.returncode == 2


def test_a_failing_command_raises_with_the_end_of_its_output(
    dp: ModuleType, tmp_path: Path
) -> None:
    venv = fake_venv(
        tmp_path, 'for i in $(seq 1 100); do echo "line $i"; done; echo "gate FAILED" >&2; exit 3'
    )
    with pytest.raises(dp.CommandFailed, match="exited with 3") as failed:
        dp.run_in_project(["dvc", "repro"], project=tmp_path, venv=venv, hint="Stage failed.")
    message = str(failed.value)
    assert "Stage failed." in message and "gate FAILED" in message
    assert "line 100" in message and "line 1\n" not in message  # only the tail


def test_a_missing_project_venv_is_explained(dp: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="PROJECT_VENV"):
        dp.run_in_project(["dvc", "status"], project=tmp_path, venv=tmp_path / "nowhere")


def test_remote_description_names_the_default_remote(dp: ModuleType) -> None:
    assert dp.remote_description(PROJECT_ROOT) == "'local' (../.dvc-storage)"
    assert dp.remote_description(PROJECT_ROOT, "s3").startswith("'s3' (s3://")


def test_make_airflow_listens_on_loopback_with_few_workers() -> None:
    done = subprocess.run(
        ["make", "-n", "airflow"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    command = next(line for line in done.stdout.splitlines() if "scripts/airflow-local.sh" in line)
    assert "standalone" not in done.stdout, "standalone starts log servers on every interface"
    assert "AIRFLOW__API__HOST=127.0.0.1" in command
    assert "AIRFLOW__CORE__PARALLELISM=2" in command
    assert f'AIRFLOW__CORE__DAGS_FOLDER="{DAGS}"' in command
