"""reports/evaluation.html: one self-contained page of error analysis per evaluation.

The headline metrics beside the trivial baseline's, the ROC and precision-recall curves,
the reliability curve (calibration), the slices table sorted by weakness (lowest ROC AUC
first; slices too small for the gaps and slices without a ROC AUC last; a header click
sorts by another column) with the largest recall and FPR gaps, and the mean |SHAP| per
feature. It draws the same data evaluate writes to reports/plots/*.csv and
reports/slice_metrics.json. Charts are inline SVG, the sorting a few lines of inline
JavaScript: the file opens from disk in any browser, with no server and no network.
Every string from the data (slice values, feature names) is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .metrics import Evaluation
from .slices import SLICE_METRICS, number

REPORT_FILE = "evaluation.html"
WIDTH, HEIGHT, PAD = 320, 240, 36
HEADLINE = (
    "rows", "positive_rate", "roc_auc", "pr_auc", "precision", "recall", "f1", "threshold",
    "log_loss", "brier", "ece", "slice_recall_gap", "slice_fpr_gap",
)  # fmt: skip
SORTER = """
document.querySelectorAll("table.sortable th").forEach((th, column) => {
  th.addEventListener("click", () => {
    const body = th.closest("table").tBodies[0];
    const up = th.dataset.order !== "asc";
    th.dataset.order = up ? "asc" : "desc";
    const key = (row) => {
      const cell = row.cells[column];
      const value = cell.dataset.value;
      return value === undefined ? cell.textContent : parseFloat(value);
    };
    const rows = Array.from(body.rows).sort((a, b) => {
      const x = key(a), y = key(b);
      if (typeof x === "number" && typeof y === "number") {
        if (isNaN(x) !== isNaN(y)) return isNaN(x) ? 1 : -1;
        return up ? x - y : y - x;
      }
      return up ? String(x).localeCompare(String(y)) : String(y).localeCompare(String(x));
    });
    rows.forEach((row) => body.appendChild(row));
  });
});
"""
STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:28px}
table{border-collapse:collapse;font-size:.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3;cursor:pointer}td.name,th.name{text-align:left}
tr.small td{color:#888}tr.weak td{background:#fde8e8}
.charts{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}
figcaption{font-size:.85em;text-align:center}
svg text{font-size:10px}.note{color:#555;font-size:.85em}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, integer: bool = False) -> str:
    number_value = number(value) if not isinstance(value, str) else math.nan
    if math.isnan(number_value):
        return "n/a"
    return f"{int(number_value):d}" if integer else f"{number_value:.4f}"


def _svg_curve(frame: pd.DataFrame, x: str, y: str, title: str, diagonal: bool = False) -> str:
    """A line chart of `frame`'s columns x and y, both on [0, 1]."""
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def point(px: float, py: float) -> str:
        return f"{PAD + px * inner_w:.1f},{HEIGHT - PAD - py * inner_h:.1f}"

    points = " ".join(
        point(float(a), float(b))
        for a, b in zip(frame[x], frame[y], strict=True)
        if math.isfinite(float(a)) and math.isfinite(float(b))
    )
    parts = [
        f'<svg width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{_esc(title)}">',
        f'<rect x="{PAD}" y="{PAD}" width="{inner_w}" height="{inner_h}" fill="none" '
        'stroke="#999"/>',
    ]
    if diagonal:
        parts.append(
            f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{PAD}" '
            'stroke="#bbb" stroke-dasharray="4 3"/>'
        )
    parts.append(f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for tick in (0, 0.5, 1):
        parts.append(
            f'<text x="{PAD + tick * inner_w:.0f}" y="{HEIGHT - PAD + 14}" '
            f'text-anchor="middle">{tick}</text>'
            f'<text x="{PAD - 6}" y="{HEIGHT - PAD - tick * inner_h + 3:.0f}" '
            f'text-anchor="end">{tick}</text>'
        )
    parts.append(
        f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle">{_esc(x)}</text>'
        f'<text x="12" y="{HEIGHT / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {HEIGHT / 2:.0f})">{_esc(y)}</text></svg>'
    )
    return f"<figure>{''.join(parts)}<figcaption>{_esc(title)}</figcaption></figure>"


def _svg_bars(frame: pd.DataFrame, label: str, value: str, top: int = 20) -> str:
    """Horizontal bars of the `top` largest `value`s."""
    shown = frame.head(top)
    if shown.empty:
        return '<p class="note">No SHAP values (evaluate.shap_rows sampled no rows).</p>'
    row_h, label_w, bar_w = 18, 220, 380
    largest = max(float(shown[value].max()), 1e-12)
    parts = [
        f'<svg width="{label_w + bar_w + 70}" '
        f'height="{row_h * len(shown) + 8}" role="img" aria-label="mean |SHAP| per feature">'
    ]
    for i, (name, amount) in enumerate(zip(shown[label], shown[value], strict=True)):
        y = 4 + i * row_h
        width = bar_w * float(amount) / largest
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{_esc(name)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{width:.1f}" height="{row_h - 5}" '
            f'fill="#ff7f0e"/><text x="{label_w + width + 4:.1f}" y="{y + 12}">'
            f"{float(amount):.4f}</text>"
        )
    return "".join([*parts, "</svg>"])


def _headline(metrics: dict[str, Any]) -> str:
    baseline = metrics.get("baseline", {})
    rows = "".join(
        f'<tr><td class="name">{_esc(k)}</td><td data-value="{number(metrics.get(k))}">'
        f"{_fmt(metrics.get(k), k == 'rows')}</td><td>{_fmt(baseline.get(k)) if k in baseline else ''}"
        "</td></tr>"
        for k in HEADLINE
        if k in metrics
    )
    head = '<tr><th class="name">metric</th><th>model</th><th>trivial baseline</th></tr>'
    return f'<table id="metrics"><thead>{head}</thead><tbody>{rows}</tbody></table>'


def weakest_first(evaluation: Evaluation) -> list[str]:
    """Slice names, weakest first: lowest ROC AUC; too small for the gaps, or without a
    ROC AUC, last."""
    slices = evaluation.slices

    def key(name: str) -> tuple[bool, bool, float, str]:
        values = slices[name]
        auc = number(values.get("roc_auc"))
        small = number(values.get("rows")) < evaluation.min_slice_rows
        return (small, math.isnan(auc), auc if not math.isnan(auc) else 0.0, name)

    return sorted(slices, key=key)


def _slices_table(evaluation: Evaluation) -> str:
    dimension_of = {n: d for d, names in evaluation.slice_dimensions.items() for n in names}
    gap_slices = {
        g[end] for g in evaluation.slice_gaps.values() if g for end in ("lowest", "highest")
    }
    head = '<th class="name">slice</th><th class="name">dimension</th>' + "".join(
        f"<th>{_esc(m)}</th>" for m in SLICE_METRICS
    )
    rows = []
    for name in weakest_first(evaluation):
        values = evaluation.slices[name]
        small = number(values.get("rows")) < evaluation.min_slice_rows
        css = "small" if small else "weak" if name in gap_slices else ""
        cells = "".join(
            f'<td data-value="{number(values.get(m))}">{_fmt(values.get(m), m == "rows")}</td>'
            for m in SLICE_METRICS
        )
        rows.append(
            f'<tr class="{css}"><td class="name">{_esc(name)}</td>'
            f'<td class="name">{_esc(dimension_of.get(name, ""))}</td>{cells}</tr>'
        )
    return (
        f'<table id="slices" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _gaps(evaluation: Evaluation) -> str:
    items = []
    for metric, gap in evaluation.slice_gaps.items():
        if gap is None:
            items.append(f"<li>{_esc(metric)}: no dimension has two slices large enough</li>")
            continue
        items.append(
            f"<li><b>{_esc(metric)} gap {gap['gap']:.4f}</b> ({_esc(gap['dimension'])}): "
            f"{_esc(gap['lowest'])} {gap['low']:.4f} vs {_esc(gap['highest'])} "
            f"{gap['high']:.4f}</li>"
        )
    return f'<ul id="gaps">{"".join(items)}</ul>'


def render(evaluation: Evaluation, title: str, context: dict[str, Any] | None = None) -> str:
    """The page (see the module docstring); `context`: lines of provenance shown on top."""
    about = "".join(f"<li>{_esc(k)}: {_esc(v)}</li>" for k, v in (context or {}).items())
    small = (
        f"Gaps compare slices of {evaluation.min_slice_rows}+ rows (evaluate.min_slice_rows); "
        "greyed rows are smaller. Highlighted rows define a gap."
    )
    charts = "".join(
        [
            _svg_curve(evaluation.roc, "fpr", "tpr", "ROC curve", diagonal=True),
            _svg_curve(evaluation.pr, "recall", "precision", "Precision-recall"),
            _svg_curve(
                evaluation.reliability,
                "mean_score",
                "positive_rate",
                "Reliability (calibrated: on the diagonal)",
                diagonal=True,
            ),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{_esc(title)}</h1><ul class="note">{about}</ul>'
        f"<h2>Metrics (test days)</h2>{_headline(evaluation.metrics)}"
        f'<h2>Curves</h2><div class="charts">{charts}</div>'
        f"<h2>Slices, weakest first</h2>{_gaps(evaluation)}"
        f'<p class="note">{_esc(small)}</p>{_slices_table(evaluation)}'
        f"<h2>Mean |SHAP value| per feature (log-odds)</h2>"
        f"{_svg_bars(evaluation.shap, 'feature', 'mean_abs_shap')}"
        f"<script>{SORTER}</script></body></html>\n"
    )


def write_report(
    evaluation: Evaluation, path: Path, title: str, context: dict[str, Any] | None = None
) -> Path:
    """Write the page to `path` (see render)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(evaluation, title, context), encoding="utf-8")
    return path
