"""The rules of the promotion gate and their outcome: promotion.py judges the metrics with
these, infra_validation.py the candidate served in-process; `decide` (promotion.py) weighs
both. The slice rules: `promote.slice_minimums` and `slice_minimum_lifts` in every slice,
and `promote.max_slice_gap`, the largest recall or FPR gap between two slices of one
dimension (slices.py), all among slices of `promote.min_slice_rows` rows or more (the
minimums also need `promote.min_slice_positives` rows of each class)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .config import PromotionConfig
from .metrics import lift_floor
from .slices import largest_gap, number


@dataclass(frozen=True)
class Check:
    """One rule of the gate. `passed` is None when the rule could not apply (skipped)."""

    name: str
    passed: bool | None
    value: float | None
    required: float | None
    detail: str
    baseline: float | None = None  # lift checks: the positive rate the floor is a multiple of


def floor_check(name: str, value: float | None, floor: float) -> Check:
    """`value` >= `floor`; a NaN or None value (undefined on the rows) fails."""
    value = number(value)
    if math.isnan(value):
        return Check(name, False, None, floor, "not computable (one class only in the rows)")
    verdict = ">=" if value >= floor else "<"
    return Check(name, value >= floor, value, floor, f"{value:.4f} {verdict} {floor:.4f}")


def lift_check(name: str, metric: str, values: dict[str, Any], lift: float) -> Check:
    """`metric` >= `lift` x the positive rate of the rows `values` were measured on."""
    value, rate = number(values.get(metric)), number(values.get("positive_rate"))
    if math.isnan(rate):
        return Check(name, False, None, None, "not computable (no positive rate)")
    floor = lift_floor(lift, rate)
    rule = f"{lift} x positive rate {rate:.4f} ({floor:.4f})"
    if math.isnan(value):
        return Check(name, False, None, floor, "not computable (one class only in the rows)", rate)
    verdict = ">=" if value >= floor else "<"
    detail = f"{metric} {value:.4f} {verdict} {rule}"
    if floor > 1:
        detail += ": unreachable, lower the lift or set an absolute minimum instead"
    return Check(name, value >= floor, value, floor, detail, rate)


def slice_checks(slices: dict[str, dict[str, Any]], cfg: PromotionConfig) -> list[Check]:
    """promote.slice_minimum_lifts and slice_minimums in every slice with enough rows."""
    if not slices:
        if not (cfg.slice_minimum_lifts or cfg.slice_minimums or cfg.max_slice_gap):
            return []
        return [Check("slices", None, None, None, "skipped: no slices (dataset.slices is empty)")]
    checks = []
    for slice_name, values in sorted(slices.items()):
        skipped = too_small(values, cfg)
        for name, lift in sorted(cfg.slice_minimum_lifts.items()):
            check_name = f"slice.{slice_name}.lift.{name}"
            if skipped:
                checks.append(Check(check_name, None, values.get(name), None, skipped))
            else:
                checks.append(lift_check(check_name, name, values, lift))
        for name, floor in sorted(cfg.slice_minimums.items()):
            check_name = f"slice.{slice_name}.{name}"
            if skipped:
                checks.append(Check(check_name, None, values.get(name), floor, skipped))
            else:
                checks.append(floor_check(check_name, values.get(name), floor))
    return checks


def too_small(values: dict[str, Any], cfg: PromotionConfig) -> str | None:
    """Why a slice is too small for its minimums to mean anything, or None. Besides rows, a
    ranking metric or a recall on a handful of positives (or negatives) is mostly noise."""
    rows = int(values.get("rows") or 0)
    if rows < cfg.min_slice_rows:
        return f"skipped: {rows} rows < min_slice_rows {cfg.min_slice_rows}"
    rate = values.get("positive_rate")
    positives = round(rows * float(rate)) if rate is not None else None
    if positives is not None and min(positives, rows - positives) < cfg.min_slice_positives:
        return (
            f"skipped: {positives} positive and {rows - positives} negative rows, "
            f"fewer than min_slice_positives {cfg.min_slice_positives} of one class"
        )
    return None


def gap_checks(
    slices: dict[str, dict[str, Any]], dimensions: dict[str, list[str]], cfg: PromotionConfig
) -> list[Check]:
    """promote.max_slice_gap: per metric, the largest gap between two slices of one
    dimension (slices of min_slice_rows rows or more) <= its maximum. The detail names
    the two slices."""
    checks = []
    for metric, maximum in sorted((cfg.max_slice_gap or {}).items()):
        name = f"slice_gap.{metric}"
        if not slices:
            continue  # slice_checks reports that there are no slices
        gap = largest_gap(slices, dimensions, metric, cfg.min_slice_rows)
        if gap is None:
            why = f"skipped: no dimension has two slices of {cfg.min_slice_rows}+ rows with a {metric}"
            checks.append(Check(name, None, None, maximum, why))
            continue
        verdict = "<=" if gap["gap"] <= maximum else ">"
        detail = (
            f"{metric} gap {gap['gap']:.4f} {verdict} {maximum:.4f}: {gap['lowest']} "
            f"{gap['low']:.4f} vs {gap['highest']} {gap['high']:.4f} ({gap['dimension']}; "
            f"slices of {cfg.min_slice_rows}+ rows)"
        )
        checks.append(Check(name, gap["gap"] <= maximum, gap["gap"], maximum, detail))
    return checks
