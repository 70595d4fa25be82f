"""The pull-request report: metrics, params and plots of this checkout against a base revision.

CI posts it as one comment on the pull request (updated on every push), as CML
does for DVC projects, without an external service: `dvc metrics diff` and
`dvc params diff` as markdown tables, and every plot whose data changed
summarised as a table (curves read at a few points, bars per category,
confusion-matrix counts). The interactive plots of both revisions
(`dvc plots diff`) are rendered to HTML for the CI run's artifacts.
"""

from __future__ import annotations

import bisect
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

# The CI workflow finds its own comment by this marker (keep the two in step).
MARKER = "<!-- ci-report:dvc -->"
HEAD = "workspace"
CURVE_POINTS = (0.1, 0.3, 0.5, 0.7, 0.9)  # quantiles of x at which curves are compared
TOP_BARS = 10


class ReportError(RuntimeError):
    """A DVC diff or the base revision failed: shown as one paragraph, exit 1."""


@dataclass
class PlotSummary:
    path: str
    title: str
    status: str  # "changed", "unchanged", "new", "removed"
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def _change(base: float | None, head: float | None) -> str:
    if base is None or head is None:
        return "-"
    return f"{head - base:+.4g}"


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _encoding(content: dict[str, Any]) -> dict[str, Any]:
    return content.get("encoding") or content.get("spec", {}).get("encoding") or {}


def _title(content: dict[str, Any], path: str) -> str:
    title = content.get("title")
    if isinstance(title, dict):
        title = title.get("text")
    return str(title) if title else path


def _curve_at(points: list[tuple[float, float]], x: float) -> float | None:
    """Linear interpolation of y at x on points sorted by x (None outside the curve)."""
    if not points or x < points[0][0] or x > points[-1][0]:
        return None
    xs = [p[0] for p in points]
    i = bisect.bisect_right(xs, x)
    if i == 0:
        return points[0][1]
    if i == len(points) or xs[i - 1] == x:
        return points[i - 1][1]
    (x0, y0), (x1, y1) = points[i - 1], points[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize_plot(path: str, content: dict[str, Any], base: str) -> PlotSummary:
    """Compare the data of one plot between `base` and the workspace."""
    title = _title(content, path)
    encoding = _encoding(content)
    x, y = encoding.get("x", {}), encoding.get("y", {})
    xf, yf = x.get("field"), y.get("field")
    values = content.get("data", {}).get("values", [])
    by_rev: dict[str, list[dict[str, Any]]] = {base: [], HEAD: []}
    for row in values:
        if row.get("rev") in by_rev:
            by_rev[row["rev"]].append(row)
    old, new = by_rev[base], by_rev[HEAD]

    def key(rows: list[dict[str, Any]]) -> Counter[tuple[Any, Any]]:
        return Counter((r.get(xf), r.get(yf)) for r in rows)

    if not new:
        return PlotSummary(path, title, "removed")
    if old and key(old) == key(new):
        return PlotSummary(path, title, "unchanged")
    status = "changed" if old else "new"
    quantitative = {x.get("type"), y.get("type")} == {"quantitative"}
    nominal = x.get("type") == "nominal" and y.get("type") == "nominal"
    if quantitative:
        header, rows = _curve_table(old, new, xf, yf, base)
    elif nominal:
        header, rows = _count_table(old, new, xf, yf, base)
    else:
        category, measure = (yf, xf) if x.get("type") == "quantitative" else (xf, yf)
        header, rows = _bar_table(old, new, category, measure, base)
    return PlotSummary(path, title, status, header, rows)


def _curve_table(
    old: list[dict[str, Any]], new: list[dict[str, Any]], xf: str, yf: str, base: str
) -> tuple[list[str], list[list[str]]]:
    def points(rows: list[dict[str, Any]]) -> list[tuple[float, float]]:
        pairs = ((_number(r.get(xf)), _number(r.get(yf))) for r in rows)
        return sorted((a, b) for a, b in pairs if a is not None and b is not None)

    old_points, new_points = points(old), points(new)
    xs = [p[0] for p in new_points]
    rows = []
    for q in CURVE_POINTS:
        at = _quantile(xs, q)
        before, after = _curve_at(old_points, at), _curve_at(new_points, at)
        rows.append([f"{xf} = {_fmt(at)}", _fmt(before), _fmt(after), _change(before, after)])
    return [f"{yf} at", base, HEAD, "change"], rows


def _bar_table(
    old: list[dict[str, Any]], new: list[dict[str, Any]], category: str, measure: str, base: str
) -> tuple[list[str], list[list[str]]]:
    before = {r.get(category): _number(r.get(measure)) for r in old}
    after = {r.get(category): _number(r.get(measure)) for r in new}
    ranked = sorted(after, key=lambda k: -(after[k] or 0.0))[:TOP_BARS]
    rows = [
        [str(k), _fmt(before.get(k)), _fmt(after[k]), _change(before.get(k), after[k])]
        for k in ranked
    ]
    return [f"{category} ({measure}, top {TOP_BARS})", base, HEAD, "change"], rows


def _count_table(
    old: list[dict[str, Any]], new: list[dict[str, Any]], xf: str, yf: str, base: str
) -> tuple[list[str], list[list[str]]]:
    before = Counter((r.get(xf), r.get(yf)) for r in old)
    after = Counter((r.get(xf), r.get(yf)) for r in new)
    rows = []
    for pair in sorted(set(before) | set(after), key=str):
        b, a = before.get(pair, 0), after.get(pair, 0)
        rows.append([f"{xf}={pair[0]}, {yf}={pair[1]}", str(b), str(a), f"{a - b:+d}"])
    return ["cell (count)", base, HEAD, "change"], rows


def summarize_plots(plots: dict[str, Any], base: str) -> list[PlotSummary]:
    """All plots of `dvc plots diff <base> --json`, in the order DVC lists them."""
    out = []
    for path, entries in plots.get("data", {}).items():
        for entry in entries:
            if entry.get("type") == "vega":
                out.append(summarize_plot(path, entry["content"], base))
    return out


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render(
    base: str,
    metrics_md: str,
    params_md: str,
    plots: list[PlotSummary],
    run_url: str | None = None,
) -> str:
    """The markdown of the report (the comment body)."""
    parts = [MARKER, f"## Pipeline report: this change against `{base}`", ""]
    parts += ["### Metrics", metrics_md.strip() or f"No metric differs from `{base}`.", ""]
    parts += ["### Parameters", params_md.strip() or f"No parameter differs from `{base}`.", ""]
    changed = [p for p in plots if p.status in {"changed", "new"}]
    parts += ["### Plots", f"{len(changed)} of {len(plots)} plots changed.", ""]
    for plot in changed:
        note = " (new: not on the base revision)" if plot.status == "new" else ""
        parts += [f"#### {plot.title}{note}", f"`{plot.path}`", ""]
        if plot.rows:
            parts += [_table(plot.header, plot.rows), ""]
    same = [p.title for p in plots if p.status == "unchanged"]
    if same:
        parts += ["Unchanged: " + ", ".join(same) + ".", ""]
    gone = [p.path for p in plots if p.status == "removed"]
    if gone:
        parts += ["Removed in this change: " + ", ".join(f"`{p}`" for p in gone) + ".", ""]
    where = f"the `dvc-report` artifact of [this run]({run_url})" if run_url else "`dvc_plots/`"
    parts += [
        f"Interactive plots of both revisions: {where} (`dvc plots diff {base}` locally).",
        "",
    ]
    return "\n".join(parts)


def github_run_url(env: dict[str, str] | None = None) -> str | None:
    """The Actions run this report was made in, when made in GitHub Actions."""
    env = dict(os.environ) if env is None else env
    keys = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    if not all(env.get(k) for k in keys):
        return None
    server, repository, run_id = (env[k] for k in keys)
    return f"{server}/{repository}/actions/runs/{run_id}"


def _dvc(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ReportError(f"`dvc {' '.join(args)}` failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def check_revision(base: str) -> None:
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", base + "^{commit}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ReportError(
            f"base revision {base!r} not found in this git checkout: fetch it "
            "(in GitHub Actions: actions/checkout with fetch-depth: 0) or pass BASE=<branch or commit>"
        )


def write_report(base: str, out: Path, html_dir: Path | None) -> Path:
    """Run the DVC diffs against `base` and write the markdown report to `out`."""
    check_revision(base)
    metrics_md = _dvc("metrics", "diff", "--md", base)
    params_md = _dvc("params", "diff", "--md", base)
    plots = summarize_plots(json.loads(_dvc("plots", "diff", base, "--json")), base)
    if html_dir is not None:
        _dvc("plots", "diff", base, "--out", str(html_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(base, metrics_md, params_md, plots, github_run_url()))
    return out


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    base: str = typer.Option(..., "--base", help="Git revision to compare with (origin/main)."),
    out: Path = typer.Option(Path("reports/ci/report.md"), "--out", help="Markdown file to write."),
    html: Path | None = typer.Option(
        None, "--html", help="Also render both revisions' plots to this folder (index.html)."
    ),
) -> None:
    """`make ci-report`: metrics, params and changed plots against BASE as markdown
    (the CI pull-request comment)."""
    try:
        path = write_report(base, out, html)
    except ReportError as exc:
        typer.echo(f"ci-report failed: {exc}", err=True)
        raise typer.Exit(1) from None
    plots = f"; plots: {html}/index.html" if html else ""
    typer.echo(f"report against {base}: {path}{plots}")


if __name__ == "__main__":
    app()
