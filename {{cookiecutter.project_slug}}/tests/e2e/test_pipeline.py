"""End to end: the real `dvc repro` in a temporary copy of the project, on small data."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline_helpers import (
    PROJECT_ROOT,
    copy_project,
    dvc,
    edit_params,
    env,
    module_recording_env,
    run,
    stage_modules,
    stages_run,
)

pytestmark = pytest.mark.e2e
PARAMS = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
KEY = PARAMS["dataset"]["entity"]["key"]
ALL_STAGES = {
    "ingest",
    "validate_raw",
    "featurize",
    "validate_features",
    "training_set",
    "materialize",
    "tune",
    "train",
    "evaluate",
    "validate_predictions",
    "monitor",
    "promote",
}
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".cloudpickle"}


@pytest.fixture(scope="module")
def project(online_store: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("e2e") / "project")
    # Every stage process records the package modules it imports (see the deps test).
    first = dvc(project, "repro", extra_env=module_recording_env(project.parent / "modules.jsonl"))
    assert stages_run(first.stdout) == ALL_STAGES, first.stdout
    return project


def test_each_stage_declares_every_package_module_it_imports(project: Path) -> None:
    """Editing any module a stage runs must re-run that stage: DVC only knows its deps."""
    imported = stage_modules(project.parent / "modules.jsonl", project)
    assert set(imported) == ALL_STAGES
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    missing = {
        name: sorted(files - {str(d) for d in stages[name]["deps"]})
        for name, files in imported.items()
    }
    assert {name: files for name, files in missing.items() if files} == {}, (
        "stage deps in dvc.yaml lack package modules the stage imports"
    )


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("stages/evaluate.py", {"evaluate"}),
        ("model.py", {"tune", "train", "evaluate", "monitor", "promote"}),
        ("cli.py", ALL_STAGES),
    ],
)
def test_editing_a_module_changes_exactly_the_stages_that_import_it(
    project: Path, module: str, expected: set[str]
) -> None:
    path = project / "src" / "{{ cookiecutter.package_name }}" / module
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n# edited\n")
        status = json.loads(dvc(project, "status", "--json").stdout)
        assert set(status) == expected
    finally:
        path.write_bytes(original)
    assert json.loads(dvc(project, "status", "--json").stdout) == {}


def test_metrics_beat_the_baseline(project: Path) -> None:
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert metrics["roc_auc"] > 0.65
    assert metrics["pr_auc"] > 1.5 * metrics["baseline"]["pr_auc"]
    for key in ("precision", "recall", "f1", "log_loss", "threshold", "brier", "ece"):
        assert key in metrics
    assert {"brier", "ece", "log_loss"} <= set(metrics["uncalibrated"])
    written = json.loads((project / "reports" / "slice_metrics.json").read_text())
    slices = written["slices"]
    declared = PARAMS["dataset"]["slices"]
    categories = PARAMS["dataset"]["categorical"]
    bare = len(declared) == 1 and not PARAMS["dataset"].get("slice_bins")
    bare = bare and not PARAMS["dataset"].get("slice_crosses")
    expected = {
        str(value) if bare else f"{column}={value}"
        for column in declared
        for value in [*categories.get(column, {}).get("values", []), "(missing)"]
    }
    by_value = {n for d in declared for n in written["dimensions"].get(d, [])}
    assert slices and (by_value <= expected or not categories.keys() >= set(declared))
    for metric in ("recall", "fpr"):  # the largest gaps: metrics, defined by two slices
        gap = written["gaps"][metric]
        assert metrics[f"slice_{metric}_gap"] == (gap and gap["gap"])
        if gap:
            assert {gap["lowest"], gap["highest"]} <= set(slices)
    page = (project / "reports" / "evaluation.html").read_text()
    assert page.count("<tr class=") == len(slices)  # one row per slice (rendered: unit test)
    plots = ("roc", "precision_recall", "confusion", "feature_importance", "shap_importance")
    for plot in (*plots, "reliability"):
        assert (project / "reports" / "plots" / f"{plot}.csv").stat().st_size > 0
    shown = dvc(project, "metrics", "show", "--json").stdout
    assert "roc_auc" in shown


def test_mlflow_run_has_params_metrics_model_and_lineage(project: Path) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(PARAMS["mlflow"]["experiment"])
    runs = client.search_runs([experiment.experiment_id], "tags.stage = 'train'")
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


def test_monitor_stage_writes_its_verdict_metrics_and_reports(project: Path) -> None:
    folder = project / "reports" / "monitoring"
    summary = json.loads((folder / "summary.json").read_text())
    assert isinstance(summary["retrain"], bool)
    assert summary["feature_drift"]["status"] == "checked"
    assert (folder / summary["reports"]["drift"]).is_file()
    assert summary["run"] in (folder / "index.html").read_text()
    shown = json.loads(dvc(project, "metrics", "show", "--json").stdout)
    assert "drift_share" in json.dumps(shown)


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
    assert stages_run(changed.stdout) == {
        "tune",  # reads train (trial 0); off, it writes the same "tuning is off" again
        "train",
        "evaluate",
        "validate_predictions",
        "monitor",
        "promote",
    }, changed.stdout


def test_tuning_off_keeps_train_and_on_feeds_it(project: Path) -> None:
    """Off (the default), a tune.* change re-runs `tune` alone: its output says tuning is
    off either way, so train's inputs are unchanged. On, tune searches and train and every
    stage after it re-run, train on the tuned values."""
    edit_params(project, lambda p: p["tune"].update({"seed": 7}))
    assert stages_run(dvc(project, "repro").stdout) == {"tune"}
    edit_params(project, lambda p: p["tune"].update({"enabled": True, "n_trials": 2}))
    changed = dvc(project, "repro")
    # validate_predictions re-runs only when the predictions changed: not when the best
    # of the two trials is trial 0, train's own values
    after_train = {"evaluate", "validate_predictions", "monitor", "promote"}
    assert {"tune", "train", "evaluate"} <= stages_run(changed.stdout), changed.stdout
    assert stages_run(changed.stdout) <= {"tune", "train", *after_train}, changed.stdout
    tuned = json.loads((project / PARAMS["paths"]["tuned_params"]).read_text())
    assert tuned["enabled"] is True and tuned["trials"] == 2
    meta = json.loads((project / "models" / "model_meta.json").read_text())
    assert meta["xgb_params"]["max_depth"] == tuned["params"]["max_depth"]


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
    most = max(len(pd.read_parquet(path)) for path in (project / "data" / "raw").glob("*.parquet"))
    # every day now has too few rows: the raw gate must stop the run before featurize
    edit_params(project, lambda p: p["validate_raw"].update({"min_rows_per_day": most + 1}))

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

    restored = PARAMS["validate_raw"]["min_rows_per_day"]
    edit_params(project, lambda p: p["validate_raw"].update({"min_rows_per_day": restored}))
    dvc(project, "repro")
    assert "up to date" in dvc(project, "status").stdout
    assert hashlib.md5(model.read_bytes()).hexdigest() == model_hash


def ensure_champion(project: Path) -> str:
    """The champion version; registers this run's model when none exists yet."""
    import mlflow

    from {{ cookiecutter.package_name }}.champion import register

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    name = PARAMS["mlflow"]["registered_model"]
    try:
        return str(client.get_model_version_by_alias(name, "champion").version)
    except mlflow.exceptions.MlflowException:
        run_id = json.loads((project / "models" / "mlflow_run.json").read_text())["run_id"]
        mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
        threshold = float(client.get_run(run_id).data.params["model.threshold"])
        version = register(client, name, run_id, threshold).version
        client.set_registered_model_alias(name, "champion", version)
        return str(version)


def test_serves_the_champion_over_http_and_scores_in_batch(project: Path) -> None:
    import httpx

    from tools.local_servers import free_port

    version = ensure_champion(project)
    features = pd.read_parquet(project / "data/features/features.parquet")
    ids = features[KEY].drop_duplicates().head(5).tolist()
    ids = [int(i) for i in ids] if PARAMS["dataset"]["entity"]["dtype"] == "int" else ids
    port = free_port()
    package = "{{ cookiecutter.package_name }}"
    server = subprocess.Popen(
        [sys.executable, "-m", package, "serve", "--port", str(port)],
        cwd=project,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240  # start-up imports are slow on a loaded 2-core CI box
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=30).json()["status"] == "ok":
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            server.terminate()
            raise AssertionError(f"service did not come up:\n{server.communicate(timeout=10)[0]}")
        body = httpx.post(f"{url}/predict", json={"ids": ids, "explain": 3}, timeout=10).json()
        assert body["model_version"] == version
        served = {p["id"]: p["score"] for p in body["predictions"]}
        assert all(p["status"] == "ok" for p in body["predictions"])
        explained = {p["id"]: p["explanation"] for p in body["predictions"]}
    finally:
        server.terminate()
        server.wait(timeout=20)
    days = sorted((project / "logs").glob("predictions-*.jsonl"))  # one file per UTC day
    assert sum(len(day.read_text().splitlines()) for day in days) >= len(ids)

    entities = project / "entities.csv"
    pd.DataFrame({KEY: ids}).to_csv(entities, index=False)
    out = project / "scores.parquet"
    score = [sys.executable, "-m", package, "score", "--entities", str(entities)]
    run([*score, "--out", str(out), "--explain", "3"], project)
    scored = pd.read_parquet(out).set_index(KEY)
    for entity, score in served.items():
        assert scored.loc[entity, "score"] == pytest.approx(score, abs=1e-6)
        batch = json.loads(scored.loc[entity, "explanation"])  # the same top contributions
        online = explained[entity]["contributions"]
        assert [c["feature"] for c in batch["contributions"]] == [c["feature"] for c in online]
        assert batch["margin"] == pytest.approx(explained[entity]["margin"], abs=1e-5)


def test_a_daily_run_builds_the_new_day_and_equals_a_fresh_run(
    project: Path, tmp_path: Path
) -> None:
    """interval.yaml end_date one day on, as the scheduled run does: ingest, featurize and
    training_set build one day, the raw and features gates validate one day, and what
    they hold equals a fresh run on that window. (A
    table you brought ends at its end_date: the run starts from a window one day shorter
    ending a day earlier, so the day on is inside the table.)"""
    interval = project / "interval.yaml"
    end = dt.date.fromisoformat(str(yaml.safe_load(interval.read_text())["end_date"]))
    if PARAMS["ingest"]["source"] != "synthetic":
        params = project / "params.yaml"
        days = PARAMS["data"]["window_days"]
        text = re.sub(
            r"^  window_days: \d+",
            f"  window_days: {days - 1}",
            params.read_text(),
            count=1,
            flags=re.M,
        )
        params.write_text(text)
        end -= dt.timedelta(days=1)
        interval.write_text(f"end_date: '{end.isoformat()}'\n")
        dvc(project, "repro", "training_set")
    window_days = yaml.safe_load((project / "params.yaml").read_text())["data"]["window_days"]
    moved = f"end_date: '{(end + dt.timedelta(days=1)).isoformat()}'\n"
    interval.write_text(moved)
    daily = dvc(project, "repro")
    assert stages_run(daily.stdout) == ALL_STAGES, daily.stdout
    log = daily.stdout + daily.stderr
    for stage in ("ingest", "featurize", "training set"):
        assert f"{stage}: 1 day to build, " in log, log
    for gate in ("raw", "features"):
        assert f"{gate} gate: 1 of {window_days} days validated" in log, log

    fresh = copy_project(tmp_path / "fresh")
    (fresh / "params.yaml").write_text((project / "params.yaml").read_text())
    (fresh / "interval.yaml").write_text(moved)
    package = "{{ cookiecutter.package_name }}"
    for command in ("ingest", "featurize", "training-set"):
        run([sys.executable, "-m", package, command], fresh)
    for table in (
        "data/features/features.parquet",
        "data/features/labels.parquet",
        "data/training/training_set.parquet",
    ):
        pd.testing.assert_frame_equal(
            pd.read_parquet(project / table), pd.read_parquet(fresh / table)
        )
    raw = sorted(p.name for p in (project / "data/raw").glob("batch_*.parquet"))
    assert raw == sorted(p.name for p in (fresh / "data/raw").glob("batch_*.parquet"))
    for name in raw:
        pd.testing.assert_frame_equal(
            pd.read_parquet(project / "data/raw" / name), pd.read_parquet(fresh / "data/raw" / name)
        )
