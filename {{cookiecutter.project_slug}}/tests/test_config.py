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
    return path


def test_shipped_params_are_valid(project_params) -> None:
    assert project_params.train.device in {"auto", "cpu", "cuda"}
    assert project_params.data.start_date < project_params.data.end_date


def test_unknown_key_is_rejected_with_its_name(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["train"].update({"learning_rat": 0.1}))
    with pytest.raises(ConfigError, match=r"unknown key 'train\.learning_rat'"):
        load_params(path)


def test_mistyped_value_is_rejected_with_its_key(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["train"].update({"max_depth": "deep"}))
    with pytest.raises(ConfigError, match=r"train\.max_depth"):
        load_params(path)


def test_out_of_range_value_is_rejected(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["data"]["drift"].update({"covariate": 3}))
    with pytest.raises(ConfigError, match=r"data\.drift\.covariate"):
        load_params(path)


def test_unknown_device_is_rejected(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["train"].update({"device": "tpu"}))
    with pytest.raises(ConfigError, match=r"train\.device"):
        load_params(path)


def test_shipped_params_train_locally(project_params) -> None:
    assert project_params.train.engine == "local"
    assert project_params.dask.scheduler_address is None  # dask engine: a LocalCluster per run


def test_unknown_engine_is_rejected(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["train"].update({"engine": "spark"}))
    with pytest.raises(ConfigError, match=r"train\.engine"):
        load_params(path)


@pytest.mark.parametrize(
    ("key", "value"),
    [("n_workers", 0), ("threads_per_worker", "many"), ("memory_limit", "lots"), ("partitions", 0)],
)
def test_bad_dask_cluster_value_is_rejected_with_its_key(tmp_path: Path, key, value) -> None:
    path = write_params(tmp_path, lambda d: d["dask"].update({key: value}))
    with pytest.raises(ConfigError, match=rf"dask\.{key}"):
        load_params(path)


@pytest.mark.parametrize("value", ["auto", "4GiB", "512 MB", 0, 4_000_000_000])
def test_dask_memory_limit_accepts_sizes(tmp_path: Path, value) -> None:
    path = write_params(tmp_path, lambda d: d["dask"].update({"memory_limit": value}))
    assert load_params(path).dask.memory_limit == value


def test_more_rows_than_customers_is_rejected(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda d: d["data"].update({"rows_per_day": 10**6}))
    with pytest.raises(ConfigError, match="cannot exceed n_customers"):
        load_params(path)


def test_missing_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
