"""
### Drift monitoring of {{ cookiecutter.project_name }}

Every day, checks the newest data against what the champion model was trained on,
and asks for retraining when it has drifted. Every check is a DVC stage of
`dvc.yaml`, run the way `continuous_training` runs its stages: each task in a
workspace of its own, the DVC remote carrying the data between them.

1. **start_run** pins the run (code commit, the runs branch's tip, `end_date`: the
   run's last complete day), as the training DAG does.
2. **ingest** and **validate_raw** land that window of daily batches and run the
   raw gate: bad data stops here.
3. **monitor** runs the DVC stage `monitor`: Evidently data drift per feature and
   its share, prediction drift, data quality and, where labels have arrived,
   model quality, against the training reference of the run it continues from.
   Reports: `reports/monitoring/index.html`; verdict and reasons:
   `reports/monitoring/summary.json`.
4. **commit_run** commits the run on the runs branch (`dvc.lock`, `interval.yaml`
   and the monitoring verdict), so `git checkout <commit> && dvc pull` restores
   what was judged; the checkout itself is never changed.
5. **drift_found** goes on only when the verdict says `retrain` (and logs why);
   otherwise the run ends here, green, with nothing retrained.
6. **request_retraining** updates the asset `retrain_request`, with the reasons
   attached: the `continuous_training` DAG is scheduled on it and starts a run,
   whose promotion gate then decides whether the new model replaces the champion.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import dvc_pipeline as dp
import workspaces as ws
from airflow.sdk import DAG, Asset, CronTriggerTimetable, chain, task
from notifications import TaskFailureNotifier

OWNER = "{{ cookiecutter.author_name }}"
RETRAIN_REQUEST = Asset(dp.RETRAIN_REQUEST)
DVC_S3_CONNECTION = "dvc_s3"  # optional Airflow connection (aws) with the remote's credentials
PIPELINE = dp.load_pipeline(dp.PROJECT_DIR)
STAGES = ("ingest", "validate_raw", "monitor")
SUMMARY = "reports/monitoring/summary.json"

with DAG(
    dag_id="drift_monitoring",
    description="Daily at 06:00 UTC: Evidently drift and quality checks; emits retrain_request "
    "when retraining is due",
    schedule=CronTriggerTimetable("0 6 * * *", timezone="UTC", interval=dt.timedelta(days=1)),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=int(os.environ.get("PIPELINE_MAX_ACTIVE_RUNS", "3")),
    dagrun_timeout=dt.timedelta(hours=2),
    default_args={
        **dp.default_args(OWNER),
        "on_failure_callback": TaskFailureNotifier(),
        "trigger_rule": "none_failed",  # an up-to-date stage is skipped; the next still runs
    },
    tags=["{{ cookiecutter.project_slug }}", "monitoring", "evidently", "drift"],
    doc_md=__doc__,
) as dag:

    @task(doc_md="Pin the run: code commit, the runs branch's tip, and `end_date`.")
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
        doc_md="Commit `dvc.lock`, `interval.yaml` and the monitoring verdict on the runs "
        "branch (every output is in the DVC remote by then).",
    )
    def commit_run(ti=None, run_id=None) -> str | None:
        pin = ws.RunPin.from_xcom(ti.xcom_pull(task_ids="start_run"))
        message = f"drift_monitoring: end_date={pin.end_date} ({run_id})"
        return dp.commit_task(PIPELINE, ti, "start_run", message)

    @task(doc_md=f"The verdict of `monitor` (`{SUMMARY}`): whether to retrain, and why.")
    def verdict(ti=None) -> dict:
        pin = ws.RunPin.from_xcom(ti.xcom_pull(task_ids="start_run"))
        results = dp.upstream_results(ti, ["monitor"])
        summary = json.loads(ws.read_output(dp.PROJECT_DIR, pin, results, SUMMARY))
        return {"retrain": bool(summary["retrain"]), "reasons": list(summary.get("reasons", []))}

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

    stage_tasks = [repro.override(task_id=s, doc_md=PIPELINE.stages[s].doc_md())(s) for s in STAGES]
    committed = commit_run()
    chain(start_run(), *stage_tasks, committed)
    checked = verdict()
    committed >> checked
    drift_found(checked) >> request_retraining(checked)
