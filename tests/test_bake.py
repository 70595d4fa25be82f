"""What cookiecutter writes: the exact file set, clean rendering, valid hooks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException

from conftest import TEMPLATE, VARIANTS, bake

EXPECTED_FILES = """
.cruft.json
.dockerignore
.dvc/.gitignore
.dvc/config
.dvcignore
.env.example
.github/workflows/cd.yml
.github/workflows/ci.yml
.github/workflows/template-update.yml
.gitignore
.pre-commit-config.yaml
.python-version
Dockerfile
Makefile
README.md
dags/.airflowignore
dags/README.md
dags/continuous_training.py
dags/drift_monitoring.py
dags/dvc_pipeline.py
dags/notifications.py
dags/workspaces.py
data/README.md
deploy/kubernetes/pod-template.yaml
deploy/mlflow_users.py
docker-compose.yml
docs/airflow.md
docs/cicd.md
docs/data.md
docs/evaluation.md
docs/gates.md
docs/kubernetes.md
docs/local-stack.md
docs/monitoring.md
docs/pipeline.md
docs/promotion.md
docs/scaling.md
docs/serving.md
dvc.yaml
expectations/README.md
expectations/features.json
expectations/predictions.json
expectations/raw.json
features/README.md
features/definitions.py
features/feature_store.yaml
interval.yaml
params.yaml
pyproject.toml
requirements.lock
scripts/airflow-local.sh
scripts/test-services.sh
src/{package}/__init__.py
src/{package}/__main__.py
src/{package}/api_keys.py
src/{package}/batches.py
src/{package}/calibration.py
src/{package}/challenger.py
src/{package}/champion.py
src/{package}/cli.py
src/{package}/config.py
src/{package}/ingest_config.py
src/{package}/contract.py
src/{package}/contract_rows.py
src/{package}/dask_engine.py
src/{package}/datagen.py
src/{package}/dataset_init.py
src/{package}/dataset_write.py
src/{package}/derived.py
src/{package}/errors.py
src/{package}/expectation_rules.py
src/{package}/evaluation_report.py
src/{package}/explain.py
src/{package}/feature_store.py
src/{package}/materialization.py
src/{package}/features.py
src/{package}/files.py
src/{package}/http_guards.py
src/{package}/ingest_config.py
src/{package}/gates.py
src/{package}/logs.py
src/{package}/metrics.py
src/{package}/model.py
src/{package}/monitoring/__init__.py
src/{package}/monitoring/checks.py
src/{package}/monitoring/columns.py
src/{package}/monitoring/data.py
src/{package}/monitoring/evidently_reports.py
src/{package}/monitoring/reports.py
src/{package}/monitoring/versions.py
src/{package}/monitoring/windows.py
src/{package}/online_read.py
src/{package}/offline_store.py
src/{package}/partitions.py
src/{package}/parquet_parts.py
src/{package}/online_store.py
src/{package}/online_values.py
src/{package}/prediction_log.py
src/{package}/prediction_log_files.py
src/{package}/promotion.py
src/{package}/holdout.py
src/{package}/promotion_checks.py
src/{package}/infra_validation.py
src/{package}/raw_gate.py
src/{package}/day_gate.py
src/{package}/row_checks.py
src/{package}/rollout.py
src/{package}/py.typed
src/{package}/scoring.py
src/{package}/serving.py
src/{package}/service_metrics.py
src/{package}/slices.py
src/{package}/sources.py
src/{package}/split.py
src/{package}/stages/__init__.py
src/{package}/stages/evaluate.py
src/{package}/stages/featurize.py
src/{package}/stages/ingest.py
src/{package}/stages/materialize.py
src/{package}/stages/monitor.py
src/{package}/stages/promote.py
src/{package}/stages/train.py
src/{package}/stages/training_set.py
src/{package}/stages/tune.py
src/{package}/stages/validate_features.py
src/{package}/stages/validate_predictions.py
src/{package}/stages/validate_raw.py
src/{package}/suite_bootstrap.py
src/{package}/tracking.py
src/{package}/training.py
src/{package}/tune_config.py
src/{package}/tuning.py
tests/airflow_helpers.py
tests/airflow_ui.py
tests/conftest.py
tests/e2e/module_recorder/sitecustomize.py
tests/e2e/test_scheduled_runs.py
tests/e2e/worker_identity/worker_identity.py
tests/other_contracts.py
tests/pipeline_helpers.py
tests/unit/test_api_keys.py
tests/unit/test_calibration.py
tests/unit/test_challenger.py
tests/unit/test_champion.py
tests/unit/test_cli.py
tests/unit/test_config.py
tests/unit/test_contract.py
tests/e2e/test_continuous_training_dag.py
tests/unit/test_dags.py
tests/unit/test_dask_engine.py
tests/unit/test_datagen.py
tests/unit/test_dataset_init.py
tests/unit/test_evaluation_report.py
tests/unit/test_explain.py
tests/unit/test_feature_store.py
tests/unit/test_features.py
tests/unit/test_files.py
tests/unit/test_kubernetes_pods.py
tests/unit/test_local_airflow.py
tests/unit/test_gates.py
tests/unit/test_layout.py
tests/unit/test_metrics.py
tests/unit/test_model.py
tests/unit/test_offline_store.py
tests/unit/test_partitions.py
tests/unit/test_online_store.py
tests/unit/test_monitoring.py
tests/unit/test_notifications.py
tests/e2e/test_drift_monitoring_dag.py
tests/e2e/test_pipeline.py
tests/unit/test_prediction_log.py
tests/unit/test_prediction_log_files.py
tests/unit/test_promotion.py
tests/unit/test_infra_validation.py
tests/unit/test_raw_gate.py
tests/unit/test_day_gate.py
tests/unit/test_rollout.py
tests/unit/test_scoring.py
tests/unit/test_serving.py
tests/unit/test_slices.py
tests/unit/test_sources.py
tests/unit/test_split.py
tests/unit/test_tuning.py
tests/unit/test_workspaces.py
tools/__init__.py
tools/airflow_cluster.py
tools/ci_report.py
tools/local_servers.py
tools/point_in_time.py
tools/publish.py
tools/scratch.py
tools/tests/__init__.py
tools/tests/conftest.py
tools/tests/test_ci_report.py
tools/tests/test_point_in_time.py
tools/tests/test_publish.py
"""
# Only with include_benchmark=yes (the post-generation hook deletes them otherwise).
BENCHMARK_FILES = """
docs/performance.md
tools/airflow_bench.py
tools/bench.py
tools/bench_daily.py
tools/bench_online.py
tools/bench_pipeline.py
tools/bench_pit.py
tools/bench_serving.py
tools/stage_metrics/sitecustomize.py
tools/tests/test_bench.py
tools/tests/test_bench_pit.py
"""
TOP_LEVEL = {
    "README.md", "pyproject.toml", "dags", "dvc.yaml", "params.yaml", "data",
    "features", "src", "expectations", "tests", ".github", "docs", "tools", "interval.yaml",
}
LEFTOVER = re.compile(r"\{\{\s*cookiecutter|\{%-?\s|cookiecutter\.")


def files_of(project: Path) -> set[str]:
    return {
        p.relative_to(project).as_posix()
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }


def includes_benchmark(name: str) -> bool:
    return VARIANTS[name].answers.get("include_benchmark", "yes") == "yes"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_exact_file_set(baked: dict[str, Path], name: str) -> None:
    variant = VARIANTS[name]
    listed = EXPECTED_FILES.split() + (BENCHMARK_FILES.split() if includes_benchmark(name) else [])
    expected = {line.format(package=variant.package) for line in listed}
    project = baked[name]
    assert project.name == variant.slug
    assert files_of(project) == expected
    assert TOP_LEVEL <= {p.name for p in project.iterdir()}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_nothing_left_over_from_templating(baked: dict[str, Path], name: str) -> None:
    for rel in files_of(baked[name]):
        text = (baked[name] / rel).read_text()
        match = LEFTOVER.search(text)
        assert match is None, f"{rel}: leftover template syntax {match.group(0)!r}"


def test_github_actions_expressions_survive(baked: dict[str, Path]) -> None:
    """More in test_workflows.py: verbatim copies, schema and actionlint, make targets."""
    for name in ("ci.yml", "cd.yml", "template-update.yml"):
        workflow = (baked["default"] / ".github/workflows" / name).read_text()
        assert "${{ " in workflow, name
        parsed = yaml.safe_load(workflow)
        assert "jobs" in parsed


@pytest.mark.parametrize("name", list(VARIANTS))
def test_project_is_a_git_and_dvc_repo_with_both_remotes(baked: dict[str, Path], name: str) -> None:
    project = baked[name]
    log = subprocess.run(
        ["git", "log", "--oneline"], cwd=project, capture_output=True, text=True, check=True
    )
    assert len(log.stdout.splitlines()) == 1
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", "the first commit holds every generated file"
    config = (project / ".dvc/config").read_text()
    assert "remote = local" in config
    assert f"s3://{VARIANTS[name].answers.get('s3_bucket', 'churn-model-dvc')}/" in config


def test_answers_reach_the_custom_project(baked: dict[str, Path]) -> None:
    project = baked["custom"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["train"]["device"] == "cpu"
    assert params["mlflow"]["experiment"] == "biopsy-triage"
    assert "endpointurl = http://127.0.0.1:9000" in (project / ".dvc/config").read_text()
    assert "region = eu-west-1" in (project / ".dvc/config").read_text()
    assert "python -m triage_ml ingest" in (project / "dvc.yaml").read_text()
    store = "type: triage_ml.online_store.FastRedisOnlineStore"
    assert store in (project / "features/feature_store.yaml").read_text()
    store = "type: churn_model.online_store.WideSqliteOnlineStore"
    assert store in (baked["default"] / "features/feature_store.yaml").read_text()
    default_config = (baked["default"] / ".dvc/config").read_text()
    assert "endpointurl" not in default_config  # empty answer: AWS default endpoint


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package_name": "1churn"}, "not a valid lowercase Python identifier"),
        ({"package_name": "class"}, "not a valid lowercase Python identifier"),
        ({"package_name": "churn-model"}, "not a valid lowercase Python identifier"),
        ({"package_name": "src"}, "clashes with a project folder"),
        ({"s3_bucket": "ab"}, "not a valid S3 bucket name"),
        ({"s3_endpoint_url": "minio:9000"}, "must be empty (AWS) or like"),
    ],
)
def test_bad_answers_are_refused_with_a_clear_message(
    tmp_path: Path, answers: dict[str, str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), str(TEMPLATE),
         *[f"{k}={v}" for k, v in answers.items()]],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode != 0
    assert message in done.stderr
    assert not any(tmp_path.iterdir()), "nothing is generated from bad answers"


def test_bad_answer_raises_through_the_api(tmp_path: Path) -> None:
    with pytest.raises(FailedHookException):
        bake(tmp_path, {"package_name": "not valid"})


# What the benchmark adds; include_benchmark=no must leave no mention of it anywhere.
BENCHMARK_MENTIONS = ("tools.bench", "tools/bench", "make bench", "bench_pipeline",
                      "stage_metrics", "performance.md", "reports/bench", "BENCH_SIZES")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_hook_removes_the_benchmark_without_dangling_references(
    baked: dict[str, Path], name: str
) -> None:
    project = baked[name]
    mentions = {
        (rel, mention)
        for rel in files_of(project)
        for mention in BENCHMARK_MENTIONS
        if mention in (project / rel).read_text()
    }
    makefile = (project / "Makefile").read_text()
    if includes_benchmark(name):
        assert {m for _, m in mentions} == set(BENCHMARK_MENTIONS)
        assert "\nbench:" in makefile and " bench\n" in makefile  # target and .PHONY
        assert not (project / "src" / VARIANTS[name].package / "bench.py").exists()
    else:
        assert mentions == set()
        assert "bench" not in makefile


def test_hooks_are_valid_python_before_rendering() -> None:
    for hook in (TEMPLATE / "hooks").glob("*.py"):
        compile(hook.read_text(), str(hook), "exec")


def test_cookiecutter_json_offers_the_documented_prompts() -> None:
    context = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    for key in ("project_name", "project_slug", "package_name", "description", "author_name",
                "python_version", "s3_bucket", "s3_endpoint_url", "s3_region", "training_device"):
        assert key in context
    assert context["training_device"] == ["auto", "cpu", "cuda"]
