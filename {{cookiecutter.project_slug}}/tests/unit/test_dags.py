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
STAGE_TASK_EXTRAS = {"set_data_interval", "dvc_push", "commit_run", "report_promotion"}
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
    for root in roots:
        assert tasks[root]["upstream"] == ["set_data_interval"]
    assert set(tasks["dvc_push"]["upstream"]) <= set(stages)
    assert tasks["commit_run"]["upstream"] == ["dvc_push"]
    # an up-to-date stage is skipped: what follows it must still run, unless something failed
    assert {task["trigger_rule"] for task in tasks.values()} == {"none_failed"}


def test_continuous_training_schedule_and_concurrency(loaded: dict[str, Any]) -> None:
    dag = loaded["dags"]["continuous_training"]
    assert dag["max_active_runs"] == 1, "DVC locks the checkout: one run at a time"
    for each in loaded["dags"].values():
        assert each["max_active_tasks"] == 1, "... and one DVC task at a time"
    assert "00:00 UTC" in dag["description"], "the UI shows the asset; the cron is said here"
    assert "retrain_request" in dag["description"]
    assert dag["timetable"] == "AssetOrTimeSchedule"
    assert dag["inner"] == "CronTriggerTimetable"
    assert dag["assets"] == ["retrain_request"]
    assert dag["catchup"] is False


# The drift_monitoring tasks' own code, called in a fresh interpreter with Airflow, on a
# scratch project dir, with dvc_pipeline.run_in_project recording instead of running.
CALL_DRIFT_TASKS = textwrap.dedent(
    """
    import datetime as dt, json, runpy, sys
    from pathlib import Path

    dags = Path(sys.argv[1])
    sys.path.insert(0, str(dags))
    import dvc_pipeline

    ran = []
    dvc_pipeline.run_in_project = lambda args, **kwargs: ran.append(list(args)) or ""
    dag = runpy.run_path(str(dags / "drift_monitoring.py"))["dag"]
    call = lambda task_id, **kwargs: dag.get_task(task_id).python_callable(**kwargs)
    end = call("set_data_interval", data_interval_end=dt.datetime(2026, 4, 2, tzinfo=dt.UTC))
    call("ingest_and_validate", end_date=end)
    before_monitor = len(ran)
    verdict = call("monitor")
    print(json.dumps({"end_date": end, "ran": ran, "monitor": ran[before_monitor:], "verdict": verdict}))
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


def test_drift_monitoring_runs_the_dvc_monitor_stage_and_reads_its_verdict(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "reports" / "monitoring").mkdir(parents=True)
    (project / "interval.yaml").write_text((PROJECT_ROOT / "interval.yaml").read_text())
    summary = {"retrain": True, "reasons": ["data drift: 4 of 9 features"]}
    (project / "reports" / "monitoring" / "summary.json").write_text(json.dumps(summary))
    stdout = run_task_script(
        CALL_DRIFT_TASKS, tmp_path / "airflow_home", PIPELINE_PROJECT_DIR=str(project)
    )
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["end_date"] == "2026-04-01"
    assert yaml.safe_load((project / "interval.yaml").read_text()) == {"end_date": "2026-04-01"}
    assert result["monitor"] == [["dvc", "repro", "--single-item", "monitor"]]
    assert result["ran"] == [
        ["dvc", "repro", "--single-item", "ingest", "validate_raw"],
        ["dvc", "repro", "--single-item", "monitor"],
    ]
    assert not any(args[0] == "python" for args in result["ran"]), "stages run through DVC only"
    assert result["verdict"] == summary


FAIL_THE_GATE = textwrap.dedent(
    """
    import runpy, sys
    from pathlib import Path

    dags = Path(sys.argv[1])
    sys.path.insert(0, str(dags))
    import dvc_pipeline
    from airflow.sdk.exceptions import AirflowFailException

    output = ["gate 'raw' FAILED: suite expectations/raw.json\\n", "  FAILED   batch 2026-04-03: rows\\n"]

    def gate_fails(args, **kwargs):
        raise dvc_pipeline.CommandFailed(args, 1, output, output=output)

    dvc_pipeline.run_in_project = gate_fails
    for dag_file, task_id, kwargs in (
        ("drift_monitoring.py", "ingest_and_validate", {"end_date": "2026-04-03"}),
        ("continuous_training.py", "validate_raw", {"stage": "validate_raw"}),
    ):
        dag = runpy.run_path(str(dags / dag_file))["dag"]
        try:
            dag.get_task(task_id).python_callable(**kwargs)
        except AirflowFailException as failed:
            assert failed.__cause__.gate == "raw", failed.__cause__
            print(task_id, "fails without retry")
    """
)


UP_TO_DATE = textwrap.dedent(
    """
    import runpy, sys
    from pathlib import Path

    dags = Path(sys.argv[1])
    sys.path.insert(0, str(dags))
    import dvc_pipeline
    from airflow.sdk.exceptions import AirflowSkipException

    dag = runpy.run_path(str(dags / "continuous_training.py"))["dag"]
    repro = dag.get_task("train").python_callable
    dvc_pipeline.run_in_project = lambda args, **kw: "Running stage 'train':\\n> python -m x\\n"
    print("ran:", repro(stage="train"))
    dvc_pipeline.run_in_project = lambda args, **kw: "Stage 'train' didn't change, skipping\\n"
    try:
        repro(stage="train")
    except AirflowSkipException as skipped:
        print("skipped:", skipped)
    """
)


def test_an_up_to_date_stage_shows_as_skipped(tmp_path: Path) -> None:
    stdout = run_task_script(UP_TO_DATE, tmp_path)
    printed = [line for line in stdout.splitlines() if line.startswith(("ran:", "skipped:"))]
    assert printed == [
        "ran: True",
        "skipped: train is up to date: its deps, params and code match dvc.lock",
    ]


def test_a_failed_gate_fails_its_task_without_retries(tmp_path: Path) -> None:
    stdout = run_task_script(FAIL_THE_GATE, tmp_path)
    assert stdout.split("\n")[-3:-1] == [
        "ingest_and_validate fails without retry",
        "validate_raw fails without retry",
    ]


REPORT_PROMOTION = textwrap.dedent(
    """
    import json, runpy, sys
    from pathlib import Path

    dags = Path(sys.argv[1])
    sys.path.insert(0, str(dags))
    dag = runpy.run_path(str(dags / "continuous_training.py"))["dag"]

    class Run:
        run_id = "scheduled__2026-04-03"

    class TaskInstance:
        def __init__(self, promote_ran):
            self.promote_ran = promote_ran

        def xcom_pull(self, task_ids):
            assert task_ids == "promote", task_ids
            return self.promote_ran

    report = dag.get_task("report_promotion").python_callable
    print(json.dumps([report(ti=TaskInstance(ran), dag_run=Run()) for ran in (True, False)]))
    """
)


def test_a_rejected_promotion_is_sent_to_the_webhook_once(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "reports").mkdir(parents=True)
    (project / "dvc.yaml").write_text((PROJECT_ROOT / "dvc.yaml").read_text())
    report = {
        "decision": "rejected",
        "reasons": ["pr_auc 0.40 does not beat the champion's 0.45"],
        "candidate": {"version": 3},
        "champion_before": {"version": 2},
    }
    (project / "reports" / "promotion.json").write_text(json.dumps(report))
    with WebhookReceiver() as webhook:
        stdout = run_task_script(
            REPORT_PROMOTION,
            tmp_path / "airflow_home",
            AIRFLOW_CONN_PIPELINE_WEBHOOK=webhook.url,
            PIPELINE_PROJECT_DIR=str(project),
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


def test_write_interval_keeps_the_comment_and_changes_only_end_date(
    dp: ModuleType, tmp_path: Path
) -> None:
    original = (PROJECT_ROOT / "interval.yaml").read_text()
    (tmp_path / "interval.yaml").write_text(original)
    assert dp.write_interval(dt.date(2027, 1, 15), tmp_path) is True
    edited = (tmp_path / "interval.yaml").read_text()
    before, after = original.splitlines(), edited.splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].startswith("end_date:")
    assert before[0].startswith("#"), "the header comment is kept"
    assert yaml.safe_load(edited) == {"end_date": "2027-01-15"}  # a string, as DVC records it
    # idempotent: the same day leaves the file alone (its quoting too)
    assert dp.write_interval(dt.date(2027, 1, 15), tmp_path) is False
    (tmp_path / "interval.yaml").write_text(original)
    written = yaml.safe_load(original)["end_date"]
    assert dp.write_interval(dt.date.fromisoformat(written), tmp_path) is False
    assert (tmp_path / "interval.yaml").read_text() == original
    assert [p.name for p in tmp_path.iterdir()] == ["interval.yaml"], "no temporary file left"


def test_the_written_interval_is_what_the_pipeline_config_reads(
    dp: ModuleType, tmp_path: Path
) -> None:
    from {{ cookiecutter.package_name }}.config import load_params

    (tmp_path / "params.yaml").write_text((PROJECT_ROOT / "params.yaml").read_text())
    assert dp.write_interval(dt.date(2026, 5, 9), tmp_path) is True  # no interval.yaml yet
    params = load_params(tmp_path / "params.yaml")
    assert params.interval.end_date == dt.date(2026, 5, 9)
    assert params.window.end_date == dt.date(2026, 5, 9)


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
    monkeypatch.setenv("PROJECT_VENV", str(fake_venv(tmp_path, f"cat {tmp_path / 'out.txt'}")))
    with caplog.at_level("INFO"):
        output = dp.repro_stage("train", project=tmp_path)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Running stage 'train'" in logged and "trained 60 rounds" in logged
    for advice in ("git add", "autostage", "dvc push", "To track the changes"):
        assert advice not in logged, advice
    assert output == DVC_REPRO_OUTPUT, "the returned output is whole"


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


def test_commit_run_commits_the_lock_interval_params_and_git_tracked_outputs_only(
    dp: ModuleType, tmp_path: Path
) -> None:
    root = write_dvc_yaml(
        tmp_path / "repo",
        {"s": {"cmd": "s", "outs": ["out"], "metrics": [{"m.json": {"cache": False}}]}},
    )
    (root / "params.yaml").write_text("x: 1\n")
    (root / "interval.yaml").write_text('# the run\'s interval\nend_date: "2026-01-01"\n')
    (root / ".gitignore").write_text(".venv/\n")
    (root / ".venv").mkdir()
    (root / ".venv" / ".gitignore").write_text("*\n")  # as uv writes it: must not break git add
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "--quiet"], cwd=root, check=True)
    subprocess.run([*git, "add", "--all"], cwd=root, check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "init"], cwd=root, check=True)
    assert dp.commit_run(root, "nothing") is None
    # what `dvc repro` leaves: the lock with resolved paths, the cached `out` gitignored
    lock = {
        "schema": "2.0",
        "stages": {"s": {"cmd": "s", "outs": [{"path": "out"}, {"path": "m.json"}]}},
    }
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    (root / "out").write_text("cached by DVC")
    (root / "data").mkdir()
    for name in ("m.json", "scratch.txt", "data/.gitignore"):
        (root / name).write_text(name)
    (root / ".gitignore").write_text(".venv/\n/out\n")
    assert dp.write_interval(dt.date(2026, 1, 2), root) is True
    commit = dp.commit_run(root, "continuous_training: test")
    shown = subprocess.run(
        ["git", "show", "--name-only", "--format=%s", commit],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert set(shown) >= {"dvc.lock", "interval.yaml", "m.json", "data/.gitignore"}
    assert "scratch.txt" not in shown and "out" not in shown


def test_make_airflow_listens_on_loopback_with_few_workers() -> None:
    done = subprocess.run(
        ["make", "-n", "airflow"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    command = next(line for line in done.stdout.splitlines() if "airflow standalone" in line)
    assert "AIRFLOW__API__HOST=127.0.0.1" in command
    assert "AIRFLOW__CORE__PARALLELISM=2" in command
    assert f'AIRFLOW__CORE__DAGS_FOLDER="{DAGS}"' in command
