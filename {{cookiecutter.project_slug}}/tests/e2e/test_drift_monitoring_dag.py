"""The drift-monitoring DAG under `airflow dags test`: drift updates the
`retrain_request` asset (which schedules continuous_training); no drift does not.
Each run runs the DVC stages ingest, validate_raw and monitor, each in a workspace of its
own, and commits what it judged on the runs branch; the checkout is left as it was."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from airflow_helpers import BIN, airflow, airflow_env, dags_test
from pipeline_helpers import dvc, edit_params, generated_copy, run

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]
DAY = "2026-04-02"  # the run monitors the window ending 2026-04-01
BRANCH = "pipeline-runs"
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


@pytest.fixture(scope="module")
def project(online_store: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = generated_copy(tmp_path_factory.mktemp("monitoring-dag") / "project")
    # Small test data: judge drift, not the absolute quality of a 60-round model.
    edit_params(
        project,
        lambda p: p["monitor"]["quality"].update(
            {
                "min_roc_auc": 0.5,
                "min_precision_lift": None,
                "min_precision": 0.0,
                "min_recall": 0.0,
                "max_roc_auc_drop": None,
            }
        ),
    )
    dvc(project, "repro")  # the model and training set the monitor compares against
    dvc(project, "push")  # the stage tasks pull what they read from the DVC remote
    run([*GIT, "add", "--all"], project)
    run([*GIT, "commit", "--quiet", "-m", "a trained model"], project)
    return project


@pytest.fixture
def home(tmp_path: Path, project: Path) -> Path:
    done = airflow(["db", "migrate"], airflow_env(tmp_path, project / "dags"), project)
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp_path


def retrain_events(home: Path, project: Path) -> list[dict]:
    """The asset events recorded for retrain_request in this Airflow home."""
    script = (
        "import json\n"
        "from sqlalchemy import select\n"
        "from airflow.models.asset import AssetEvent, AssetModel\n"
        "from airflow.utils.session import create_session\n"
        "with create_session() as s:\n"
        "    rows = s.execute(select(AssetEvent.extra).join(AssetModel, AssetEvent.asset_id == AssetModel.id)"
        ".where(AssetModel.name == 'retrain_request')).all()\n"
        "print(json.dumps([r[0] for r in rows]))\n"
    )
    done = subprocess.run(
        [str(BIN / "python"), "-c", script],
        env=airflow_env(home, project / "dags"),
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def committed(project: Path, path: str) -> str:
    return run(["git", "show", f"{BRANCH}:{path}"], project).stdout


def summary(project: Path) -> dict:
    return json.loads(committed(project, "reports/monitoring/summary.json"))


def assert_the_run_is_committed_and_the_checkout_clean(project: Path) -> None:
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], project).stdout
    assert status == "", f"the DAG run left files modified or untracked:\n{status}"
    message = run(["git", "log", "-1", "--format=%s", BRANCH], project).stdout
    assert message.startswith("drift_monitoring: end_date=2026-04-01 "), message


def assert_the_monitor_stage_ran_through_dvc_on_the_new_window(project: Path, output: str) -> None:
    assert "$ dvc repro --single-item --allow-missing --pull monitor" in output
    assert_the_run_is_committed_and_the_checkout_clean(project)
    assert "Running stage 'monitor'" in output
    assert yaml.safe_load(committed(project, "interval.yaml"))["end_date"] == "2026-04-01"
    lock = yaml.safe_load(committed(project, "dvc.lock"))["stages"]
    assert lock["ingest"]["params"]["interval.yaml"]["end_date"] == "2026-04-01"
    raw = next(o["md5"] for o in lock["ingest"]["outs"] if o["path"] == "data/raw")
    monitored = next(d["md5"] for d in lock["monitor"]["deps"] if d["path"] == "data/raw")
    assert monitored == raw, "dvc.lock records the monitor stage on the batches just ingested"


def test_no_drift_means_no_retraining(project: Path, home: Path) -> None:
    code, output, _ = dags_test(
        "drift_monitoring", DAY, airflow_env(home, project / "dags"), project
    )
    assert code == 0, output[-6000:]
    assert_the_monitor_stage_ran_through_dvc_on_the_new_window(project, output)
    assert summary(project)["retrain"] is False, summary(project)["reasons"]
    assert "nothing to retrain" in output
    assert retrain_events(home, project) == []


def test_drift_requests_retraining_with_its_reasons(project: Path, home: Path) -> None:
    edit_params(
        project,
        lambda p: p["ingest"]["synthetic"]["drift"].update(
            {"start_date": "2026-03-26", "covariate": 0.8}
        ),
    )
    run([*GIT, "commit", "--quiet", "--all", "-m", "drift from 2026-03-26"], project)
    code, output, _ = dags_test(
        "drift_monitoring", DAY, airflow_env(home, project / "dags"), project
    )
    assert code == 0, output[-6000:]
    assert_the_monitor_stage_ran_through_dvc_on_the_new_window(project, output)
    verdict = summary(project)
    assert verdict["retrain"] is True
    events = retrain_events(home, project)
    assert len(events) == 1
    assert events[0]["reasons"] == verdict["reasons"]
    assert any("drift" in reason for reason in events[0]["reasons"])
