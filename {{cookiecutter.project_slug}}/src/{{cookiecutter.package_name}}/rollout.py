"""Moving `champion` after the promote stage: shadow evidence, `rollout status`,
`rollout promote`, `rollout abort` and `rollback`.

With `promote.rollout.require_shadow`, a candidate that passes the promotion gate while
a champion exists stays `candidate` (decision `awaiting_shadow`, promotion.py). Served
with `serving.rollout: shadow`, it scores every request beside the champion and the
prediction log keeps both answers. The shadow evidence for the candidate is read back
from that log: the predictions the current champion answered while the candidate
scored them in the shadow; the hours from the first of them to the last; and the
agreement, the share of them where both gave the same label, each at its own decision
threshold (labels, not scores: the label is what a caller acts on, and two models can
rank alike on different score scales).

`rollout promote` moves `champion` to the candidate only when the gate passed it and
the evidence meets promote.rollout's minimums (min_shadow_hours, min_shadow_predictions,
min_agreement); with no champion yet, no shadow is needed. Either way it writes
reports/rollout.json and tags the candidate (`rollout.*`); refusing, it raises a
PipelineError naming every unmet minimum. `rollout abort` removes the `candidate`
alias (the service stops shadowing or canarying it within serving.refresh_seconds);
`rollback` moves `champion` back in one command.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from .champion import (
    CANDIDATE,
    CHAMPION,
    DECISION_TAG,
    GATE_PASSED,
    alias_version,
    load_version,
)
from .config import Params, RolloutConfig
from .errors import PipelineError
from .prediction_log import (
    MODEL_VERSION,
    PREDICTION,
    SCORE,
    SHADOW_PREDICTION,
    SHADOW_SCORE,
    SHADOW_VERSION,
)

log = logging.getLogger(__name__)

REPORT_FILE = "rollout.json"
MAX_TAG_LENGTH = 5000  # MLflow's limit on a tag value


def shadow_evidence(
    frame: pd.DataFrame, timestamp: str, candidate: str, champion: str | None
) -> dict[str, Any]:
    """The candidate's shadow record in a prediction-log frame (read_prediction_log):
    the rows `champion` answered while `candidate` scored them in the shadow."""
    rows = frame.loc[(frame[SHADOW_VERSION] == candidate) & (frame[MODEL_VERSION] == champion)]
    out: dict[str, Any] = {
        "candidate": candidate,
        "champion": champion,
        "predictions": len(rows),
        "first": None,
        "last": None,
        "hours": 0.0,
        "agreement": None,
        "mean_score": None,
    }
    if not len(rows):
        return out
    first, last = rows[timestamp].min(), rows[timestamp].max()
    both = rows[[PREDICTION, SHADOW_PREDICTION]].dropna()
    same = (both[PREDICTION] == both[SHADOW_PREDICTION]).mean() if len(both) else None
    out.update(
        first=first.isoformat(),
        last=last.isoformat(),
        hours=(last - first).total_seconds() / 3600,
        agreement=float(same) if same is not None else None,
        labelled_pairs=len(both),
        mean_score={
            "champion": float(rows[SCORE].mean()),
            "candidate": float(rows[SHADOW_SCORE].mean()),
        },
        mean_abs_score_difference=float((rows[SCORE] - rows[SHADOW_SCORE]).abs().mean()),
    )
    return out


def _check(name: str, value: float | None, floor: float, shown: str) -> dict[str, Any]:
    passed = value is not None and value >= floor
    verdict = ">=" if passed else "<"
    return {
        "name": name,
        "passed": passed,
        "value": value,
        "required": floor,
        "detail": f"{shown} {verdict} {name} {floor:g}" if value is not None else shown,
    }


def judge(evidence: dict[str, Any], cfg: RolloutConfig, decision: str | None) -> list[dict]:
    """promote.rollout's minimums, and the gate's decision, as named checks."""
    gate_passed = decision in GATE_PASSED
    checks = [
        {
            "name": "promotion_gate",
            "passed": gate_passed,
            "value": decision,
            "required": " or ".join(GATE_PASSED),
            "detail": f"{DECISION_TAG} is {decision!r}"
            + ("" if gate_passed else ": rollout promote moves only a candidate the gate passed"),
        }
    ]
    if evidence["champion"] is None:
        return checks  # the first model needs no shadow
    hours, agreement = evidence["hours"], evidence["agreement"]
    return [
        *checks,
        _check("min_shadow_hours", hours, cfg.min_shadow_hours, f"{hours:.2f} h"),
        _check(
            "min_shadow_predictions",
            evidence["predictions"],
            cfg.min_shadow_predictions,
            f"{evidence['predictions']} shadowed predictions",
        ),
        _check(
            "min_agreement",
            agreement,
            cfg.min_agreement,
            f"agreement {agreement:.4f}"
            if agreement is not None
            else f"no shadowed prediction with both labels (min_agreement {cfg.min_agreement:g})",
        ),
    ]


def _registry(p: Params, root: Path) -> tuple[Any, Any, Any]:
    """(client, champion version, candidate version); a PipelineError without a candidate."""
    import mlflow

    from . import tracking

    tracking.setup_mlflow(p.mlflow, root)
    client = mlflow.MlflowClient()
    name = p.mlflow.registered_model
    champion = alias_version(client, name, CHAMPION)
    candidate = alias_version(client, name, CANDIDATE)
    if candidate is None:
        raise PipelineError(
            f"model {name!r} has no '{CANDIDATE}' version in {mlflow.get_tracking_uri()}: "
            "the promote stage registers one"
        )
    return client, champion, candidate


def status(p: Params, root: Path = Path()) -> dict[str, Any]:
    """The candidate, the champion, the shadow evidence and promote.rollout's checks."""
    _client, champion, candidate = _registry(p, root)
    return _status(p, champion, candidate)


def _status(p: Params, champion: Any, candidate: Any) -> dict[str, Any]:
    from .prediction_log import read_prediction_log

    champion_version = str(champion.version) if champion is not None else None
    log_read = read_prediction_log(p.paths.prediction_log, p.dataset)
    frame = log_read.frame if log_read is not None else _empty_log(p.dataset.timestamp)
    version = str(candidate.version)
    evidence = shadow_evidence(frame, p.dataset.timestamp, version, champion_version)
    decision = (candidate.tags or {}).get(DECISION_TAG)
    checks = judge(evidence, p.promote.rollout, decision)
    same = champion_version == version
    return {
        "candidate": {"version": version, "decision": decision},
        "champion": champion_version,
        "prediction_log": str(p.paths.prediction_log),
        "evidence": evidence,
        "checks": checks,
        "ready": not same and all(c["passed"] for c in checks),
        "already_champion": same,
    }


def _empty_log(timestamp: str) -> pd.DataFrame:
    columns = [timestamp, MODEL_VERSION, SCORE, PREDICTION, SHADOW_VERSION, SHADOW_SCORE]
    return pd.DataFrame(columns=[*columns, SHADOW_PREDICTION])


def _tag(client: Any, name: str, version: str, key: str, value: Any) -> None:
    text = str(value)
    if len(text) > MAX_TAG_LENGTH:
        text = text[: MAX_TAG_LENGTH - 3] + "..."
    client.set_model_version_tag(name, version, key, text)


def promote_candidate(p: Params, root: Path = Path()) -> dict[str, Any]:
    """Move `champion` to the candidate when status() is ready; record the decision
    (reports/rollout.json, `rollout.*` tags) and raise a PipelineError when it is not."""
    from .files import write_json

    name = p.mlflow.registered_model
    client, champion, candidate = _registry(p, root)
    report = _status(p, champion, candidate)
    version = report["candidate"]["version"]
    if report["already_champion"]:
        raise PipelineError(f"candidate version {version} of {name!r} is already the champion")
    failed = [c["detail"] for c in report["checks"] if not c["passed"]]
    if not failed:
        load_version(client, name, version, p.dataset)  # servable: its bytes and features
    report["decision"] = "refused" if failed else "promoted"
    report["reasons"] = failed or [c["detail"] for c in report["checks"]]
    report["decided_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_json(report, p.paths.reports / REPORT_FILE)
    tags = {
        "decision": report["decision"],
        "reasons": "; ".join(report["reasons"]),
        "decided_at": report["decided_at"],
        "evidence": _evidence_text(report["evidence"]),
    }
    for key, value in tags.items():
        _tag(client, name, version, f"rollout.{key}", value)
    if failed:
        raise PipelineError(
            f"rollout promote refused: candidate version {version} of {name!r} stays "
            f"candidate ({'; '.join(failed)}); see `rollout status` and {REPORT_FILE}"
        )
    if champion is not None:
        _tag(client, name, version, "previous_champion", champion.version)
    client.set_registered_model_alias(name, CHAMPION, version)
    log.info("rollout promote: champion of %r: %s -> %s", name, report["champion"], version)
    return report


def _evidence_text(evidence: dict[str, Any]) -> str:
    agreement = evidence["agreement"]
    return (
        f"{evidence['predictions']} predictions shadowed beside champion "
        f"{evidence['champion']} over {evidence['hours']:.2f} h "
        f"({evidence['first']}..{evidence['last']}), agreement "
        + (f"{agreement:.4f}" if agreement is not None else "none")
    )


def describe(report: dict[str, Any]) -> str:
    """`rollout status` / `rollout promote` for the console: evidence, checks, outcome."""
    candidate, evidence = report["candidate"], report["evidence"]
    lines = [
        f"candidate version {candidate['version']} ({DECISION_TAG}: {candidate['decision']}), "
        f"champion version {report['champion']}",
        f"  shadow: {_evidence_text(evidence)} (from {report['prediction_log']})"
        if report["champion"] is not None
        else "  shadow: none needed (no champion yet)",
    ]
    lines += [f"  {'ok ' if c['passed'] else 'NO '} {c['detail']}" for c in report["checks"]]
    if "decision" in report:
        lines.append(f"{report['decision']}: champion is version {candidate['version']}")
    elif report["already_champion"]:
        lines.append("the candidate is the champion: nothing to roll out")
    else:
        ready = "ready: `rollout promote` moves champion" if report["ready"] else "not ready"
        lines.append(ready)
    return "\n".join(lines)


def abort(p: Params, root: Path = Path()) -> str:
    """Remove the `candidate` alias: no version is shadowed or canaried any more (within
    serving.refresh_seconds). Returns the version it pointed at."""
    client, champion, candidate = _registry(p, root)
    name, version = p.mlflow.registered_model, str(candidate.version)
    if champion is not None and str(champion.version) == version:
        raise PipelineError(f"candidate version {version} of {name!r} is the champion: no rollout")
    client.delete_registered_model_alias(name, CANDIDATE)
    _tag(client, name, version, "rollout.aborted_at", dt.datetime.now(dt.UTC).isoformat())
    log.info("removed alias %r from version %s of %r", CANDIDATE, version, name)
    return version


def rollback(p: Params, to_version: int | None = None, root: Path = Path()) -> tuple[int, int]:
    """Move `champion` to `to_version`, or to the version it replaced; the version rolled
    back from loses the `candidate` alias too. Returns (from, to)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from . import tracking

    name = p.mlflow.registered_model
    tracking.setup_mlflow(p.mlflow, root)
    client = mlflow.MlflowClient()
    current = alias_version(client, name, CHAMPION)
    if current is None:
        raise PipelineError(
            f"{name!r} has no champion in {mlflow.get_tracking_uri()}: nothing to roll back"
        )
    if to_version is None:
        previous = current.tags.get("previous_champion")
        if not previous:
            raise PipelineError(
                f"champion version {current.version} of {name!r} records no previous champion: "
                "pass --to VERSION (see the versions in the MLflow UI)"
            )
        to_version = int(previous)
    try:
        target = client.get_model_version(name, str(to_version))
    except MlflowException as exc:
        raise PipelineError(f"{name!r} has no version {to_version}") from exc
    if target.version == current.version:
        raise PipelineError(f"version {to_version} of {name!r} is already the champion")
    load_version(client, name, target.version, p.dataset)  # servable: its bytes and features
    client.set_registered_model_alias(name, CHAMPION, target.version)
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    client.set_model_version_tag(name, target.version, "rollback.from", current.version)
    client.set_model_version_tag(name, target.version, "rollback.at", when)
    client.set_model_version_tag(name, current.version, "rolled_back.at", when)
    candidate = alias_version(client, name, CANDIDATE)
    if candidate is not None and str(candidate.version) == str(current.version):
        client.delete_registered_model_alias(name, CANDIDATE)  # no shadow or canary of it
    log.info("champion of %r: version %s -> %s", name, current.version, target.version)
    return int(current.version), int(target.version)
