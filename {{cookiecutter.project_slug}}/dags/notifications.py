"""Messages to a person when a run needs one: a task that failed for good (after its
last retry, or at once for a failed gate, which no retry can fix) and a candidate
model the promotion gate rejected. Each is one JSON POST, `{"text": "..."}` (the
body Slack, Mattermost and most chat webhooks accept), to the URL of the Airflow
connection `pipeline_webhook`:

    AIRFLOW_CONN_PIPELINE_WEBHOOK='{"conn_type": "http", "host": "https://hooks.example.com/..."}'

No connection, no message (the task log says so). A message that cannot be sent is
logged and never fails the task: the failure it reports stays the task's outcome.
Only the standard library is used; Airflow is imported lazily except for BaseNotifier.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

WEBHOOK_CONNECTION = "pipeline_webhook"
MAX_FINDINGS = 8  # failed expectations quoted in a gate's message
MAX_TEXT = 3000  # characters: chat webhooks cut or refuse longer messages
TIMEOUT_S = 10

log = logging.getLogger(__name__)


def webhook_url(conn_id: str = WEBHOOK_CONNECTION) -> str | None:
    """The webhook's URL from the Airflow connection `conn_id` (its host, when that is a
    whole URL, or scheme://host:port/path), or None when there is no such connection."""
    try:
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or no Airflow context
        log.info("no Airflow connection %r (%s): no message sent", conn_id, exc)
        return None
    host = conn.host or ""
    if "://" in host:
        return host
    port = f":{conn.port}" if conn.port else ""
    path = f"/{conn.schema.lstrip('/')}" if conn.schema else ""
    return f"{conn.conn_type}://{host}{port}{path}"


def send(text: str, url: str | None) -> bool:
    """POST `{"text": text}` to `url` (http or https only); whether it was delivered."""
    if url is None:
        return False
    if not url.startswith(("http://", "https://")):
        log.warning("webhook URL %r is not http(s): no message sent", url.split("?")[0])
        return False
    body = json.dumps({"text": text[:MAX_TEXT]}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # http(s) only
            delivered = response.status < 300
    except OSError as exc:
        log.warning("the webhook did not take the message (%s): %s", exc, text[:200])
        return False
    log.info("message sent to the webhook: %s", text[:200])
    return delivered


def failure_text(
    dag_id: str, run_id: str, task_id: str, tries: int, error: BaseException | None
) -> str:
    """The message for a task that failed for good: what, where, and why (a failed
    gate's own findings; else the first and last lines of the error)."""
    head = f"{dag_id} / {run_id}: task {task_id} failed"
    cause = error if getattr(error, "gate", None) else getattr(error, "__cause__", None)
    gate, findings = getattr(cause, "gate", None), list(getattr(cause, "findings", []))
    if gate:
        shown = findings[:MAX_FINDINGS]
        more = f"\n... and {len(findings) - len(shown)} more" if len(findings) > len(shown) else ""
        return f"{head}: gate '{gate}' rejected the data (no retry)\n" + "\n".join(shown) + more
    lines = [line for line in str(error or "no error recorded").splitlines() if line.strip()]
    why = "\n".join(lines[:2] + (["...", *lines[-6:]] if len(lines) > 8 else lines[2:]))
    return f"{head} after {tries} {'try' if tries == 1 else 'tries'}:\n{why}"


def rejection_text(dag_id: str, run_id: str, report: Mapping[str, Any]) -> str:
    """The message for a candidate the promotion gate rejected (reports/promotion.json)."""
    candidate = (report.get("candidate") or {}).get("version", "?")
    champion = report.get("champion_before") or {}
    stays = f"version {champion.get('version')} stays champion" if champion else "no champion yet"
    reasons = "\n".join(f"- {r}" for r in report.get("reasons", [])) or "- (no reasons recorded)"
    return f"{dag_id} / {run_id}: candidate version {candidate} rejected, {stays}:\n{reasons}"


class TaskFailureNotifier(BaseNotifier):
    """on_failure_callback: a message for a task that failed for good (Airflow calls it
    after the last retry; a failed gate is not retried)."""

    def __init__(self, conn_id: str = WEBHOOK_CONNECTION) -> None:
        super().__init__()
        self.conn_id = conn_id

    def notify(self, context: Any) -> None:
        ti = context["ti"]
        error = context.get("exception")
        text = failure_text(ti.dag_id, ti.run_id, ti.task_id, int(ti.try_number or 1), error)
        send(text, webhook_url(self.conn_id))
