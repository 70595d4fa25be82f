"""Throw-away copies of this project: {% if cookiecutter.include_benchmark == "yes" %}the benchmark and {% endif %}the end-to-end tests run
the real pipeline in them, never in the user's checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

# State that belongs to one checkout, never to a copy.
LOCAL_STATE = (
    ".venv",
    ".git",
    "models",
    "reports",
    "logs",
    "state",  # features/state: the Feast registry and SQLite online store
    "mlflow.db",
    "mlartifacts",
    ".dvc-storage",
    "dvc.lock",
    "airflow",
    "cache",
    "tmp",
    "dvc_plots",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "*.egg-info",
)


def edit_params(project: Path, mutate: Callable[[dict[str, Any]], None]) -> None:
    """Change params.yaml of `project` in place (comments are not kept)."""
    path = project / "params.yaml"
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def copy_project(
    source: Path, dest: Path, mutate_params: Callable[[dict[str, Any]], None] | None = None
) -> Path:
    """A fresh git + DVC checkout of `source`'s files (no stage outputs, models or local
    state; data/source, the tables ingest.files reads, is copied),
    with params.yaml changed by `mutate_params` before the first commit."""
    local_state = shutil.ignore_patterns(*LOCAL_STATE)

    def ignore(folder: str, names: list[str]) -> set[str]:
        ignored = set(local_state(folder, names))
        if Path(folder) == source / "data":  # stage outputs stay; the tables you brought go along
            ignored = {name for name in names if name not in {"source", "README.md"}}
        return ignored

    shutil.copytree(source, dest, ignore=ignore)
    if mutate_params:
        edit_params(dest, mutate_params)
    git = ["git", "-c", "user.name=scratch", "-c", "user.email=scratch@example.com"]
    for args in (
        ["init", "--quiet", "--initial-branch=main"],
        ["add", "--all"],
        ["commit", "--quiet", "--no-verify", "-m", "copy"],
    ):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True, text=True)
    # Files tracked by a .dvc file (the tables you brought) go into the copy's own DVC
    # cache, so its `dvc push` stores them and a clone of it can `dvc pull` them.
    tracked = [p.relative_to(dest).as_posix() for p in dest.rglob("*.dvc") if p.is_file()]
    if tracked:
        subprocess.run(
            [sys.executable, "-m", "dvc", "commit", "--force", "--quiet", *tracked],
            cwd=dest,
            check=True,
            capture_output=True,
            text=True,
        )
    return dest
