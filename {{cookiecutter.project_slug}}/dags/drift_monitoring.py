"""
### Drift monitoring of {{ cookiecutter.project_name }}

Every day, checks the newest data against what the champion model was trained on,
and asks for retraining when it has drifted. Every check is a DVC stage of
`dvc.yaml`, run with `dvc repro --single-item`, the way `continuous_training` and a
local `dvc repro` run it.

1. **set_data_interval** writes the run's last complete day to `interval.yaml`
   (`end_date`), as the training DAG does.
2. **ingest_and_validate** lands that window of daily batches and runs the raw
   gate (`dvc repro --single-item ingest validate_raw`): bad data stops here.
3. **monitor** runs the DVC stage `monitor` (`dvc repro --single-item monitor`):
   Evidently data drift per feature and its share, prediction drift, data quality
   and, where labels have arrived, model quality. DVC records the run in
   `dvc.lock`. Reports: `reports/monitoring/index.html`; verdict and reasons:
   `reports/monitoring/summary.json`, which this task reads.
4. **dvc_push** and **commit_run** store the run as `continuous_training` does: the
   new batches and monitoring outputs in the DVC remote, then `dvc.lock`,
   `interval.yaml` and the monitoring verdict committed, so the checkout is left
   clean and `git checkout <commit> && dvc pull` restores what was judged.
5. **drift_found** goes on only when the verdict says `retrain` (and logs why);
   otherwise the run ends here, green, with nothing retrained.
6. **request_retraining** updates the asset `retrain_request`, with the reasons
   attached: the `continuous_training` DAG is scheduled on it and starts a run,
   whose promotion gate then decides whether the new model replaces the champion.

Both DAGs run DVC in the same checkout; each runs one run at a time, and if
their DVC tasks ever overlap, DVC's repository lock fails the later one, which
then retries with back-off.
"""

from __future__ import annotations

import datetime as dt
import json

import dvc_pipeline as dp
from airflow.sdk import DAG, Asset, CronTriggerTimetable, task
from airflow.sdk.exceptions import AirflowFailException
from notifications import TaskFailureNotifier

OWNER = "{{ cookiecutter.author_name }}"
RETRAIN_REQUEST = Asset(dp.RETRAIN_REQUEST)
DVC_S3_CONNECTION = "dvc_s3"  # optional Airflow connection (aws) with the remote's credentials
SUMMARY = "reports/monitoring/summary.json"

with DAG(
    dag_id="drift_monitoring",
    description="Daily at 06:00 UTC: Evidently drift and quality checks; emits retrain_request "
    "when retraining is due",
    schedule=CronTriggerTimetable("0 6 * * *", timezone="UTC", interval=dt.timedelta(days=1)),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,  # one DVC process per checkout
    max_active_tasks=1,
    dagrun_timeout=dt.timedelta(hours=2),
    default_args={**dp.default_args(OWNER), "on_failure_callback": TaskFailureNotifier()},
    tags=["{{ cookiecutter.project_slug }}", "monitoring", "evidently", "drift"],
    doc_md=__doc__,
) as dag:

    @task(doc_md="Write the run's last complete day to `interval.yaml` as `end_date`.")
    def set_data_interval(data_interval_end=None, dag_run=None) -> str:
        end_date = dp.batch_end_date(data_interval_end, getattr(dag_run, "run_after", None))
        changed = dp.write_interval(end_date, dp.PROJECT_DIR)
        print(f"interval.yaml end_date = {end_date} ({'changed' if changed else 'unchanged'})")
        return end_date.isoformat()

    @task(doc_md="`dvc repro --single-item ingest validate_raw`: the new batches, gated.")
    def ingest_and_validate(end_date: str) -> None:
        try:
            dp.repro_stage("ingest", "validate_raw")
        except dp.GateRejected as rejected:  # the data is wrong: a retry cannot fix it
            raise AirflowFailException(str(rejected)) from rejected

    @task(
        doc_md="`dvc repro --single-item monitor`: the Evidently checks against the training "
        f"reference (DVC stage `monitor`); reads the verdict from `{SUMMARY}`."
    )
    def monitor() -> dict:
        dp.repro_stage("monitor")
        summary = json.loads((dp.PROJECT_DIR / SUMMARY).read_text())
        return {"retrain": bool(summary["retrain"]), "reasons": list(summary.get("reasons", []))}

    @task(
        task_id="dvc_push",
        doc_md="`dvc push` of the new batches and monitoring outputs to the DVC default remote "
        f"(credentials from the environment or the Airflow connection `{DVC_S3_CONNECTION}`).",
    )
    def dvc_push() -> None:
        dp.dvc_push(dp.PROJECT_DIR, env=dp.aws_env_from_connection(DVC_S3_CONNECTION))

    @task(
        task_id="commit_run",
        doc_md="Commit `dvc.lock`, `interval.yaml` and the monitoring verdict (after the push): "
        "the checkout is left clean.",
    )
    def commit_run(data_interval_end=None, dag_run=None, run_id=None) -> str | None:
        end_date = dp.batch_end_date(data_interval_end, getattr(dag_run, "run_after", None))
        message = f"drift_monitoring: end_date={end_date.isoformat()} ({run_id})"
        return dp.commit_run(dp.PROJECT_DIR, message)

    @task.short_circuit(doc_md="Go on only when the verdict is `retrain`.")
    def drift_found(verdict: dict) -> bool:
        if verdict["retrain"]:
            print("retraining is due: " + "; ".join(verdict["reasons"]))
        else:
            print("no drift past the thresholds: nothing to retrain")
        return verdict["retrain"]

    @task(
        outlets=[RETRAIN_REQUEST],
        doc_md="Update the asset `retrain_request` (reasons attached): starts `continuous_training`.",
    )
    def request_retraining(verdict: dict, outlet_events=None) -> None:
        outlet_events[RETRAIN_REQUEST].extra = {"reasons": verdict["reasons"]}
        print("retrain_request updated: " + "; ".join(verdict["reasons"]))

    end_date = set_data_interval()
    checked = monitor()
    ingest_and_validate(end_date) >> checked
    checked >> dvc_push() >> commit_run()
    drift_found(checked) >> request_retraining(checked)
