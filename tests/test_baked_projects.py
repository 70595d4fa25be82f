"""Each baked project installs, lints clean and passes its own test suite
(which runs the real `dvc repro` end to end on small data)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import VARIANTS, project_env, run

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
    "default": "--durations=25 --ignore=tests/e2e/test_continuous_training_dag.py "
    "--ignore=tests/e2e/test_scheduled_runs.py",
    "custom": '--durations=25 -m "not bench and not other_contract and not local_executor" '
    "--ignore=tests/e2e/test_continuous_training_dag.py "
    "--ignore=tests/e2e/test_drift_monitoring_dag.py "
    "--ignore=tests/unit/test_dags.py "
    "--ignore=tests/unit/test_notifications.py "
    "--ignore=tests/unit/test_workspaces.py "
    "--ignore=tests/unit/test_kubernetes_pods.py "
    "--ignore=tests/unit/test_local_airflow.py",
}
SUITE_TIMEOUT = 3000  # seconds; a baked suite takes 15-20 min on 2 cores: this only catches a hang
DURATIONS = re.compile(r"^=+ slowest .*?(?=^=+ .*(passed|failed|error))", re.M | re.S)
SUMMARY = re.compile(r"^=+ .*\b(passed|failed|error)\b.* in [\d.]+s.*=+$", re.M)


@dataclass
class Suite:
    """A baked project's own `make test`, running in the background."""

    name: str
    process: subprocess.Popen[bytes]
    stdout: Path  # pytest's report
    stderr: Path  # what the processes print besides (e.g. at interpreter exit)
    started: float

    def wait(self) -> tuple[int, str, str]:
        """Its exit code, stdout and stderr; kills it (and what it started) after
        SUITE_TIMEOUT."""
        left = SUITE_TIMEOUT - (time.monotonic() - self.started)
        try:
            code = self.process.wait(timeout=max(left, 1))
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            code = -1
        return code, *(f.read_text(errors="replace") for f in (self.stdout, self.stderr))


@pytest.fixture(scope="session")
def baked_suites(
    set_up: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Suite]]:
    """Every baked project's `make test`, all started at once. The suites spend most of
    their time waiting (servers, schedulers, subprocess start-ups: about 60 % of one core
    each), so side by side on 2 cores they take little more than the longest one alone,
    and the template's other tests run meanwhile (their checks are marked collect_last)."""
    logs = tmp_path_factory.mktemp("suites")
    suites = {}
    for name in VARIANTS:
        stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                ["make", "test", f"PYTEST_ARGS={PYTEST_ARGS[name]}"],
                cwd=set_up[name],
                env=project_env(),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        suites[name] = Suite(name, process, stdout, stderr, time.monotonic())
    yield suites
    for suite in suites.values():
        if suite.process.poll() is None:
            os.killpg(suite.process.pid, signal.SIGKILL)
            suite.process.wait()


@pytest.mark.usefixtures("baked_suites")  # the suites start first and run meanwhile
@pytest.mark.parametrize("name", list(VARIANTS))
def test_baked_project_lints_clean(set_up: dict[str, Path], name: str) -> None:
    run(["make", "lint"], set_up[name])


@pytest.mark.collect_last
@pytest.mark.parametrize("name", list(VARIANTS))
def test_baked_project_passes_its_own_tests(
    baked_suites: dict[str, Suite], name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output, errors = baked_suites[name].wait()
    summaries = [found.group(0) for found in SUMMARY.finditer(output)]
    slowest = DURATIONS.search(output)
    with capsys.disabled():  # where a baked suite's time goes, in the template's own output
        print(f"\n--- {name} bake's suite: {summaries[-1] if summaries else '(no summary)'}")
        print(slowest.group(0) if slowest else "(no durations)")
    assert code == 0, (
        f"make test failed in the {name} bake (exit {code})\n--- stdout (tail)\n"
        f"{output[-12000:]}\n--- stderr (tail)\n{errors[-4000:]}"
    )
    assert " passed" in output
    assert " failed" not in output
    assert " skipped" not in output, "every test of the baked project runs here"


def test_default_project_cli_explains_itself(set_up: dict[str, Path]) -> None:
    project = set_up["default"]
    done = run([str(project / ".venv/bin/python"), "-m", "churn_model", "--help"], project)
    for command in ("ingest", "featurize", "training-set", "train", "evaluate"):
        assert command in done.stdout
