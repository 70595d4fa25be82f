"""reports/evaluation.html: the page escapes what it shows, and a real headless Chromium
renders it from disk with its metrics, charts and one table row per slice."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_frame
from {{ cookiecutter.package_name }}.evaluation_report import render, weakest_first, write_report
from {{ cookiecutter.package_name }}.metrics import Evaluation, evaluate, write_reports

from conftest import training_frame

HOSTILE = '<script>alert("x")</script>&'


def evaluation_of(contract: DatasetContract, tiny_window) -> Evaluation:
    """An evaluation of rows built from `contract`, its first numeric column binned and
    crossed with its first slice column, with scores that carry some signal."""
    if not contract.numeric:
        pytest.skip("the contract has no numeric column to bin")
    numeric = next(iter(contract.numeric))
    declared = {
        **contract.model_dump(),
        "slice_bins": {numeric: 3},
        "slice_crosses": [[contract.slices[0], numeric]] if contract.slices else [],
    }
    contract = DatasetContract.model_validate(declared)
    rows = training_frame(contract_frame(contract, tiny_window.dates()[:3], 300, seed=5), contract)
    y = rows[contract.label.column].to_numpy()
    scores = np.clip(0.35 * y + np.random.default_rng(1).random(len(y)) * 0.65, 0, 1)
    shap = {name: 0.1 * (i + 1) for i, name in enumerate(contract.feature_columns[:6])}
    return evaluate(
        rows.reset_index(drop=True), scores, 0.5, 0.2, {}, contract, shap=shap, min_slice_rows=40
    )


def test_the_page_escapes_every_string_from_the_data(contract, tiny_window) -> None:
    evaluation = evaluation_of(contract, tiny_window)
    name, values = next(iter(evaluation.slices.items()))
    hostile = dataclasses.replace(
        evaluation,
        slices={**evaluation.slices, HOSTILE: values},
        shap=evaluation.shap.assign(feature=[HOSTILE, *evaluation.shap["feature"][1:]]),
    )
    page = render(hostile, f"Evaluation of {HOSTILE}", {"model": HOSTILE})
    assert HOSTILE not in page
    assert (
        page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;") == 5
    )  # title, heading, context, slice, feature
    assert page.count("<script>") == 1  # the page's own sorter only
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert name in page


def test_slices_are_listed_weakest_first(contract, tiny_window) -> None:
    evaluation = evaluation_of(contract, tiny_window)
    order = weakest_first(evaluation)
    assert sorted(order) == sorted(evaluation.slices)
    large = [n for n in order if evaluation.slices[n]["rows"] >= evaluation.min_slice_rows]
    aucs = [evaluation.slices[n]["roc_auc"] for n in large]
    defined = [a for a in aucs if a is not None]
    assert defined == sorted(defined) and aucs[: len(defined)] == defined
    assert order[: len(large)] == large  # slices too small for the gaps come last


@pytest.mark.e2e
def test_the_report_renders_in_headless_chromium(
    any_contract, tiny_window, chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    evaluation = evaluation_of(any_contract, tiny_window)
    written = write_reports(evaluation, tmp_path)
    report = write_report(evaluation, tmp_path / "evaluation.html", "Evaluation", {"model": "m"})
    slices = json.loads(written["slices"].read_text())["slices"]
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report.as_uri())
        rows = page.locator("#slices tbody tr")
        assert rows.count() == len(slices)
        first = rows.nth(0).locator("td").nth(0).inner_text()
        assert first == weakest_first(evaluation)[0]
        metrics = page.locator("#metrics").inner_text()
        assert f"{evaluation.metrics['roc_auc']:.4f}" in metrics
        assert "slice_recall_gap" in metrics
        assert page.locator("svg").count() == 4  # ROC, PR, reliability, SHAP
        assert page.locator("#gaps li").count() == 2
        rows_header = page.locator("#slices th", has_text="rows").first
        rows_header.click()  # the inline sorter: fewest rows first
        shown = [
            float(t) for t in page.locator("#slices tbody tr td:nth-child(3)").all_inner_texts()
        ]
        assert shown == sorted(shown) and len(shown) == len(slices)
        page.screenshot(path=str(tmp_path / "evaluation.png"), full_page=True)
        browser.close()
    assert problems == []
    assert requests == [report.as_uri()]  # nothing fetched: no server, no network
    assert (tmp_path / "evaluation.png").stat().st_size > 10_000
