"""The Airflow UI as a person sees it: headless Chromium (Playwright, the system's
chromium) logs in through the real login page and looks at the DAG list, the graph and
grid of a DAG, a run's task states and a stage's docs. Screenshots go to `artifacts`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class UiView:
    dag_list: set[str]  # of the DAG ids asked for, those the DAG list shows
    grid_tasks: set[str]  # of the stages, those the grid lists
    graph_nodes: set[str]  # of the stages, those the graph draws
    edges: dict[str, int] = field(default_factory=dict)  # edge test id -> how many drawn
    run_states: dict[str, str] = field(default_factory=dict)  # task -> the state shown
    stage_docs: str = ""  # the docs text shown for the stage asked for


def look_at_the_ui(
    base_url: str,
    password: str,
    chromium: str,
    dag_id: str,
    stages: Sequence[str],
    artifacts: Path,
    *,
    dags: Sequence[str] = (),
    edges: Sequence[str] = (),
    run_id: str | None = None,
    run_states: Mapping[str, str] | None = None,
    docs_of: str = "train",
) -> UiView:
    """Log in as admin and look; `run_states` (task -> state label, e.g. "Success") are
    waited for on the page of `run_id`."""
    from playwright.sync_api import sync_playwright

    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(f"{base_url}/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", password)
        page.screenshot(path=str(artifacts / "1-login.png"))
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")

        page.goto(f"{base_url}/dags")
        page.get_by_text(dag_id, exact=True).first.wait_for()
        listed = {d for d in (dag_id, *dags) if page.get_by_text(d, exact=True).count()}
        page.screenshot(path=str(artifacts / "2-dag-list.png"))

        page.goto(f"{base_url}/dags/{dag_id}")
        page.get_by_test_id(f"task-{stages[0]}").wait_for()
        grid = {s for s in stages if page.get_by_test_id(f"task-{s}").count()}
        page.get_by_label("Show Graph (Press g)").click()
        page.get_by_test_id(f"rf__node-{stages[-1]}").wait_for()
        page.screenshot(path=str(artifacts / "3-graph.png"))
        nodes = {s for s in stages if page.get_by_test_id(f"rf__node-{s}").count()}
        drawn = {e: page.get_by_test_id(f"rf__edge-{e}").count() for e in edges}

        shown: dict[str, str] = {}
        if run_id is not None:
            page.goto(f"{base_url}/dags/{dag_id}/runs/{run_id}")
            for task, state in (run_states or {}).items():
                row = page.get_by_role("row").filter(has_text=task)
                row.get_by_text(state, exact=True).first.wait_for()
                shown[task] = state
            page.screenshot(path=str(artifacts / "4-run.png"))

        page.goto(f"{base_url}/dags/{dag_id}/tasks/{docs_of}")
        page.get_by_test_id("markdown-button").click()
        page.get_by_text("DVC stage", exact=False).first.wait_for()
        docs = page.locator("body").inner_text()
        page.screenshot(path=str(artifacts / "5-stage-docs.png"))
        browser.close()
    return UiView(listed, grid, nodes, drawn, shown, docs)
