"""Monitor outputs: the verdict for machines and people.

Each run writes reports/monitoring/runs/<UTC time>/ (Evidently's HTML reports and
the run's summary), the latest summary.json (the verdict, for the DAGs) and
metrics.json (for `dvc metrics diff`), and index.html listing every kept run.
`log_to_mlflow` records the run in MLflow; `describe` is the console paragraph.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import shutil
from pathlib import Path
from typing import Any

from ..files import write_json
from .checks import MonitorResult
from .versions import describe_versions

SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.json"
INDEX_FILE = "index.html"
RUNS_DIR = "runs"
DRIFT_REPORT = "drift.html"
QUALITY_REPORT = "quality.html"


def flat_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The numbers `dvc metrics diff` compares run to run (absent when a check was skipped)."""
    window = summary["window"]
    metrics: dict[str, Any] = {
        "retrain": int(summary["retrain"]),
        "current_rows": window["current_rows"],
        "labelled_rows": window["labelled_rows"],
        "data_quality_issues": len(summary["issues"]),
        "new_category_rows": sum(
            v["rows"] for v in summary["data_quality"]["new_categories"].values()
        ),
    }
    if window.get("prediction_log"):
        metrics["served_rows"] = window["prediction_log"]["rows"]
        metrics["malformed_log_lines"] = window["prediction_log"]["malformed_lines"]
    drift = summary["feature_drift"]
    if drift["status"] == "checked":
        metrics["drift_share"] = drift["share"]
        metrics["drifted_features"] = drift["drifted_count"]
        metrics["feature_drift"] = {c: v["score"] for c, v in drift["features"].items()}
    if summary["prediction_drift"]["status"] == "checked":
        metrics["prediction_drift"] = summary["prediction_drift"]["score"]
    quality = summary["model_quality"]
    if quality["status"] == "checked":
        metrics.update({k: v for k, v in quality["current"].items()})
    if versions := summary.get("model_versions", {}).get("versions"):
        metrics["versions"] = {f"{v['version']}_{v['role']}": _version_figures(v) for v in versions}
    return metrics


def _version_figures(entry: dict[str, Any]) -> dict[str, Any]:
    figures = {"rows": entry["rows"], "mean_score": entry["mean_score"]}
    if entry["score_drift"]["status"] == "checked":
        figures["score_drift"] = entry["score_drift"]["score"]
    if entry["quality"]["status"] == "checked":
        figures.update({k: entry["quality"][k] for k in ("roc_auc", "precision", "recall")})
    return figures


def write_outputs(
    result: MonitorResult, out_dir: Path, keep_runs: int, now: dt.datetime | None = None
) -> Path:
    """Write this run under runs/<UTC time>/ (reports + summary), the latest summary.json
    and metrics.json, and the index page of every kept run. Returns the run folder."""
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    runs = out_dir / RUNS_DIR
    run_dir = runs / stamp
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = runs / f"{stamp}-{suffix}"
    run_dir.mkdir(parents=True)
    summary = dict(result.summary)
    summary["run"] = run_dir.name
    summary["generated_at"] = now.isoformat(timespec="seconds")
    reports = {}
    for name, snapshot in (
        (DRIFT_REPORT, result.drift_report),
        (QUALITY_REPORT, result.quality_report),
    ):
        if snapshot is not None:
            snapshot.save_html(str(run_dir / name))
            reports[name.removesuffix(".html")] = f"{RUNS_DIR}/{run_dir.name}/{name}"
    summary["reports"] = reports
    result.summary = summary
    write_json(summary, run_dir / SUMMARY_FILE)
    write_json(summary, out_dir / SUMMARY_FILE)
    write_json(flat_metrics(summary), out_dir / METRICS_FILE)
    prune_runs(runs, keep_runs)
    write_index(out_dir)
    return run_dir


def prune_runs(runs: Path, keep: int) -> None:
    for old in sorted(p for p in runs.iterdir() if p.is_dir())[:-keep]:
        shutil.rmtree(old)


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


INDEX_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Monitoring reports</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .3em .6em; vertical-align: top; }
th { background: #f4f4f4; }
.bad { color: #b00020; } .ok { color: #1b7f3b; } .skip { color: #777; }
</style></head><body>
<h1>Monitoring reports</h1>
<p>One row per monitoring run, newest first: the verdict, why, and links to Evidently's
reports (drift: current window against the training reference; quality: labelled current
rows against the evaluated test days). Model versions: each version in the prediction
log's current window (served, or scored in the shadow), its predictions, score drift and
ROC AUC. Thresholds live in params.yaml, section <code>monitor</code>.</p>
<table><thead><tr><th>run (UTC)</th><th>verdict</th><th>drift share</th><th>score drift</th>
<th>ROC AUC</th><th>current rows</th><th>model versions</th><th>reasons and issues</th>
<th>reports</th></tr></thead>
<tbody>
<!-- rows -->
</tbody></table></body></html>
"""


def _versions_cell(summary: dict[str, Any]) -> str:
    parts = []
    for v in summary.get("model_versions", {}).get("versions", []):
        drift, quality = v["score_drift"].get("score"), v["quality"].get("roc_auc")
        parts.append(
            f"{html.escape(v['version'])} {v['role']}: {v['rows']} rows, "
            f"drift {_fmt(drift)}, ROC AUC {_fmt(quality)}"
        )
    return "<br>".join(parts)


def write_index(out_dir: Path) -> Path:
    """reports/monitoring/index.html: every kept run, newest first, linking its reports."""
    rows = []
    for summary_path in sorted((out_dir / RUNS_DIR).glob(f"*/{SUMMARY_FILE}"), reverse=True):
        try:
            s = json.loads(summary_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        run = summary_path.parent.name
        if s.get("retrain"):
            verdict_cell = '<b class="bad">RETRAIN</b>'
        elif s.get("status") == "checked":
            verdict_cell = '<span class="ok">ok</span>'
        else:
            verdict_cell = '<span class="skip">not enough data</span>'
        drift = s.get("feature_drift", {})
        quality = s.get("model_quality", {})
        window = s.get("window", {})
        links = " ".join(
            f'<a href="{html.escape(path)}">{html.escape(name)}</a>'
            for name, path in s.get("reports", {}).items()
        )
        links += f' <a href="{RUNS_DIR}/{html.escape(run)}/{SUMMARY_FILE}">summary</a>'
        notes = [*s.get("reasons", []), *s.get("issues", [])]
        rows.append(
            "<tr>"
            f"<td>{html.escape(s.get('generated_at', run))}</td>"
            f"<td>{verdict_cell}</td>"
            f"<td>{_fmt(drift.get('share'), 2)}</td>"
            f"<td>{_fmt(s.get('prediction_drift', {}).get('score'))}</td>"
            f"<td>{_fmt(quality.get('current', {}).get('roc_auc'))}</td>"
            f"<td>{window.get('current_rows', '')}</td>"
            f"<td>{_versions_cell(s)}</td>"
            f"<td>{'<br>'.join(html.escape(n) for n in notes)}</td>"
            f"<td>{links}</td>"
            "</tr>"
        )
    page = INDEX_PAGE.replace("<!-- rows -->", "\n".join(rows))
    path = out_dir / INDEX_FILE
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def log_to_mlflow(
    result: MonitorResult, run_dir: Path, model_run_id: str | None, tags: dict[str, str]
) -> str:
    """A `monitor` run in the project's experiment (MLflow already set up): the verdict's
    numbers as metrics, the reasons as tags, the reports and summary as artifacts."""
    import mlflow

    from ..tracking import flatten

    summary = result.summary
    numeric = {
        k: float(v)
        for k, v in flatten("", flat_metrics(summary)).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    run_tags = {
        **tags,
        "stage": "monitor",
        "retrain": str(result.retrain).lower(),
        "reasons": "; ".join(result.reasons)[:4900] or "none",
        "model_run_id": model_run_id or "unknown",
    }
    with mlflow.start_run(run_name="monitor") as run:
        mlflow.set_tags(run_tags)
        mlflow.log_metrics(numeric)
        for path in sorted(run_dir.iterdir()):
            mlflow.log_artifact(str(path), artifact_path="monitoring")
        return run.info.run_id


def describe(result: MonitorResult) -> str:
    """One paragraph for the console: the verdict and why."""
    s = result.summary
    if s["status"] != "checked":
        head = "monitor: not enough data to judge; no retraining triggered"
    elif result.retrain:
        head = "monitor: RETRAIN - " + "; ".join(result.reasons)
    else:
        drift = s["feature_drift"]
        share = f"drift share {drift['share']:.2f}" if drift["status"] == "checked" else ""
        head = f"monitor: no retraining needed ({share or 'drift not judged'})"
    lines = [head]
    days = s["model_quality"].get("days") or {}
    if days.get("first_day"):
        lines.append(
            f"  quality: labelled rows of {days['first_day']}..{days['last_day']} "
            f"(labels are known {days['label_horizon_days']} days after the event)"
        )
    lines += describe_versions(s.get("model_versions", {}))
    lines += [f"  issue: {i}" for i in s["issues"]]
    lines += [f"  warning: {w}" for w in s["warnings"]]
    return "\n".join(lines)
