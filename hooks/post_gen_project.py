"""Finish the generated project: drop the benchmark unless it was asked for, record
the template it came from, then a git repository with a first commit.

DVC needs no command here: `.dvc/config` (remotes from the answers) ships with
the template, so the project is a DVC repository as soon as it exists.

`.cruft.json` records the template and its commit in the form `cruft check` and
`cruft update` read, so later template changes reach the project as a diff.
When cruft itself generates the project (`cruft create`, or the clean copies
`cruft update` renders), the context carries `_commit` and cruft writes that
file; this hook then leaves it to cruft.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

AUTHOR = "{{ cookiecutter.author_name }}"
EMAIL = "{{ cookiecutter.author_email }}"
# Everything cookiecutter knows about this bake (answers and private `_` keys).
CONTEXT = json.loads({{ cookiecutter | jsonify | tojson }})
# Keys cruft stores besides the answers (the rest are this machine's paths).
CRUFT_PRIVATE_KEYS = ("_copy_without_render", "_template", "_commit")
INCLUDE_BENCHMARK = "{{ cookiecutter.include_benchmark }}" == "yes"
# The benchmark's files (make bench). Every mention of it elsewhere (Makefile, README,
# docs) is behind `{% raw %}{% if cookiecutter.include_benchmark == "yes" %}{% endraw %}`.
BENCHMARK_FILES = (
    "tools/airflow_bench.py",
    "tools/bench.py",
    "tools/bench_daily.py",
    "tools/bench_online.py",
    "tools/bench_pipeline.py",
    "tools/bench_pit.py",
    "tools/bench_serving.py",
    "tools/stage_metrics",
    "tools/tests/test_bench.py",
    "tools/tests/test_bench_pit.py",
    "docs/performance.md",
)


def git(*args: str) -> None:
    subprocess.run(
        ["git", "-c", f"user.name={AUTHOR}", "-c", f"user.email={EMAIL}", *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def template_dir(repo_dir: str) -> Path | None:
    """The local template folder (cookiecutter may report it relative to where it ran)."""
    path = Path(repo_dir)
    candidates = [path] if path.is_absolute() else [Path(os.environ.get("PWD", "")) / path]
    for candidate in candidates:
        if (candidate / "cookiecutter.json").is_file():
            return candidate.resolve()
    return None


def template_source(template: str, local: Path) -> str:
    """What `cruft update` clones: the URL the user gave (abbreviations expanded), or the path."""
    try:
        from cookiecutter.config import get_user_config
        from cookiecutter.repository import expand_abbreviations, is_repo_url

        expanded = expand_abbreviations(template, get_user_config()["abbreviations"])
        if is_repo_url(expanded):
            return expanded
    except Exception:  # noqa: BLE001 - fall back to the local checkout
        pass
    return str(local)


def template_commit(local: Path) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(local), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(local), "status", "--porcelain"],
        capture_output=True,
        text=True,
        check=False,
    )
    if dirty.stdout.strip():
        print(
            f"WARNING: the template checkout {local} has uncommitted changes; .cruft.json "
            "records its last commit, without those changes.",
            file=sys.stderr,
        )
    return done.stdout.strip()


def order_like_template(context: dict, local: Path) -> dict:
    """Answers in cookiecutter.json order (as cruft writes them), then cruft's private keys."""
    declared = json.loads((local / "cookiecutter.json").read_text())
    answers = {k: context[k] for k in declared if not k.startswith("_") and k in context}
    return {**answers, **{k: context[k] for k in CRUFT_PRIVATE_KEYS if k in context}}


def write_cruft_file() -> None:
    """.cruft.json for a plain `cookiecutter` bake from a git checkout or URL."""
    if "_commit" in CONTEXT:  # cruft generates: it writes .cruft.json itself
        return
    how = "record it with `cruft link <template-url>` to receive template updates"
    local = template_dir(CONTEXT.get("_repo_dir", ""))
    if local is None:
        print(f"WARNING: template folder not found; {how}.", file=sys.stderr)
        return
    commit = template_commit(local) if shutil.which("git") else None
    if commit is None:
        print(f"WARNING: the template at {local} is not a git checkout; {how}.", file=sys.stderr)
        return
    source = template_source(CONTEXT["_template"], local)
    context = order_like_template({**CONTEXT, "_template": source, "_commit": commit}, local)
    state = {
        "template": source,
        "commit": commit,
        "checkout": CONTEXT.get("_checkout"),
        "context": {"cookiecutter": context},
        "directory": None,
    }
    text = json.dumps(state, ensure_ascii=False, indent=2, separators=(",", ": ")) + "\n"
    Path(".cruft.json").write_text(text)


def remove_benchmark() -> None:
    """include_benchmark=no: the project gets no benchmark files."""
    for name in BENCHMARK_FILES:
        path = Path(name)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def main() -> None:
    if not INCLUDE_BENCHMARK:
        remove_benchmark()
    write_cruft_file()
    if shutil.which("git") is None:
        print("WARNING: git not found; run `git init` yourself before `dvc repro`.", file=sys.stderr)
        return
    git("init", "--quiet", "--initial-branch=main")
    git("add", "--all")
    git("commit", "--quiet", "--no-verify", "-m", "Initial commit from the airflow-dvc-ml template")
    print("Project ready. Next: cd {{ cookiecutter.project_slug }} && make setup && make repro")


if __name__ == "__main__":
    main()
