"""Finish the generated project: a git repository with a first commit.

DVC needs no command here: `.dvc/config` (remotes from the answers) ships with
the template, so the project is a DVC repository as soon as it exists.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

AUTHOR = "{{ cookiecutter.author_name }}"
EMAIL = "{{ cookiecutter.author_email }}"


def git(*args: str) -> None:
    subprocess.run(
        ["git", "-c", f"user.name={AUTHOR}", "-c", f"user.email={EMAIL}", *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    if shutil.which("git") is None:
        print("WARNING: git not found; run `git init` yourself before `dvc repro`.", file=sys.stderr)
        return
    git("init", "--quiet", "--initial-branch=main")
    git("add", "--all")
    git("commit", "--quiet", "--no-verify", "-m", "Initial commit from the airflow-dvc-ml template")
    print("Project ready. Next: cd {{ cookiecutter.project_slug }} && make setup && make repro")


if __name__ == "__main__":
    main()
