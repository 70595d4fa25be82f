"""Template updates reach existing projects: `.cruft.json` records the template
and commit, and `cruft update` (the project's `make template-update`) brings a
later template change in as a diff without clobbering the project's own edits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TEMPLATE, bake

# The project's Makefile runs $(VENV)/bin/cruft: point it at this test environment's.
TEST_VENV = Path(sys.executable).parent.parent
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "demo", "__pycache__", ".pytest_cache", ".ruff_cache"
)
PROJECT_SLUG = "{{cookiecutter.project_slug}}"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def make(project: Path, target: str) -> subprocess.CompletedProcess[str]:
    assert (TEST_VENV / "bin" / "cruft").is_file(), f"cruft is not installed in {TEST_VENV}"
    return subprocess.run(
        ["make", target, f"VENV={TEST_VENV}"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """A git copy of this template (its own history, as a user's fork would have)."""
    repo = tmp_path / "template"
    shutil.copytree(TEMPLATE, repo, ignore=COPY_IGNORE)
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "template v1")
    return repo


def test_project_records_template_and_commit(template_repo: Path, tmp_path: Path) -> None:
    project = Path(bake(tmp_path / "out", {}, template=template_repo))
    state = json.loads((project / ".cruft.json").read_text())
    assert state["template"] == str(template_repo)
    assert state["commit"] == git(template_repo, "rev-parse", "HEAD")
    answers = state["context"]["cookiecutter"]
    assert answers["package_name"] == "churn_model"
    assert answers["_commit"] == state["commit"]
    assert git(project, "status", "--porcelain") == "", ".cruft.json is in the first commit"
    assert make(project, "template-check").returncode == 0, "fresh project is up to date"


def test_cruft_update_brings_template_changes_and_keeps_project_edits(
    template_repo: Path, tmp_path: Path
) -> None:
    project = Path(
        bake(tmp_path / "out", {"project_name": "Loan Default Radar"}, template=template_repo)
    )
    v1 = git(template_repo, "rev-parse", "HEAD")

    # The project's own edits: a target at the end of the Makefile, a README section.
    makefile = project / "Makefile"
    makefile.write_text(
        makefile.read_text() + "\nbackfill:  ## Project-specific\n\techo backfill\n"
    )
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n## Our runbook\n\nProject-specific notes.\n")
    git(project, "commit", "--quiet", "-am", "project edits")

    # The template moves on: a changed line near the top of the Makefile, and a new file.
    template_makefile = template_repo / PROJECT_SLUG / "Makefile"
    text = template_makefile.read_text()
    assert "SHELL := /bin/bash" in text
    template_makefile.write_text(
        text.replace("SHELL := /bin/bash", "SHELL := /bin/bash\n.SHELLFLAGS := -eu -o pipefail -c")
    )
    (template_repo / PROJECT_SLUG / "CONTRIBUTING.md").write_text(
        "# Contributing to {{ cookiecutter.project_name }}\n"
    )
    git(template_repo, "add", "--all")
    git(template_repo, "commit", "--quiet", "-m", "template v2")
    v2 = git(template_repo, "rev-parse", "HEAD")
    assert v2 != v1

    check = make(project, "template-check")
    assert check.returncode != 0, "cruft check reports the template moved"
    assert "out of date" in check.stdout + check.stderr

    update = make(project, "template-update")
    assert update.returncode == 0, update.stdout + update.stderr

    merged = makefile.read_text()
    assert ".SHELLFLAGS := -eu -o pipefail -c" in merged, "template change arrived"
    assert "backfill:  ## Project-specific" in merged, "project edit kept"
    assert "<<<<<<<" not in merged
    assert (project / "CONTRIBUTING.md").read_text() == "# Contributing to Loan Default Radar\n"
    assert "## Our runbook" in readme.read_text()
    assert not list(project.rglob("*.rej"))
    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == v2
    assert state["context"]["cookiecutter"]["project_name"] == "Loan Default Radar"
    # Nothing from the clean renders cruft diffs (their own git repositories) leaked in.
    changed = git(project, "status", "--porcelain").splitlines()
    assert {line.split()[-1] for line in changed} == {".cruft.json", "Makefile", "CONTRIBUTING.md"}

    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "template update")
    assert make(project, "template-check").returncode == 0
