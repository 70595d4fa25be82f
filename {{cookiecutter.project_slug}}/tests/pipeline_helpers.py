"""Run the real pipeline in a throw-away copy of this project (used by the e2e tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from tools import scratch
from tools.scratch import edit_params as edit_params  # re-exported for the tests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SMALL_WINDOW_DAYS = 14  # days with known labels: 8 to train on, 3 to validate, 3 to test
SMALL_SOURCE = {"rows_per_day": 300, "population": 2000}


def env() -> dict[str, str]:
    """The environment a stage sees: this venv first on PATH, no progress bars."""
    out = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out.get('PATH', '')}"
    out["NO_PROGRESS"] = "1"
    return out


def run(
    args: list[str], cwd: Path, check: bool = True, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args,
        cwd=cwd,
        env={**env(), **(extra_env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
    return done


def copy_project(dest: Path, small: bool = True) -> Path:
    """A fresh git + DVC checkout of this project's files, with small data by default."""

    def shrink(p: dict[str, Any]) -> None:
        if p["ingest"]["source"] == "synthetic":  # a table you brought is used as it is
            # the newest horizon_days have no known label yet: train on SMALL_WINDOW_DAYS more
            p["data"]["window_days"] = SMALL_WINDOW_DAYS + p["dataset"]["label"]["horizon_days"]
            p["ingest"]["synthetic"].update(SMALL_SOURCE)
            p["split"].update({"valid_days": 3, "test_days": 3})
        p["train"].update({"num_boost_round": 60, "nthread": 2})

    return scratch.copy_project(PROJECT_ROOT, dest, shrink if small else None)


def generated_copy(dest: Path) -> Path:
    """A small copy whose ingest generates this project's contract (`ingest.source:
    synthetic`), so a test can add days, drift or a short delivery through
    `ingest.synthetic` (the Airflow DAG tests). A project on its own table gets, for
    those rows, the suites and data-relative settings `dataset init` would write."""
    from {{ cookiecutter.package_name }}.config import Window, load_params
    from {{ cookiecutter.package_name }}.dataset_init import settings, summarise
    from {{ cookiecutter.package_name }}.files import write_json
    from {{ cookiecutter.package_name }}.ingest_config import IngestConfig, SyntheticConfig
    from {{ cookiecutter.package_name }}.stages.ingest import conformed_batch
    from {{ cookiecutter.package_name }}.suite_bootstrap import contract_suites

    params = load_params(PROJECT_ROOT / "params.yaml")
    contract = params.dataset

    def generate(p: dict[str, Any]) -> None:
        p["data"]["window_days"] = SMALL_WINDOW_DAYS + contract.label.horizon_days
        p["split"].update({"valid_days": 3, "test_days": 3})
        p["train"].update({"num_boost_round": 60, "nthread": 2})
        # The 3 test days hold 900 rows: a slice of 50 positives has an AUC uncertain by
        # about +-0.05, so a slice floor would judge noise. The DAG runs need a first model
        # the gate promotes; the slice rules have their own tests (test_promotion.py).
        p["promote"]["min_slice_positives"] = SMALL_SOURCE["rows_per_day"]
        if params.ingest.source == "synthetic":  # the demo's settings fit its generator
            p["ingest"]["synthetic"].update(SMALL_SOURCE)
            return
        source = SyntheticConfig(**SMALL_SOURCE, seed=params.train.seed)
        p["ingest"]["source"] = "synthetic"
        p["ingest"]["synthetic"] = source.model_dump(mode="json")
        window = Window(end_date=params.window.end_date, days=p["data"]["window_days"])
        ingest = IngestConfig(synthetic=source)
        frame = pd.concat([conformed_batch(day, ingest, contract) for day in window.dates()])
        for dotted, values in settings(summarise(contract, frame)).items():
            section = p
            for key in dotted.split("."):
                section = section.setdefault(key, {})
            section.update(values)
        for name, suite in contract_suites(contract, frame, window.days).items():
            write_json(suite, dest / params.paths.expectations / f"{name}.json")

    return scratch.copy_project(PROJECT_ROOT, dest, generate)


def dvc(
    project: Path, *args: str, check: bool = True, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "dvc", *args], project, check=check, extra_env=extra_env)


MODULE_RECORDER = Path(__file__).resolve().parent / "e2e" / "module_recorder"


def module_recording_env(record: Path) -> dict[str, str]:
    """Environment under which every stage process records the package modules it imported
    (tests/e2e/module_recorder/sitecustomize.py) into `record`."""
    return {
        "PYTHONPATH": str(MODULE_RECORDER),
        "RECORD_MODULES_FILE": str(record),
        "RECORD_MODULES_PACKAGE": "{{ cookiecutter.package_name }}",
    }


def stage_modules(record: Path, project: Path) -> dict[str, set[str]]:
    """Per dvc.yaml stage: the package files its process imported, relative to the project."""
    import yaml

    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    by_args = {tuple(body["cmd"].split()[3:]): name for name, body in stages.items()}
    found: dict[str, set[str]] = {}
    for line in record.read_text().splitlines():
        entry = json.loads(line)
        argv = entry["argv"]
        if not argv or not argv[0].endswith("{{ cookiecutter.package_name }}/__main__.py"):
            continue  # dvc itself, git hooks, ...
        stage = by_args.get(tuple(argv[1:]))
        assert stage, f"a process ran {argv[1:]}, which is no dvc.yaml stage's command"
        files = set()
        for module in entry["modules"]:
            path = Path(module)
            root = PROJECT_ROOT if path.is_relative_to(PROJECT_ROOT) else project
            files.add(path.relative_to(root).as_posix())
        found[stage] = found.get(stage, set()) | files
    return found


def stages_run(output: str) -> set[str]:
    """Names of the stages a `dvc repro` output says it ran."""
    return {
        line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")
    }
