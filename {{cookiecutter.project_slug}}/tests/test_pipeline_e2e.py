"""End to end: the real `dvc repro` in a temporary copy of the project, on small data."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from pipeline_helpers import copy_project, dvc, edit_params, run, stages_run

pytestmark = pytest.mark.e2e
ALL_STAGES = {
    "ingest",
    "validate_raw",
    "featurize",
    "validate_features",
    "training_set",
    "train",
    "evaluate",
    "validate_predictions",
    "promote",
}
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".cloudpickle"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("e2e") / "project")
    first = dvc(project, "repro")
    assert stages_run(first.stdout) == ALL_STAGES, first.stdout
    return project


def test_metrics_beat_the_baseline(project: Path) -> None:
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert metrics["roc_auc"] > 0.65
    assert metrics["pr_auc"] > 1.5 * metrics["baseline"]["pr_auc"]
    for key in ("precision", "recall", "f1", "log_loss", "threshold"):
        assert key in metrics
    slices = json.loads((project / "reports" / "slice_metrics.json").read_text())
    assert set(slices) == {"consumer", "small-business", "enterprise"}
    for plot in ("roc", "precision_recall", "confusion", "feature_importance"):
        assert (project / "reports" / "plots" / f"{plot}.csv").stat().st_size > 0
    shown = dvc(project, "metrics", "show", "--json").stdout
    assert "roc_auc" in shown


def test_mlflow_run_has_params_metrics_model_and_lineage(project: Path) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("{{ cookiecutter.project_slug }}")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run_ = runs[0]
    head = run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    assert run_.data.tags["git_commit"] == head
    assert run_.data.tags["dvc.data/training/training_set.parquet"]  # data version it used
    assert run_.data.tags["device_used"] == "cpu"
    assert run_.data.params["train.max_depth"] == "6"
    assert run_.data.metrics["test_roc_auc"] > 0.65
    logged = client.search_logged_models([experiment.experiment_id])
    assert logged, "the model is logged with the XGBoost flavor"
    model_files = list((project / "mlartifacts").rglob("model.ubj"))
    assert model_files, "the logged model is stored as UBJSON"


def test_no_pickle_anywhere_in_the_outputs(project: Path) -> None:
    for folder in ("models", "mlartifacts", "data"):
        for path in (project / folder).rglob("*"):
            if path.is_file():
                assert path.suffix not in PICKLE_SUFFIXES, path
                assert path.read_bytes()[:1] != b"\x80", f"{path} looks like a pickle"


def test_second_repro_runs_nothing(project: Path) -> None:
    again = dvc(project, "repro")
    assert stages_run(again.stdout) == set(), again.stdout


def test_changing_one_training_key_reruns_only_its_dependents(project: Path) -> None:
    edit_params(project, lambda p: p["train"].update({"learning_rate": 0.2}))
    changed = dvc(project, "repro")
    assert stages_run(changed.stdout) == {"train", "evaluate", "validate_predictions", "promote"}, (
        changed.stdout
    )


def test_missing_input_names_the_stage_that_produces_it(tmp_path: Path) -> None:
    fresh = copy_project(tmp_path / "fresh")
    done = run([sys.executable, "-m", "{{ cookiecutter.package_name }}", "train"], fresh, check=False)
    assert done.returncode == 1
    assert "'training_set' stage" in done.stderr
    assert "dvc repro training_set" in done.stderr


def mlflow_state(project: Path) -> tuple[list[str], list[tuple[str, str]]]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = sorted(r.info.run_id for r in client.search_runs(experiments))
    versions = sorted((v.name, v.version) for v in client.search_model_versions())
    return runs, versions


def test_rejected_batch_changes_nothing_downstream(project: Path) -> None:
    model = project / "models" / "model.ubj"
    model_hash = hashlib.md5(model.read_bytes()).hexdigest()
    before = mlflow_state(project)
    edit_params(project, lambda p: p["data"].update({"rows_per_day": 20}))  # a short delivery

    failed = dvc(project, "repro", check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "gate 'raw' FAILED" in output
    assert "expect_table_row_count_to_be_between" in output
    assert "featurize" not in stages_run(failed.stdout)
    assert hashlib.md5(model.read_bytes()).hexdigest() == model_hash
    assert mlflow_state(project) == before
    summary = json.loads((project / "reports/gates/raw/summary.json").read_text())
    assert summary["passed"] is False
    assert (project / "reports/gates/raw/data_docs/index.html").is_file()

    edit_params(project, lambda p: p["data"].update({"rows_per_day": 300}))
    dvc(project, "repro")
    assert "up to date" in dvc(project, "status").stdout
    assert hashlib.md5(model.read_bytes()).hexdigest() == model_hash
