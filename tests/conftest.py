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
        "project_name": "Loan Default Radar",
        "package_name": "radar_ml",
        "author_name": "Ada Lovelace",
        "training_device": "cpu",
        "online_store": "redis",
        "s3_bucket": "radar-ml-data",
        "s3_endpoint_url": "http://127.0.0.1:9000",
        "s3_region": "eu-west-1",
        "include_benchmark": "no",  # the post-generation hook removes the benchmark
    },
    "loan-default-radar",
    "radar_ml",
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


def run(args: list[str], cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure show its output in the assertion message."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "MLFLOW_TRACKING_URI"}}
    env["NO_PROGRESS"] = "1"
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(args)} failed in {cwd} (exit {done.returncode})\n"
        f"--- stdout (tail)\n{done.stdout[-8000:]}\n--- stderr (tail)\n{done.stderr[-8000:]}"
    )
    return done


@pytest.fixture(scope="session")
def set_up(baked: dict[str, Path]) -> dict[str, Path]:
    """Each baked project after its own `make setup` (uv's cache makes repeats cheap)."""
    for project in baked.values():
        run(["make", "setup"], project)
    return baked
