"""One rule of the promotion gate and its outcome: promotion.py judges the metrics,
infra_validation.py the candidate served in-process; `decide` (promotion.py) weighs both."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One rule of the gate. `passed` is None when the rule could not apply (skipped)."""

    name: str
    passed: bool | None
    value: float | None
    required: float | None
    detail: str
    baseline: float | None = None  # lift checks: the positive rate the floor is a multiple of
