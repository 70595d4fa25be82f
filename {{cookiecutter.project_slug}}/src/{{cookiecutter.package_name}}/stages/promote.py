"""Stage `promote`: register the trained model as `candidate` in the MLflow registry;
it becomes `champion` only if it passes the promotion gate (promotion.py)."""

from __future__ import annotations

from typing import Any

from ..config import Params
from ..logs import console
from ..promotion import promote


def run(p: Params) -> dict[str, Any]:
    """Run the gate, print the decision and its reasons, return the report (promotion.json)."""
    report = promote(p)
    candidate = report["candidate"]
    metric = report["primary_metric"]
    console.print(
        f"[bold]{report['decision']}[/]: version {candidate['version']} "
        f"({metric} {candidate['metrics'][metric]:.4f} on the holdout "
        f"{report['holdout']['start']}..{report['holdout']['end']}); "
        f"champion is version {report['champion_after']}",
        highlight=False,
    )
    for reason in report["reasons"]:
        console.print(f"  - {reason}", highlight=False)
    return report
