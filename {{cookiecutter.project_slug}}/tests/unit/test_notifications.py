"""dags/notifications.py: one message per event a person must see, POSTed to the webhook
of the Airflow connection `pipeline_webhook` (here a real HTTP receiver on 127.0.0.1)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from airflow_helpers import WebhookReceiver
from conftest import PROJECT_ROOT

DAGS = PROJECT_ROOT / "dags"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DAGS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as when a DAG file imports it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def notifications() -> ModuleType:
    return load("notifications")


@pytest.fixture(scope="module")
def dp() -> ModuleType:
    load("workspaces")  # dvc_pipeline imports it, as Airflow finds it next to the DAGs
    return load("dvc_pipeline")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


GATE_OUTPUT = [
    "Running stage 'validate_raw':\n",
    "gate 'raw' FAILED: suite expectations/raw.json, 20 rows, 305 expectations, 2 failed\n",
    *[f"  FAILED   batch 2026-04-03: check {i} on column 'c{i}'\n" for i in range(10)],
    "  WARNING  batch 2026-04-03: a range on column 'x'\n",
]


def gate_rejected(dp: ModuleType) -> BaseException:
    failed = dp.CommandFailed(["dvc", "repro"], 1, GATE_OUTPUT[-3:], output=GATE_OUTPUT)
    return dp.GateRejected(failed, "raw")


def test_a_message_is_one_json_post_to_the_webhook(notifications, receiver) -> None:
    assert notifications.send("gate 'raw' rejected 2026-04-03", receiver.url) is True
    assert receiver.bodies == [{"text": "gate 'raw' rejected 2026-04-03"}]


def test_the_url_comes_from_the_airflow_connection(
    notifications, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_json = json.dumps({"conn_type": "http", "host": receiver.url})
    monkeypatch.setenv("AIRFLOW_CONN_PIPELINE_WEBHOOK", as_json)
    assert notifications.webhook_url() == receiver.url
    monkeypatch.setenv("AIRFLOW_CONN_AS_URI", receiver.url)  # the URI form works too
    assert notifications.webhook_url("as_uri") == receiver.url
    assert notifications.webhook_url("no_such_connection") is None


def test_no_connection_no_other_scheme_and_a_dead_receiver_send_nothing_and_never_raise(
    notifications, receiver
) -> None:
    assert notifications.send("x", None) is False
    assert notifications.send("x", "file:///etc/passwd") is False
    dead = receiver.url
    receiver.close()
    assert notifications.send("x", dead) is False
    assert receiver.bodies == []


def test_a_failed_gate_says_which_gate_and_what_it_found(notifications, dp) -> None:
    error = gate_rejected(dp)
    assert error.gate == "raw" and len(error.findings) == 10
    text = notifications.failure_text("continuous_training", "manual__1", "validate_raw", 1, error)
    assert text.startswith("continuous_training / manual__1: task validate_raw failed")
    assert "gate 'raw' rejected the data (no retry)" in text
    assert "FAILED   batch 2026-04-03: check 0 on column 'c0'" in text
    shown = notifications.MAX_FINDINGS
    assert f"check {shown - 1} " in text and f"check {shown} " not in text
    assert f"and {10 - shown} more" in text
    # as the DAG raises it: AirflowFailException from the gate's error
    from airflow.sdk.exceptions import AirflowFailException

    try:
        raise AirflowFailException(str(error)) from error
    except AirflowFailException as wrapped:
        assert "gate 'raw' rejected" in notifications.failure_text("d", "r", "t", 1, wrapped)


def test_a_task_failed_after_its_retries_says_how_often_and_why(notifications, dp) -> None:
    lines = [f"line {i}" for i in range(30)]
    error = dp.CommandFailed(["dvc", "push"], 1, lines, hint="Pushing to the DVC remote failed.")
    text = notifications.failure_text("continuous_training", "scheduled__2", "dvc_push", 3, error)
    assert "task dvc_push failed after 3 tries" in text
    assert "`dvc push` exited with 1. Pushing to the DVC remote failed." in text
    assert "line 29" in text and "line 10\n" not in text, "the head and the tail of the error"


def test_a_rejected_candidate_lists_the_reasons(notifications) -> None:
    report = {
        "decision": "rejected",
        "reasons": ["pr_auc 0.41 < champion 0.44 - 0.01", "slice b: recall 0.2 < 0.3"],
        "candidate": {"version": 7},
        "champion_before": {"version": 5},
    }
    text = notifications.rejection_text("continuous_training", "scheduled__3", report)
    assert "candidate version 7 rejected, version 5 stays champion" in text
    assert "- pr_auc 0.41 < champion 0.44 - 0.01\n- slice b: recall 0.2 < 0.3" in text


def test_the_failure_notifier_sends_what_the_task_context_holds(
    notifications, dp, receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PIPELINE_WEBHOOK", receiver.url)

    class TaskInstance:
        dag_id, run_id, task_id, try_number = "drift_monitoring", "manual__4", "ingest", 1

    notifier = notifications.TaskFailureNotifier()
    notifier.notify({"ti": TaskInstance(), "exception": gate_rejected(dp)})
    assert len(receiver.bodies) == 1
    assert "drift_monitoring / manual__4: task ingest failed" in receiver.bodies[0]["text"]
    assert "gate 'raw'" in receiver.bodies[0]["text"]
