"""Each baked project installs, lints clean and passes its own test suite
(which runs the real `dvc repro` end to end on small data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import VARIANTS, run


@pytest.mark.parametrize("name", list(VARIANTS))
def test_baked_project_lints_clean(set_up: dict[str, Path], name: str) -> None:
    run(["make", "lint"], set_up[name])


# Each slow end-to-end path runs on one bake only (the time budget). The default bake runs
# the demo: the drift-monitoring DAG and the benchmark's end-to-end run. The custom bake
# brings its own table (the breast-cancer biopsies) and runs the continuous-training DAG
# (its Airflow runs on generated rows of that contract: tests/pipeline_helpers.py
# generated_copy), so both data paths meet a real scheduler run. The custom bake's tests
# already run on a contract unlike the demo's: the repeats on the second contract
# (tests/other_contracts.py, marked other_contract) run on the default bake only.
# What each bake runs of its own suite, so the whole template test stays near 30 minutes
# on 2 cores. The custom bake (Redis) runs the CeleryExecutor run (with the UI in
# Chromium) and leaves out what does not depend on the project's answers. Left to a
# generated project's own `make test`: the LocalExecutor backfill and the `airflow dags
# test` runs of continuous_training (the same workspace code, another way to run it).
PYTEST_ARGS = {
    "default": "--ignore=tests/e2e/test_continuous_training_dag.py "
    "--ignore=tests/e2e/test_scheduled_runs.py",
    "custom": '-m "not bench and not other_contract and not local_executor" '
    "--ignore=tests/e2e/test_continuous_training_dag.py "
    "--ignore=tests/e2e/test_drift_monitoring_dag.py "
    "--ignore=tests/unit/test_dags.py "
    "--ignore=tests/unit/test_notifications.py "
    "--ignore=tests/unit/test_workspaces.py "
    "--ignore=tests/unit/test_kubernetes_pods.py "
    "--ignore=tests/unit/test_local_airflow.py",
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_baked_project_passes_its_own_tests(set_up: dict[str, Path], name: str) -> None:
    # a baked suite takes 15-30 min on 2 cores; the bound only catches a hang
    done = run(["make", "test", f"PYTEST_ARGS={PYTEST_ARGS[name]}"], set_up[name], timeout=3000)
    assert " passed" in done.stdout
    assert " failed" not in done.stdout
    assert " skipped" not in done.stdout, "every test of the baked project runs here"


def test_default_project_cli_explains_itself(set_up: dict[str, Path]) -> None:
    project = set_up["default"]
    done = run([str(project / ".venv/bin/python"), "-m", "churn_model", "--help"], project)
    for command in ("ingest", "featurize", "training-set", "train", "evaluate"):
        assert command in done.stdout
