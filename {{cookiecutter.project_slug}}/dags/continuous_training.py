"""
### Continuous training of {{ cookiecutter.project_name }}

Runs the DVC pipeline of this project (`dvc.yaml`) for one data interval, then
pushes its data to the DVC remote and commits the run.

1. **set_data_interval** writes the run's last complete day to `interval.yaml`
   (`end_date`): `ingest` lands the rolling window of daily batches ending that
   day (`data.window_days` in `params.yaml`). The daily run at 00:00 on day *D*
   (interval *D - 1* .. *D*) trains on the window ending *D - 1*. Backfills of
   past intervals work the same way.
2. **One task per DVC stage**, built from `dvc.yaml` when this file is parsed:
   adding a stage there adds a task here. Each runs `dvc repro --single-item <stage>`
   in the project checkout through the project's virtualenv, so it does exactly
   what a local `dvc repro` does; a stage whose inputs did not change is left as it
   is and its task shows as *skipped* (the tasks after it still run).
   A failed gate (`validate_*`) fails its task at once (no retry: the data is
   wrong) with the gate's message and stops everything downstream: no model is trained or promoted from rejected data.
   `promote` registers the model in MLflow and moves the `champion` alias only
   if the promotion gate passes (reasons in `reports/promotion.json`).
3. **dvc_push** sends data, features and models to the DVC default remote (S3).
4. **commit_run** commits `dvc.lock`, `interval.yaml`, `params.yaml` and the
   git-tracked metrics and plots, so `git checkout <commit> && dvc pull`
   restores exactly this run.
5. **report_promotion** reads the promotion decision; a rejected candidate, a
   failed gate and a task failed after its last retry each send one message to
   the webhook of the Airflow connection `pipeline_webhook` (dags/notifications.py).

Schedule: daily at 00:00 UTC, or as soon as the asset `retrain_request` is updated
(the monitoring DAG emits it when drift calls for retraining). One run, and one task,
at a time: DVC locks the checkout. Every other failure is retried with exponential
back-off.
"""

from __future__ import annotations

import datetime as dt
import json

import dvc_pipeline as dp
from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from notifications import TaskFailureNotifier, rejection_text, send, webhook_url

OWNER = "{{ cookiecutter.author_name }}"
RETRAIN_REQUEST = Asset(dp.RETRAIN_REQUEST)
DVC_S3_CONNECTION = "dvc_s3"  # optional Airflow connection (aws) with the remote's credentials
PIPELINE = dp.load_pipeline(dp.PROJECT_DIR)
PROMOTE, PROMOTION_REPORT = "promote", "reports/promotion.json"

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
    # One DVC process per checkout (DVC locks the repository): one run, one task at a time.
    max_active_runs=1,
    max_active_tasks=1,
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
        task_id="set_data_interval",
        doc_md="Write the run's last complete day (the day before the data interval ends) "
        "to `interval.yaml` as `end_date`, so `ingest` lands the window ending that day.",
    )
    def set_data_interval(data_interval_end=None, dag_run=None) -> str:
        end_date = dp.batch_end_date(data_interval_end, getattr(dag_run, "run_after", None))
        changed = dp.write_interval(end_date, dp.PROJECT_DIR)
        print(f"interval.yaml end_date = {end_date} ({'changed' if changed else 'unchanged'})")
        return end_date.isoformat()

    @task(doc_md="Run one DVC stage (see the task's own docs).")
    def repro(stage: str) -> bool:
        try:
            output = dp.repro_stage(stage)
        except dp.GateRejected as rejected:  # the data is wrong: a retry cannot fix it
            raise AirflowFailException(str(rejected)) from rejected
        if not dp.stage_ran(output, stage):  # shown as skipped in the UI, not as a new run
            raise AirflowSkipException(
                f"{stage} is up to date: its deps, params and code match dvc.lock"
            )
        return True

    @task(
        task_id="dvc_push",
        doc_md="`dvc push` to the DVC default remote (`.dvc/config`). Credentials come "
        f"from the environment, or from the Airflow connection `{DVC_S3_CONNECTION}` if it exists.",
    )
    def dvc_push() -> None:
        dp.dvc_push(dp.PROJECT_DIR, env=dp.aws_env_from_connection(DVC_S3_CONNECTION))

    @task(
        task_id="commit_run",
        doc_md="Commit `dvc.lock`, `interval.yaml`, `params.yaml` and the git-tracked metrics "
        "to git (after the push, so a commit never points at data the remote lacks).",
    )
    def commit_run(data_interval_end=None, dag_run=None, run_id=None) -> str | None:
        # the end date again from the run, not set_data_interval's XCom: no extra graph edge
        end_date = dp.batch_end_date(data_interval_end, getattr(dag_run, "run_after", None))
        message = f"continuous_training: end_date={end_date.isoformat()} ({run_id})"
        return dp.commit_run(dp.PROJECT_DIR, message)

    interval = set_data_interval()
    stage_tasks = {
        name: repro.override(task_id=name, doc_md=stage.doc_md())(name)
        for name, stage in PIPELINE.stages.items()
    }
    for name, upstream in PIPELINE.direct_upstream.items():  # implied edges left out
        for up in upstream:
            stage_tasks[up] >> stage_tasks[name]
    for name in PIPELINE.roots:
        interval >> stage_tasks[name]
    push = dvc_push()
    for name in PIPELINE.leaves:
        stage_tasks[name] >> push
    committed = push >> commit_run()

    if PROMOTE in PIPELINE.stages:

        @task(
            task_id="report_promotion",
            doc_md=f"Read the promotion gate's decision (`{PROMOTION_REPORT}`) when `{PROMOTE}` "
            "ran in this run; a rejected candidate sends its reasons to the webhook "
            "(the Airflow connection `pipeline_webhook`).",
        )
        def report_promotion(ti=None, dag_run=None) -> str | None:
            if not ti.xcom_pull(task_ids=PROMOTE):
                print(f"{PROMOTE} was up to date: no new decision")
                return None
            report = json.loads((dp.PROJECT_DIR / PROMOTION_REPORT).read_text())
            print(f"promotion: {report['decision']}: " + "; ".join(report.get("reasons", [])))
            if report["decision"] == "rejected":
                send(rejection_text(dag.dag_id, dag_run.run_id, report), webhook_url())
            return str(report["decision"])

        committed >> report_promotion()
