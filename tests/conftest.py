"""Bake each project variant once per session and share it across tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Variant:
    name: str
    answers: dict[str, str]
    slug: str
    package: str


DEFAULT = Variant("default", {"include_benchmark": "yes"}, "churn-model", "churn_model")
CUSTOM = Variant(
    "custom",
    {
        "project_name": "Biopsy Triage",
        "package_name": "triage_ml",
        "author_name": "Ada Lovelace",
        "training_device": "cpu",
        "online_store": "redis",
        "s3_bucket": "triage-ml-data",
        "s3_endpoint_url": "http://127.0.0.1:9000",
        "s3_region": "eu-west-1",
        "include_benchmark": "no",  # the post-generation hook removes the benchmark
    },
    "biopsy-triage",
    "triage_ml",
)
VARIANTS = {v.name: v for v in (DEFAULT, CUSTOM)}


def bake(output_dir: Path, answers: dict[str, str], template: Path = TEMPLATE) -> Path:
    return Path(
        cookiecutter(str(template), no_input=True, extra_context=answers, output_dir=str(output_dir))
    )


@pytest.fixture(scope="session")
def baked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every variant, baked once into its own temporary folder."""
    return {
        name: bake(tmp_path_factory.mktemp(f"bake-{name}"), v.answers)
        for name, v in VARIANTS.items()
    }


def project_env() -> dict[str, str]:
    """The environment a baked project's commands run in: this one, without the test
    venv's VIRTUAL_ENV or an MLflow server, and with no progress bars."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "MLFLOW_TRACKING_URI"}}
    env["NO_PROGRESS"] = "1"
    return env


def run(args: list[str], cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure show its output in the assertion message."""
    done = subprocess.run(
        args, cwd=cwd, env=project_env(), capture_output=True, text=True, timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, (
        f"{' '.join(args)} failed in {cwd} (exit {done.returncode})\n"
        f"--- stdout (tail)\n{done.stdout[-8000:]}\n--- stderr (tail)\n{done.stderr[-8000:]}"
    )
    return done


def write_biopsy_table(path: Path) -> Path:
    """A real table none of the project's code knows: scikit-learn's bundled breast-cancer
    biopsies (569 rows), given what a real feed has: string case ids, biopsy times over
    20 days, the diagnosis as text, two categoricals (a size band and a texture grade,
    binned from the measurements), and values a lab did not report."""
    import csv

    import numpy as np
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    names = [str(n).replace(" ", "_") for n in data.feature_names[:10]]  # the mean_* ones
    rng = np.random.default_rng(11)
    rows = len(data.target)
    seconds = rng.integers(0, 20 * 86_400, rows)  # the bundled rows are grouped by diagnosis
    start = np.datetime64("2026-05-01T00:00:00")
    radius, texture = data.data[:, 0], data.data[:, 1]
    size_band = np.where(radius < 12, "small", np.where(radius < 16, "medium", "large"))
    grade = 1 + np.searchsorted(np.quantile(texture, [0.25, 0.5, 0.75]), texture)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["case_ref", "biopsy_at", *names, "size_band", "texture_grade", "diagnosis"])
        for i in rng.permutation(rows):  # a file keeps no order
            values = [f"{v:.6g}" for v in data.data[i, :10]]
            if rng.random() < 0.05:
                values[names.index("mean_concavity")] = ""  # not reported
            band = "" if rng.random() < 0.03 else size_band[i]
            when = (start + np.timedelta64(int(seconds[i]), "s")).astype(str) + "+00:00"
            diagnosis = data.target_names[data.target[i]]
            writer.writerow([f"case-{i:05d}", when, *values, band, int(grade[i]), diagnosis])
    return path


# How the custom variant brings its table (docs/data.md's command, as a user runs it).
DATASET_INIT = [
    "dataset", "init", "--from", "{table}", "--entity", "case_ref", "--entity-name", "case",
    "--timestamp", "biopsy_at", "--label", "diagnosis", "--positive", "malignant",
    "--categorical", "texture_grade", "--slices", "texture_grade", "--horizon-days", "2",
]  # fmt: skip


@pytest.fixture(scope="session")
def set_up(baked: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each baked project after its own `make setup` (uv's cache makes repeats cheap);
    the custom one then brings its own table with `dataset init`."""
    for project in baked.values():
        run(["make", "setup"], project)
    # the servers the projects' tests start (redis-server), installed once here: the
    # projects' suites run side by side (test_baked_projects.py) and would race apt-get
    run(["scripts/test-services.sh"], baked["default"])
    project = baked["custom"]
    table = write_biopsy_table(tmp_path_factory.mktemp("table") / "biopsies.csv")
    args = [arg.format(table=table) for arg in DATASET_INIT]
    run([str(project / ".venv/bin/python"), "-m", CUSTOM.package, *args], project)
    return baked


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "collect_last: runs after every other test (it waits for background work)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked collect_last go to the end, so what they wait for runs meanwhile."""
    items.sort(key=lambda item: item.get_closest_marker("collect_last") is not None)
