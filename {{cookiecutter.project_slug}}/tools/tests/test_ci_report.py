"""The pull-request report (tools/ci_report.py): plot summaries from
`dvc plots diff --json`, the markdown, and its command line."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tools.ci_report import (
    MARKER,
    ReportError,
    app,
    github_run_url,
    render,
    summarize_plot,
    summarize_plots,
    write_report,
)


def vega(x: dict[str, str], y: dict[str, str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"title": {"text": "A plot"}, "data": {"values": rows}, "encoding": {"x": x, "y": y}}


QUANT = {"type": "quantitative"}


def curve(rev: str, points: list[tuple[float, float]]) -> list[dict[str, Any]]:
    return [{"fpr": str(x), "tpr": str(y), "rev": rev} for x, y in points]


def test_a_changed_curve_is_read_at_quantiles_of_x() -> None:
    old = curve("main", [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0)])
    new = curve("workspace", [(0.0, 0.0), (0.5, 0.7), (1.0, 1.0)])
    content = vega({**QUANT, "field": "fpr"}, {**QUANT, "field": "tpr"}, old + new)
    plot = summarize_plot("roc.csv", content, "main")
    assert plot.status == "changed"
    assert plot.header == ["tpr at", "main", "workspace", "change"]
    assert ["fpr = 0.5", "0.5", "0.7", "+0.2"] in plot.rows


def test_identical_data_is_unchanged_and_missing_base_is_new() -> None:
    rows = curve("main", [(0.0, 0.1), (1.0, 0.9)]) + curve("workspace", [(0.0, 0.1), (1.0, 0.9)])
    content = vega({**QUANT, "field": "fpr"}, {**QUANT, "field": "tpr"}, rows)
    assert summarize_plot("roc.csv", content, "main").status == "unchanged"
    only_new = vega({**QUANT, "field": "fpr"}, {**QUANT, "field": "tpr"}, rows[2:])
    assert summarize_plot("roc.csv", only_new, "main").status == "new"
    only_old = vega({**QUANT, "field": "fpr"}, {**QUANT, "field": "tpr"}, rows[:2])
    assert summarize_plot("roc.csv", only_old, "main").status == "removed"


def test_bars_are_compared_per_category_and_confusion_cells_counted() -> None:
    bars = [
        {"feature": "a", "gain": "3", "rev": "main"},
        {"feature": "a", "gain": "5", "rev": "workspace"},
        {"feature": "b", "gain": "1", "rev": "workspace"},
    ]
    content = vega({**QUANT, "field": "gain"}, {"type": "nominal", "field": "feature"}, bars)
    plot = summarize_plot("importance.csv", content, "main")
    assert plot.rows == [["a", "3", "5", "+2"], ["b", "-", "1", "-"]]

    cells = [
        {"actual": "1", "predicted": "1", "rev": "main"},
        {"actual": "1", "predicted": "0", "rev": "workspace"},
        {"actual": "1", "predicted": "1", "rev": "workspace"},
        {"actual": "1", "predicted": "1", "rev": "workspace"},
    ]
    nominal = {"type": "nominal"}
    spec = {
        "title": "Confusion",
        "data": {"values": cells},
        "spec": {
            "encoding": {
                "x": {**nominal, "field": "actual"},
                "y": {**nominal, "field": "predicted"},
            }
        },
    }
    plot = summarize_plot("confusion.csv", spec, "main")
    assert plot.rows == [
        ["actual=1, predicted=0", "0", "1", "+1"],
        ["actual=1, predicted=1", "1", "2", "+1"],
    ]


def test_render_starts_with_the_marker_and_lists_only_changed_plots() -> None:
    base = "origin/main"
    rows = curve(base, [(0.0, 0.1), (1.0, 0.9)]) + curve("workspace", [(0.0, 0.2), (1.0, 0.9)])
    same = curve(base, [(0.0, 0.1)]) + curve("workspace", [(0.0, 0.1)])
    enc = ({**QUANT, "field": "fpr"}, {**QUANT, "field": "tpr"})
    plots = summarize_plots(
        {
            "data": {
                "changed.csv": [{"type": "vega", "content": vega(*enc, rows)}],
                "same.csv": [{"type": "vega", "content": {**vega(*enc, same), "title": "Same"}}],
            }
        },
        "origin/main",
    )
    text = render("origin/main", "| metrics table |", "", plots, "https://ci.example/run/1")
    assert text.startswith(MARKER)
    assert "| metrics table |" in text
    assert "No parameter differs from `origin/main`." in text
    assert "1 of 2 plots changed." in text
    assert "`changed.csv`" in text and "`same.csv`" not in text
    assert "Unchanged: Same." in text
    assert "[this run](https://ci.example/run/1)" in text


def test_run_url_only_inside_github_actions() -> None:
    assert github_run_url({}) is None
    env = {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_RUN_ID": "7",
    }
    assert github_run_url(env) == "https://github.com/o/r/actions/runs/7"


def test_an_unknown_base_revision_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run(["git", "init", "--quiet"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ReportError, match="fetch-depth: 0"):
        write_report("origin/nope", tmp_path / "report.md", None)
    done = CliRunner().invoke(app, ["--base", "origin/nope", "--out", str(tmp_path / "r.md")])
    assert done.exit_code == 1
    assert "ci-report failed" in done.output and "fetch-depth: 0" in done.output
