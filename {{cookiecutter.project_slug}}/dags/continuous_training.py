"""
### Continuous training of {{ cookiecutter.project_name }}

Runs the DVC pipeline of this project (`dvc.yaml`) for one data interval, each
stage in a workspace of its own, and commits the run on the branch `pipeline-runs`.

1. **start_run** pins the run: the code commit (HEAD of the checkout the DAG was
   parsed from), the state it continues from (the tip of the runs branch) and its
   last complete day, `end_date` (the day before the data interval ends): `ingest`
   lands the rolling window of daily batches ending that day
   (`data.window_days` in `params.yaml`). The daily run at 00:00 on day *D* trains
   on the window ending *D - 1*. Backfills of past intervals work the same way, and
   several run at once.
2. **One task per DVC stage**, built from `dvc.yaml` when this file is parsed:
   adding a stage there adds a task here. Each clones the run's commit into a
   private folder, pulls from the DVC remote only what its stage reads, runs
   `dvc repro --single-item <stage>` through the project's virtualenv, pushes what
   it made and hands its `dvc.lock` entry on (XCom). Stages that do not depend on
   each other run at the same time. A stage whose inputs did not change is left as
   it is and its task shows as *skipped* (the tasks after it still run).
   A failed gate (`validate_*`) fails its task at once (no retry: the data is
   wrong) with the gate's message and stops everything downstream: no model is trained or promoted from rejected data.
   `promote` registers the model in MLflow and moves the `champion` alias only
   if the promotion gate passes (reasons in `reports/promotion.json`).
3. **commit_run** assembles the run's `dvc.lock` and commits it, with
   `interval.yaml` and the git-tracked metrics and plots, on the runs branch, so
   `git checkout <commit> && dvc pull` restores exactly this run. The checkout
   itself is never changed.
4. **report_promotion** reads the promotion decision; a rejected candidate, a
   failed gate and a task failed after its last retry each send one message to
   the webhook of the Airflow connection `pipeline_webhook` (dags/notifications.py).

Schedule: daily at 00:00 UTC, or as soon as the asset `retrain_request` is updated
(the monitoring DAG emits it when drift calls for retraining). `materialize` and
`promote` (they write the online store and the champion alias) run one run at a
time. Every other failure is retried with exponential back-off, in a new workspace.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import dvc_pipeline as dp
import workspaces as ws
from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, task
from notifications import TaskFailureNotifier, rejection_text, send, webhook_url

OWNER = "{{ cookiecutter.author_name }}"
RETRAIN_REQUEST = Asset(dp.RETRAIN_REQUEST)
DVC_S3_CONNECTION = "dvc_s3"  # optional Airflow connection (aws) with the remote's credentials
PIPELINE = dp.load_pipeline(dp.PROJECT_DIR)
PROMOTE, PROMOTION_REPORT = "promote", "reports/promotion.json"
# Stages that write service state every run shares (the Feast online store, the champion
# alias): one task instance at a time across runs, so concurrent runs take turns.
ONE_RUN_AT_A_TIME = {"materialize", PROMOTE}

with DAG(
    dag_id="continuous_training",
    description="Daily at 00:00 UTC and on retrain_request: the dvc.yaml pipeline, pushed to "
    "the DVC remote, champion gate in MLflow",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 0 * * *", timezone="UTC", interval=dt.timedelta(days=1)),
        assets=RETRAIN_REQUEST,
    ),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    # Every task has a workspace of its own: runs (a backfill) and branches run side by side.
    max_active_runs=int(os.environ.get("PIPELINE_MAX_ACTIVE_RUNS", "3")),
    max_active_tasks=int(os.environ.get("PIPELINE_MAX_ACTIVE_TASKS", "4")),
    dagrun_timeout=dt.timedelta(hours=6),
    default_args={
        **dp.default_args(OWNER),
        "on_failure_callback": TaskFailureNotifier(),
        # an up-to-date stage is skipped, and what follows it still runs; a failure stops it
        "trigger_rule": "none_failed",
    },
    tags=["{{ cookiecutter.project_slug }}", "continuous-training", "dvc", "mlflow"],
    doc_md=__doc__,
) as dag:

    @task(
        task_id="start_run",
        doc_md="Pin the run: the code commit, the runs branch's tip it continues from, and its "
        "last complete day (the day before the data interval ends) as `end_date`.",
    )
    def start_run(data_interval_end=None, dag_run=None) -> dict:
        end_date = dp.batch_end_date(data_interval_end, getattr(dag_run, "run_after", None))
        pin = ws.start_run(dp.PROJECT_DIR, end_date.isoformat())
        print(f"end_date = {pin.end_date}, code {pin.commit[:12]}, base {pin.base[:12]}")
        return vars(pin)

    @task(doc_md="Run one DVC stage (see the task's own docs).")
    def repro(stage: str, ti=None) -> dict:
        env = dp.aws_env_from_connection(DVC_S3_CONNECTION)
        return dp.stage_task(PIPELINE, stage, ti, "start_run", env)

    @task(
        task_id="commit_run",
        doc_md="Assemble the run's `dvc.lock` from the stage tasks and commit it, with "
        "`interval.yaml` and the git-tracked metrics and plots, on the runs branch (every "
        "output is in the DVC remote by then).",
    )
    def commit_run(ti=None, run_id=None) -> str | None:
        pin = ws.RunPin.from_xcom(ti.xcom_pull(task_ids="start_run"))
        message = f"continuous_training: end_date={pin.end_date} ({run_id})"
        return dp.commit_task(PIPELINE, ti, "start_run", message)

    started = start_run()
    stage_tasks = {
        name: repro.override(
            task_id=name,
            doc_md=stage.doc_md(),
            max_active_tis_per_dag=1 if name in ONE_RUN_AT_A_TIME else None,
        )(name)
        for name, stage in PIPELINE.stages.items()
    }
    for name, upstream in PIPELINE.direct_upstream.items():  # implied edges left out
        for up in upstream:
            stage_tasks[up] >> stage_tasks[name]
    for name in PIPELINE.roots:
        started >> stage_tasks[name]
    committed = commit_run()
    for name in PIPELINE.leaves:
        stage_tasks[name] >> committed

    if PROMOTE in PIPELINE.stages:

        @task(
            task_id="report_promotion",
            doc_md=f"Read the promotion gate's decision (`{PROMOTION_REPORT}`) when `{PROMOTE}` "
            "ran in this run; a rejected candidate sends its reasons to the webhook "
            "(the Airflow connection `pipeline_webhook`).",
        )
        def report_promotion(ti=None, dag_run=None) -> str | None:
            promoted = ti.xcom_pull(task_ids=PROMOTE)
            if not promoted:
                print(f"{PROMOTE} was up to date: no new decision")
                return None
            report = json.loads(ws.StageResult.from_xcom(promoted).files[PROMOTION_REPORT])
            print(f"promotion: {report['decision']}: " + "; ".join(report.get("reasons", [])))
            if report["decision"] == "rejected":
                send(rejection_text(dag.dag_id, dag_run.run_id, report), webhook_url())
            return str(report["decision"])

        committed >> report_promotion()
