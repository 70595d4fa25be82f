"""Promotion gate: a new model becomes `champion` in the MLflow registry only when it earns it.

The trained model is registered as a new version of `mlflow.registered_model`
with the alias `candidate`. The candidate and the current champion are scored
on the same latest holdout (the test days of the training set), each through its own
calibration (calibration.py; its threshold applies to those scores); the candidate
takes the `champion` alias only if it

- reaches `promote.minimum_lifts` on the whole holdout: PR AUC and precision at least
  lift x the holdout's positive rate (their chance level, the trivial baseline of
  metrics.py), e.g. "pr_auc 0.3000 >= 2.0 x positive rate 0.0900 (0.1800)",
- reaches `promote.absolute_minimums` on the whole holdout (ROC AUC's chance level is
  0.5 on any data: its floors are absolute),
- reaches `promote.slice_minimum_lifts` (over the slice's own positive rate) and
  `promote.slice_minimums` in every slice (declared by the dataset contract, named as
  in slices.py) with enough rows (`slices: []`: no slice checks), and, when
  `promote.max_slice_gap` is set, keeps the largest recall / FPR gap between two
  slices of one dimension within it (promotion_checks.py; the reason names both), and
- beats the champion's `promote.primary_metric` by `promote.min_improvement`
  (the first model has no champion to beat: the minimums decide), and
- passes infra validation: loaded from the registry and served in-process by the real
  app, it answers a fixed set of requests within `promote.infra_validation`'s limits
  (infra_validation.py).

With `promote.rollout.require_shadow` and a champion to replace, a candidate that
passes is held (decision `awaiting_shadow`): it stays `candidate` until `rollout
promote` (rollout.py) finds enough shadow evidence; the first model needs none.

Every decision, promoted or not, is written to reports/promotion.json and as
tags on the registered version, with the lineage (git commit, DVC data hashes,
feature service). `rollback` (rollout.py) moves the alias back. The decision logic
(`decide`) is a plain function over metrics; `promote` makes the registry calls, through
champion.py (registering, aliases, loading and scoring a version).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .champion import (
    AWAITING_SHADOW,
    CANDIDATE,
    CHAMPION,
    alias_version,
    booster_scores,
    load_version,
    register,
    registered_scores,
)
from .config import Params, PromotionConfig
from .contract import DatasetContract
from .errors import StageInputError
from .features import FEATURE_SERVICE
from .holdout import holdout_span, read_holdout
from .infra_validation import validate
from .metrics import classification_metrics
from .promotion_checks import Check, floor_check, gap_checks, lift_check, slice_checks
from .slices import Slicing, slice_metrics, slice_rows

log = logging.getLogger(__name__)

REPORT_FILE = "promotion.json"
MAX_TAG_LENGTH = 5000  # MLflow's limit on a tag value
TAG_KEY_UNSAFE = re.compile(r"[^\w.\- ]")  # MLflow tag keys: word characters, . - and space
SHADOW_FIRST = (
    "promote.rollout.require_shadow: held as candidate; serve it in the shadow "
    "(serving.rollout: shadow), then `rollout promote` moves champion"
)


@dataclass(frozen=True)
class Scorecard:
    """A model's metrics on the holdout: overall and per slice (None: undefined there), and
    the slices of each dimension (slices.py; none given: all slices are one dimension)."""

    overall: dict[str, float]
    slices: dict[str, dict[str, float | None]]
    dimensions: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    promote: bool
    checks: list[Check]
    reasons: list[str] = field(default_factory=list)
    held: bool = False  # passed, but waits for a shadow period (promote.rollout.require_shadow)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]


def scorecard(
    holdout: pd.DataFrame,
    scores: np.ndarray,
    threshold: float,
    contract: DatasetContract,
    slicing: Slicing | None = None,
) -> Scorecard:
    """Metrics of `scores` on the holdout, overall and per slice (contract.slices; its
    `slicing` when already made for another model's scorecard)."""
    if len(holdout) != len(scores):
        raise ValueError(f"{len(scores)} scores for {len(holdout)} holdout rows")
    slicing = slicing or slice_rows(holdout, contract)
    y = holdout[contract.label.column].to_numpy()
    slices = slice_metrics(y, scores, threshold, slicing.indices)
    return Scorecard(classification_metrics(y, scores, threshold), slices, slicing.dimensions)


def decide(
    candidate: Scorecard,
    champion: Scorecard | None,
    cfg: PromotionConfig,
    no_champion: str = "no champion yet",
    served: Sequence[Check] = (),
) -> Decision:
    """Apply the gate. Promote when no check failed; skipped checks do not count.

    `no_champion` says why there is no champion scorecard (first model, or a
    champion that cannot score the current features); `served` are the infra
    validation's checks (infra_validation.py), weighed like the others."""
    metric = cfg.primary_metric
    for card, who in ((candidate, "candidate"), (champion, "champion")):
        if card is not None and metric not in card.overall:
            raise ValueError(f"the {who} scorecard has no {metric!r} (promote.primary_metric)")
    checks = [
        lift_check(f"lift.{name}", name, candidate.overall, lift)
        for name, lift in sorted(cfg.minimum_lifts.items())
    ]
    checks += [
        floor_check(f"minimum.{name}", candidate.overall.get(name, math.nan), floor)
        for name, floor in sorted(cfg.absolute_minimums.items())
    ]
    checks += slice_checks(candidate.slices, cfg)
    checks += gap_checks(candidate.slices, candidate.dimensions, cfg)
    beats = f"beats_champion.{metric}"
    if champion is None:
        checks.append(
            Check(beats, None, candidate.overall[metric], None, f"skipped: {no_champion}")
        )
    else:
        ours, theirs = candidate.overall[metric], champion.overall[metric]
        required = theirs + cfg.min_improvement
        if math.isnan(ours) or math.isnan(theirs):
            checks.append(Check(beats, False, None, None, "not computable (one class only)"))
        else:
            detail = (
                f"candidate {ours:.4f} vs champion {theirs:.4f} + margin "
                f"{cfg.min_improvement:.4f} = {required:.4f}"
            )
            checks.append(Check(beats, ours >= required, ours, required, detail))
    checks += served
    failed = [c for c in checks if c.passed is False]
    promote = not failed
    if promote:
        reasons = ["passed every check" + (f" ({no_champion})" if champion is None else "")]
    else:
        reasons = [f"{c.name}: {c.detail}" for c in failed]
    return Decision(promote, checks, reasons)


# --------------------------------------------------------------------------- registry


def _tag_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_TAG_LENGTH else text[: MAX_TAG_LENGTH - 3] + "..."


def _report(
    decision: Decision,
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    holdout: dict[str, Any],
    cfg: PromotionConfig,
) -> dict[str, Any]:
    outcome = AWAITING_SHADOW if decision.held else "rejected"
    return {
        "decision": "promoted" if decision.promote else outcome,
        "promoted": int(decision.promote),
        "reasons": decision.reasons,
        "primary_metric": cfg.primary_metric,
        "holdout": holdout,
        "candidate": candidate,
        "champion_before": champion,
        "checks": [asdict(c) for c in decision.checks],
    }


@dataclass
class _Compared:
    """The champion the candidate is compared with: its scorecard (None when there is
    nothing to compare), its report entry, and why there is no scorecard."""

    champion: Any | None  # the champion's ModelVersion, None when it is the candidate itself
    scorecard: Scorecard | None
    info: dict[str, Any] | None
    no_champion: str


def _compare_with_champion(
    client: Any,
    name: str,
    champion: Any | None,
    version: Any,
    holdout: pd.DataFrame,
    contract: DatasetContract,
    slicing: Slicing | None = None,
) -> _Compared:
    """Score the champion on the holdout, unless there is none or it is the candidate. A
    champion trained on other features (another contract) is not compared with."""
    if champion is None:
        first = "no champion yet: the first model needs only the minimums"
        return _Compared(None, None, None, first)
    if champion.version == version.version:
        # Only the gate's params changed since this model was promoted: re-check, keep the alias.
        why = f"this model (version {version.version}) is already the champion"
        return _Compared(None, None, None, why)
    info: dict[str, Any] = {"version": int(champion.version), "run_id": champion.run_id}
    try:
        loaded = load_version(client, name, champion.version, contract)
        scores = booster_scores(loaded.booster, holdout, loaded.calibration)
    except StageInputError as exc:
        info["error"] = str(exc)
        why = f"champion version {champion.version} cannot score this holdout ({exc})"
        return _Compared(champion, None, info, why)
    theirs = scorecard(holdout, scores, loaded.threshold, contract, slicing)
    info.update(
        {
            "threshold": loaded.threshold,
            "calibration": loaded.calibration.method,
            "metrics": theirs.overall,
            "slices": theirs.slices,
        }
    )
    return _Compared(champion, theirs, info, "")


def _version_tags(
    p: Params, root: Path, report: dict[str, Any], decision: Decision
) -> dict[str, Any]:
    """The tags the decision leaves on the candidate version: lineage and every check
    (its threshold was recorded when it was registered)."""
    from . import tracking

    holdout = report["holdout"]
    champion_info = report["champion_before"]
    lineage = tracking.lineage_tags(root)
    lineage.pop(f"dvc.{(p.paths.reports / REPORT_FILE).as_posix()}", None)  # the previous decision
    return {
        **lineage,
        "feature_service": FEATURE_SERVICE,
        "holdout": f"{holdout['start']}..{holdout['end']} ({holdout['rows']} rows)",
        "data.end_date": p.interval.end_date.isoformat(),
        "promotion.decision": report["decision"],
        "promotion.reasons": "; ".join(decision.reasons),
        "promotion.compared_with": champion_info["version"] if champion_info else "none",
        "promotion.decided_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **{
            # slice values name checks: keep the key to the characters MLflow accepts
            "gate." + TAG_KEY_UNSAFE.sub("_", c.name): (
                "skip" if c.passed is None else "pass" if c.passed else "fail"
            )
            + f": {c.detail}"
            for c in decision.checks
        },
    }


def promote(p: Params, root: Path = Path()) -> dict[str, Any]:
    """Register the trained model, run the gate against the champion, move aliases, report."""
    import mlflow

    from . import tracking
    from .files import read_json, write_json
    from .model import load_model

    cfg, name, contract = p.promote, p.mlflow.registered_model, p.dataset
    booster, meta = load_model(p.paths.model_dir, contract)
    run_id = read_json(p.paths.model_dir / tracking.RUN_FILE, "train")["run_id"]
    holdout = read_holdout(p)
    holdout_info = holdout_span(holdout, contract)
    slicing = slice_rows(holdout, contract)
    if not contract.slices:
        log.info("no slice checks: dataset.slices is empty")

    tracking.setup_mlflow(p.mlflow, root)
    client = mlflow.MlflowClient()
    before = alias_version(client, name, CHAMPION)
    version = register(client, name, run_id, meta.threshold)
    scores = registered_scores(
        client, name, version.version, holdout, booster, contract, meta.calibration
    )
    ours = scorecard(holdout, scores, meta.threshold, contract, slicing)
    compared = _compare_with_champion(client, name, before, version, holdout, contract, slicing)
    infra = validate(p, client, version.version, holdout, root)
    decision = decide(ours, compared.scorecard, cfg, compared.no_champion, infra.checks)
    if decision.promote and compared.scorecard is not None and cfg.rollout.require_shadow:
        decision = Decision(False, decision.checks, [*decision.reasons, SHADOW_FIRST], held=True)
    candidate_info = {
        "version": int(version.version),
        "run_id": run_id,
        "threshold": meta.threshold,
        "calibration": meta.calibration.method,
        "metrics": ours.overall,
        "slices": ours.slices,
    }
    report = _report(decision, candidate_info, compared.info, holdout_info, cfg)
    report["infra_validation"] = infra.figures
    for key, value in _version_tags(p, root, report, decision).items():
        client.set_model_version_tag(name, version.version, key, _tag_value(value))
    client.set_registered_model_alias(name, CANDIDATE, version.version)
    if decision.promote and compared.champion is not None:
        client.set_model_version_tag(
            name, version.version, "previous_champion", compared.champion.version
        )
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, version.version)
    after = alias_version(client, name, CHAMPION)
    report["champion_after"] = int(after.version) if after is not None else None
    write_json(report, p.paths.reports / REPORT_FILE)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_artifact(str(p.paths.reports / REPORT_FILE), artifact_path="promotion")
        mlflow.set_tag("promotion.decision", report["decision"])
    log.info("%s version %s of %r: %s", report["decision"], version.version, name, decision.reasons)
    return report
