from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.config import ConfigError, load_params

from conftest import PROJECT_ROOT


def write_params(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    mutate(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    (tmp_path / "interval.yaml").write_text((PROJECT_ROOT / "interval.yaml").read_text())
    return path


def test_shipped_params_are_valid(project_params) -> None:
    assert project_params.train.device in {"auto", "cpu", "cuda"}
    assert project_params.window.start_date < project_params.window.end_date
    assert len(project_params.window.dates()) == project_params.data.window_days


def test_unknown_key_is_rejected_with_its_name(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["train"].update({"learning_rat": 0.1}))
    with pytest.raises(ConfigError, match=r"unknown key 'train\.learning_rat'"):
        load_params(path)


def test_mistyped_value_is_rejected_with_its_key(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["train"].update({"max_depth": "deep"}))
    with pytest.raises(ConfigError, match=r"train\.max_depth"):
        load_params(path)


def test_out_of_range_value_is_rejected(tmp_path: Path) -> None:
    path = write_params(
        tmp_path, lambda d: d["ingest"]["synthetic"]["drift"].update({"covariate": 3})
    )
    with pytest.raises(ConfigError, match=r"ingest\.synthetic\.drift\.covariate"):
        load_params(path)


def test_unknown_device_is_rejected(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["train"].update({"device": "tpu"}))
    with pytest.raises(ConfigError, match=r"train\.device"):
        load_params(path)


def test_shipped_params_train_locally(project_params) -> None:
    assert project_params.train.engine == "local"
    assert (
        project_params.train.dask.scheduler_address is None
    )  # dask engine: a LocalCluster per run


def test_unknown_engine_is_rejected(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["train"].update({"engine": "spark"}))
    with pytest.raises(ConfigError, match=r"train\.engine"):
        load_params(path)


@pytest.mark.parametrize(
    ("key", "value"),
    [("n_workers", 0), ("threads_per_worker", "many"), ("memory_limit", "lots"), ("partitions", 0)],
)
def test_bad_dask_cluster_value_is_rejected_with_its_key(tmp_path: Path, key, value) -> None:
    path = write_params(tmp_path, lambda d: d["train"]["dask"].update({key: value}))
    with pytest.raises(ConfigError, match=rf"train\.dask\.{key}"):
        load_params(path)


@pytest.mark.parametrize("value", ["auto", "4GiB", "512 MB", 0, 4_000_000_000])
def test_dask_memory_limit_accepts_sizes(tmp_path: Path, value) -> None:
    path = write_params(tmp_path, lambda d: d["train"]["dask"].update({"memory_limit": value}))
    assert load_params(path).train.dask.memory_limit == value


def test_more_rows_than_population_is_rejected(tmp_path: Path) -> None:
    path = write_params(
        tmp_path, lambda d: d["ingest"]["synthetic"].update({"rows_per_day": 10**6})
    )
    with pytest.raises(ConfigError, match="cannot exceed population"):
        load_params(path)


def test_missing_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_missing_interval_file_names_it(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: None)
    (tmp_path / "interval.yaml").unlink()
    with pytest.raises(ConfigError, match=r"interval\.yaml not found.*end_date"):
        load_params(path)


def test_bad_interval_names_the_file_and_key(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: None)
    (tmp_path / "interval.yaml").write_text('end_date: "2026-02-30"\n')
    with pytest.raises(ConfigError, match=r"interval\.yaml is invalid:\n  - end_date"):
        load_params(path)


def test_interval_in_params_yaml_is_refused(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d.update({"interval": {"end_date": "2026-03-01"}}))
    with pytest.raises(ConfigError, match="belongs in"):
        load_params(path)


def test_each_section_is_named_after_the_stage_that_reads_it() -> None:
    """Every params.yaml section is a dvc.yaml stage, a shared section, or not a stage input."""
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    stages = set(yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"])
    shared = {"dataset", "paths", "data", "split"}  # read by several stages
    not_stage_inputs = {"serving", "mlflow"}
    assert set(params) - stages - shared - not_stage_inputs == set()


def test_ingest_source_defaults_to_the_generator(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["ingest"].pop("source"))
    assert load_params(path).ingest.source == "synthetic"


def test_ingest_source_section_missing_names_the_key(tmp_path: Path) -> None:
    def files_without_section(d) -> None:
        d["ingest"]["source"] = "files"
        del d["ingest"]["files"]

    path = write_params(tmp_path, files_without_section)
    with pytest.raises(ConfigError, match=r"ingest\.files: .*missing"):
        load_params(path)


def test_ingest_files_format_is_checked(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["ingest"]["files"].update({"format": "xlsx"}))
    with pytest.raises(ConfigError, match=r"ingest\.files\.format"):
        load_params(path)


def test_ingest_sql_needs_a_url_or_its_variable(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["ingest"]["sql"].update(url=None, url_env=None))
    with pytest.raises(ConfigError, match=r"ingest\.sql\.url_env: .*ingest\.sql\.url"):
        load_params(path)


def test_shipped_gates_are_lifts_over_the_positive_rate(project_params) -> None:
    promote, quality = project_params.promote, project_params.monitor.quality
    assert set(promote.minimum_lifts) == {"pr_auc", "precision"}
    assert "pr_auc" not in promote.absolute_minimums  # relative by default
    assert promote.absolute_minimums["roc_auc"] > 0.5  # ROC AUC's chance level is 0.5
    assert quality.min_precision_lift is not None and quality.min_precision is None


@pytest.mark.parametrize(
    ("section", "mutate", "message"),
    [
        (
            "promote",
            lambda s: s["minimum_lifts"].update({"pr_auc": 0}),
            r"promote\.minimum_lifts\.pr_auc: Input should be greater than 0",
        ),
        (
            "promote",
            lambda s: s.update({"slice_minimum_lifts": {"precision": -2}}),
            r"promote\.slice_minimum_lifts\.precision: Input should be greater than 0",
        ),
        (
            "promote",
            lambda s: s["minimum_lifts"].update({"roc_auc": 1.3}),
            r"promote\.minimum_lifts\.roc_auc\.\[key\]: Input should be 'pr_auc' or 'precision'",
        ),
        (
            "promote",
            lambda s: s["absolute_minimums"].update({"pr_auc": 15}),
            r"promote\.absolute_minimums\.pr_auc: Input should be less than or equal to 1",
        ),
        (
            "promote",
            lambda s: s["infra_validation"].update({"requests": 0}),
            r"promote\.infra_validation\.requests: Input should be greater than or equal to 1",
        ),
        (
            "promote",
            lambda s: s["infra_validation"].update({"max_p99_ms": -5}),
            r"promote\.infra_validation\.max_p99_ms: Input should be greater than 0",
        ),
        (
            "promote",
            lambda s: s["infra_validation"].update({"max_memory_mb": 0}),
            r"promote\.infra_validation\.max_memory_mb: Input should be greater than 0",
        ),
        (
            "promote",
            lambda s: s["infra_validation"].update({"max_p99_ms": float("inf")}),
            r"promote\.infra_validation\.max_p99_ms: Input should be a finite number",
        ),
        (
            "promote",
            lambda s: s["infra_validation"].update({"max_rss": 100}),
            r"unknown key 'promote\.infra_validation\.max_rss'",
        ),
        (
            "monitor",
            lambda s: s["quality"].update({"min_precision_lift": 0}),
            r"monitor\.quality\.min_precision_lift",
        ),
        (
            "monitor",
            lambda s: s["quality"].update({"min_precision": 1.5}),
            r"monitor\.quality\.min_precision:",
        ),
    ],
)
def test_bad_gate_values_are_rejected_with_their_key(
    tmp_path: Path, section: str, mutate, message: str
) -> None:
    path = write_params(tmp_path, lambda d: mutate(d[section]))
    with pytest.raises(ConfigError, match=message):
        load_params(path)


def test_an_absolute_precision_floor_can_replace_the_lift(tmp_path: Path) -> None:
    path = write_params(
        tmp_path,
        lambda d: d["monitor"]["quality"].update(
            {"min_precision_lift": None, "min_precision": 0.2}
        ),
    )
    quality = load_params(path).monitor.quality
    assert quality.min_precision_lift is None and quality.min_precision == 0.2


def test_a_bad_dataset_contract_names_the_key(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["dataset"]["label"].pop("column"))
    with pytest.raises(ConfigError, match=r"  - dataset\.label\.column: Field required"):
        load_params(path)
    path = write_params(tmp_path, lambda d: d["dataset"]["entity"].update({"dtype": "uuid"}))
    with pytest.raises(ConfigError, match=r"  - dataset\.entity\.dtype: "):
        load_params(path)


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "greater than or equal to 1"), ("forever", "valid integer"), (None, "valid integer")],
)
def test_a_bad_prediction_log_retention_is_rejected(tmp_path: Path, value, message) -> None:
    path = write_params(
        tmp_path, lambda d: d["serving"].update({"prediction_log_retention_days": value})
    )
    with pytest.raises(ConfigError, match=rf"serving\.prediction_log_retention_days: .*{message}"):
        load_params(path)
