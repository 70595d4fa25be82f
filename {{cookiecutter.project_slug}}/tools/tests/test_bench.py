"""The benchmark behind `make bench` (tools/bench.py, tools/bench_pipeline.py): its
arithmetic, its refusals, the data it generates for any dataset contract, the scratch
copies it runs, the stage metrics it collects, and one real run.

No test here checks a duration against a limit: the benchmark prints figures.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import Params, Window, load_params
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.contract_rows import contract_frame
from {{ cookiecutter.package_name }}.ingest_config import FilesSourceConfig, IngestConfig
from {{ cookiecutter.package_name }}.logs import console

from tools import bench, bench_pipeline, bench_serving, local_servers
from tools.bench_pipeline import (
    BENCH_SOURCE,
    SizeResult,
    fit,
    print_results,
    size_params,
    stage_metrics_env,
    summarise,
)
from tools.scratch import copy_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]

STAGES = {
    "ingest",
    "validate raw",
    "featurize",
    "validate features",
    "training-set",
    "materialize",
    "tune",
    "train",
    "evaluate",
    "validate predictions",
    "monitor",
    "promote",
}


def run(args: list[str], cwd: Path, check: bool = True, extra_env: dict[str, str] | None = None):
    """`args` as a stage would run: this venv first on PATH, no progress bars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"NO_PROGRESS": "1", **(extra_env or {})})
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}\n{done.stderr}")
    return done


def _result(rows: int, pipeline: float, bare: float) -> SizeResult:
    stage = {"command": "train", "startup_seconds": 0.5, "work_seconds": 1.0}
    return SizeResult(
        rows=rows,
        pipeline_seconds=pipeline,
        noop_seconds=1.2,
        stages=[{**stage, "total_seconds": 1.5, "peak_rss_mb": 300.0, "ok": True}],
        bare={
            "process_seconds": bare,
            "train_memory_ratio": 2.0,
            "train_rows": rows // 2,
            "device": "cpu",
            "rounds": 50,
            "matrix_seconds": 0.1,
            "train_seconds": 1.0,
            "train_row_rounds_per_second": 1e6,
            "train_peak_added_mb": 10.0,
            "matrix_mb": 5.0,
        },
    )


def test_fit_separates_fixed_from_marginal_cost() -> None:
    rows = [100_000, 1_000_000, 5_000_000]
    fixed, marginal = fit(rows, [20 + 12 * n / 1e6 for n in rows])
    assert fixed == pytest.approx(20)
    assert marginal == pytest.approx(12)


def test_fixed_part_from_the_smallest_sizes_marginal_from_the_largest() -> None:
    rows = [100_000, 1_000_000, 5_000_000]
    # growing faster than linear: seconds = 20 + 10 m + 2 m^2 (m: millions of rows)
    fixed, marginal = fit(rows, [20 + 10 * n / 1e6 + 2 * (n / 1e6) ** 2 for n in rows])
    assert fixed == pytest.approx(19.8)
    assert marginal == pytest.approx(22.0)


def test_one_size_cannot_be_fitted() -> None:
    fixed, marginal = fit([100_000], [30.0])
    assert math.isnan(fixed) and math.isnan(marginal)


def test_summary_ratios_against_the_bare_work(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [100_000, 1_000_000, 5_000_000]
    results = [_result(n, 60 + 18 * n / 1e6, 3 + 12 * n / 1e6) for n in rows]
    summary = summarise(results)
    assert summary["marginal_ratio"] == pytest.approx(1.5)
    assert summary["fixed_overhead_seconds"] == pytest.approx(57)
    assert summary["linearity"] == pytest.approx(1.0)
    assert summary["noop_repro_seconds"] == pytest.approx(1.2)
    monkeypatch.setattr(console, "width", 200)  # no wrapped headers
    with console.capture() as captured:
        print_results(results, summary)
    text = captured.get()
    assert "pipeline / bare" in text and "marginal ratio" in text and "within" in text


def test_super_linear_growth_shows_in_linearity() -> None:
    rows = [100_000, 1_000_000, 5_000_000]
    # quadratic in rows: the per-row time at 5M is far above the one at 1M
    results = [_result(n, 30 + 2 * (n / 1e6) ** 2, 3 + 10 * n / 1e6) for n in rows]
    assert summarise(results)["linearity"] > 1.3


def test_two_sizes_leave_linearity_undefined() -> None:
    """The fixed part fitted on the two sizes compared makes their per-row times equal."""
    rows = [1_000_000, 5_000_000]
    results = [_result(n, 30 + 2 * (n / 1e6) ** 2, 3 + 10 * n / 1e6) for n in rows]
    assert summarise(results)["linearity"] is None


def test_bad_sizes_are_refused(tmp_path: Path) -> None:
    params = load_params(PROJECT_ROOT / "params.yaml")
    with pytest.raises(ValueError, match="10,000 rows or more"):
        bench_pipeline.run_benchmark(tmp_path, params, [500], 10_000, tmp_path / "b.json")
    done = run(
        [sys.executable, "-m", "tools.bench", "pipeline", "--sizes", "1M,5M"],
        PROJECT_ROOT,
        check=False,
    )
    assert done.returncode == 2
    assert "comma-separated integers" in done.stderr


def test_stage_processes_record_their_metrics_without_a_package_hook(tmp_path: Path) -> None:
    """tools/stage_metrics/sitecustomize.py: one line per process that imports a stage
    module, none for other processes."""
    record = tmp_path / "stages.jsonl"
    env = stage_metrics_env(record)
    stage = "import {{ cookiecutter.package_name }}.stages.featurize, time; time.sleep(0.2)"
    run([sys.executable, "-c", stage, "featurize"], tmp_path, extra_env=env)
    run([sys.executable, "-c", "import {{ cookiecutter.package_name }}.config"], tmp_path, extra_env=env)
    failed = run([sys.executable, "-c", f"{stage}; import sys; sys.exit(3)"], tmp_path, False, env)
    assert failed.returncode == 3
    ok, bad = (json.loads(line) for line in record.read_text().splitlines())
    assert ok["stage_module"] == "{{ cookiecutter.package_name }}.stages.featurize"
    assert ok["command"] == "featurize" and ok["ok"] and not bad["ok"]
    assert ok["startup_seconds"] > 0 and ok["work_seconds"] >= 0.2
    assert ok["total_seconds"] == pytest.approx(
        ok["startup_seconds"] + ok["work_seconds"], abs=0.01
    )
    assert ok["peak_rss_mb"] > 10


# --- the data the bench generates, for any contract ---------------------------------


def files_params(params: Params, raw: Path) -> Params:
    """`params` reading a files source, its batches in `raw`."""
    ingest = IngestConfig(source="files", files=FilesSourceConfig(path="data/source/t.csv"))
    paths = params.paths.model_copy(update={"raw": raw})
    return params.model_copy(update={"ingest": ingest, "paths": paths})


def test_sizes_keep_the_projects_revisit_ratio() -> None:
    assert size_params(600_000, 60, 20_000 / 1_500) == {
        "rows_per_day": 10_000,
        "population": 133_333,
    }
    assert size_params(1_000, 60, 5.0) == {"rows_per_day": 100, "population": 500}
    # never fewer entities than rows in a day: each entity appears at most once a day
    assert size_params(60_000, 60, 0.5) == {"rows_per_day": 1_000, "population": 1_000}


def test_revisit_ratio_of_the_synthetic_source(project_params: Params) -> None:
    synthetic = IngestConfig(
        source="synthetic", synthetic={"rows_per_day": 400, "population": 3000}
    )
    params = project_params.model_copy(update={"ingest": synthetic})
    assert bench.revisit_ratio(params) == pytest.approx(7.5)


def test_revisit_ratio_is_measured_on_the_ingested_batches(
    params: Params, contract: DatasetContract, tmp_path: Path
) -> None:
    from {{ cookiecutter.package_name }}.batches import batch_path

    days = Window(end_date=dt.date(2026, 3, 31), days=4).dates()
    frame = contract_frame(contract, days, 200, population=500, seed=1)
    for day, part in frame.groupby(frame[contract.timestamp].dt.date):
        part.to_parquet(batch_path(tmp_path, day), index=False)
    measured = bench.revisit_ratio(files_params(params, tmp_path))
    assert measured == pytest.approx(frame[contract.entity.key].nunique() / 200)
    assert 1.0 < measured < 2.5  # 500 entities, 200 a day over 4 days
    empty = files_params(params, tmp_path / "none")
    assert bench.revisit_ratio(empty) == bench.DEFAULT_REVISIT_RATIO


def test_generated_rows_satisfy_the_contract(params: Params, contract: DatasetContract) -> None:
    days = Window(end_date=dt.date(2026, 3, 31), days=5).dates()
    raw = bench.contract_raw(params, 5_000, days, seed=3)
    assert list(raw.columns) == contract.raw_columns
    assert len(raw) == 5_000
    per_day = raw.groupby(raw[contract.timestamp].dt.date).size()
    assert sorted(per_day.index) == days and (per_day == 1_000).all()
    assert not raw.duplicated([contract.entity.key, contract.timestamp]).any()
    assert set(raw[contract.label.column].unique()) == {0, 1}
    keys = raw[contract.entity.key]
    if contract.entity.dtype == "int":
        assert keys.dtype == "int64"
    else:
        assert keys.map(type).eq(str).all()
    for column, spec in contract.categorical.items():
        assert set(raw[column].dropna()) <= set(spec.values)
    # the project's revisit ratio: about ratio x 1,000 entities over the 5 days
    population = round(1_000 * bench.revisit_ratio(params))
    assert raw[contract.entity.key].nunique() <= population


def test_covariate_drift_moves_the_inputs(params: Params, contract: DatasetContract) -> None:
    days = Window(end_date=dt.date(2026, 3, 31), days=3).dates()
    column = next(iter(contract.numeric))
    plain = bench.contract_raw(params, 3_000, days)[column].mean()
    drifted = bench.contract_raw(params, 3_000, days, **bench.DRIFT_SCENARIOS["covariate"])
    assert drifted[column].mean() > 1.3 * plain


def _suite_and_days(
    contract: DatasetContract, tiny_raw: pd.DataFrame, tmp_path: Path
) -> tuple[dict[str, Any], dict[dt.date, pd.DataFrame]]:
    """The contract's raw suite of `tiny_raw`, and its batches as the gate reads them."""
    from {{ cookiecutter.package_name }}.suite_bootstrap import raw_suite

    by_day = {}
    for day, part in tiny_raw.groupby(tiny_raw[contract.timestamp].dt.date):
        part.to_parquet(tmp_path / f"{day}.parquet", index=False)
        by_day[day] = pd.read_parquet(tmp_path / f"{day}.parquet")
    return raw_suite(contract, tiny_raw, len(by_day)), by_day


def _day_values(params: Params, day: dt.date) -> dict[str, Any]:
    from {{ cookiecutter.package_name }}.raw_gate import batch_parameters

    now = dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC)
    # room for tiny_raw's 300 rows a day, whatever the project's own table has
    return batch_parameters(day, bench.gate_config(params, 300), (0.0, 1.0), now)


def test_bare_checks_pass_every_critical_expectation_of_the_contracts_suite(
    params: Params, contract: DatasetContract, tiny_raw: pd.DataFrame, tmp_path: Path
) -> None:
    suite, by_day = _suite_and_days(contract, tiny_raw, tmp_path)
    critical = [e for e in suite["expectations"] if e.get("severity", "critical") == "critical"]
    for day, batch in by_day.items():
        values = _day_values(params, day)
        failed = [e for e in critical if not bench._bare_check(batch, e, values)]
        assert failed == [], f"{day}: {failed}"


def test_bare_checks_fail_a_corrupted_batch(
    params: Params, contract: DatasetContract, tiny_raw: pd.DataFrame, tmp_path: Path
) -> None:
    suite, by_day = _suite_and_days(contract, tiny_raw, tmp_path)
    day, batch = next(iter(by_day.items()))
    bad = batch.copy()
    category = next(iter(contract.categorical))
    bad.loc[0, category] = "never-seen"
    bad.loc[1, contract.label.column] = 2
    bad = pd.concat([bad, bad.iloc[[2]]], ignore_index=True)  # a duplicated key
    values = _day_values(params, day)
    failed = {
        (e["type"], e["kwargs"].get("column"))
        for e in suite["expectations"]
        if not bench._bare_check(bad, e, values)
    }
    assert ("expect_column_values_to_be_in_set", category) in failed
    assert ("expect_column_values_to_be_in_set", contract.label.column) in failed
    assert ("expect_compound_columns_to_be_unique", None) in failed
    with pytest.raises(ValueError, match="no bare baseline for expect_nothing"):
        bench._bare_check(batch, {"type": "expect_nothing", "kwargs": {}}, values)


def test_raw_gate_bench_passes_on_its_own_rows(params: Params) -> None:
    figures = bench.bench_raw_gate(params, 3_000)
    assert figures["passed"] == 1.0
    assert figures["rows"] == 3_000 and figures["batches"] == 10
    assert figures["daily_run_rows"] == 300  # the daily run validates the new batch only
    assert figures["expectations"] > len(params.dataset.raw_columns)
    assert figures["gx_over_bare_cpu"] > 0 and figures["target_gx_over_bare"] == 2.0


def test_gate_and_monitor_figures_are_registered_beside_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"summary": {"x": 1}, "layer_ratios": {"pit": {"rows": 5}}}))
    bench.register_layer(out, "gates", {"gx_over_bare": 1.8})
    scenario = {
        "full_prepare_seconds": 9.0,
        "full_report_seconds": 30.0,
        "sampled_prepare_seconds": 1.0,
        "sampled_report_seconds": 2.5,
        "sampled_cpu_seconds": 3.0,
        "verdicts_match": True,
        "same_failed_checks": True,
        "same_drifted_features": False,
    }
    layer = bench.monitor_layer([scenario, {**scenario, "sampled_report_seconds": 1.0}], 10, 5)
    assert layer["sampled_seconds_max"] == 3.5 and layer["full_seconds_max"] == 39.0
    assert layer["target_seconds"] == 5.0 and layer["same_verdicts"] is False
    bench.register_layer(out, "monitor", layer)
    report = json.loads(out.read_text())
    assert report["summary"] == {"x": 1}
    assert set(report["layer_ratios"]) == {"pit", "gates", "monitor"}


def test_feature_store_bench_on_the_contract(params: Params) -> None:
    figures = bench.bench_feature_store(params, 2_000, PROJECT_ROOT / "features")
    assert figures["rows"] == 2_000
    assert figures["historical_rows_returned"] == 2_000  # every label has its own features


def test_monitoring_bench_flags_drift_and_judges_quality(params: Params) -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        bench.bench_monitoring(params, 1_000, ["sideways"])
    none, covariate = bench.bench_monitoring(params, 4_000, ["none", "covariate"])
    days = params.monitor.current_days
    assert none["current_rows"] == covariate["current_rows"] == 4_000 // days * days
    assert none["labelled_rows"] > 0 and none["full_quality"] == "checked"
    assert covariate["full_drift_share"] > none["full_drift_share"]
    assert covariate["full_retrain"] and not none["full_retrain"]
    assert none["verdicts_match"] and covariate["verdicts_match"]


def test_served_ids_are_typed_as_the_service_takes_them(
    tiny_features: pd.DataFrame, contract: DatasetContract, tmp_path: Path
) -> None:
    path = tmp_path / "features.parquet"
    tiny_features.to_parquet(path, index=False)
    ids = bench_serving.served_ids(path, contract)
    assert len(ids) == tiny_features[contract.entity.key].nunique()
    kind = int if contract.entity.dtype == "int" else str
    assert all(type(i) is kind for i in ids.tolist())


@pytest.mark.parametrize("kind", bench_serving.STORES)
def test_a_store_copy_serves_the_feature_table_from_its_own_online_store(
    kind: str, params: Params, tiny_features: pd.DataFrame, tmp_path: Path
) -> None:
    """What `bench serve` measures beside the project's store: the feature table,
    materialized by the project's own materialize into a scratch store of the other kind."""
    from {{ cookiecutter.package_name }}.feature_store import open_store
    from {{ cookiecutter.package_name }}.online_read import online_features

    contract = params.dataset
    (tmp_path / "features").mkdir()
    tiny_features.to_parquet(tmp_path / "features" / "features.parquet", index=False)
    sized = params.model_copy(
        update={"paths": params.paths.model_copy(update={"features": tmp_path / "features"})}
    )
    with local_servers.redis_server(PROJECT_ROOT) as address:
        if kind == "redis" and address is None:
            pytest.skip("no redis-server here")
        repo = bench_serving.store_copy(
            sized, kind, tmp_path / "copy", address, PROJECT_ROOT / "features"
        )
        store = open_store(repo, apply=False)
        stores = {"sqlite": bench_serving.SQLITE_STORE, "redis": bench_serving.REDIS_STORE}
        assert store.config.online_store.type == stores[kind]
        if kind == "sqlite":
            assert (repo / "state" / "online_store.db").is_file()  # in the copy, not the project
        newest = tiny_features.sort_values(contract.timestamp).drop_duplicates(
            contract.entity.key, keep="last"
        )
        ids = contract.key_values(newest[contract.entity.key].head(20).tolist())
        online, unknown = online_features(store, ids, contract)
    assert unknown == []
    want = newest.set_index(contract.entity.key).loc[ids, contract.feature_columns]
    np.testing.assert_allclose(
        online[contract.feature_columns].to_numpy(dtype="float64"),
        want.to_numpy(dtype="float64"),
        atol=1e-9,
    )


def test_the_serving_table_prints_each_target_beside_its_figure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    figures = {
        "bare_p50_ms": 0.4,
        "bare_p99_ms": 1.0,
        "feast_read_p50_ms": 0.3,
        "feast_read_p99_ms": 0.8,
        "http_p50_ms": 1.1,
        "http_p99_ms": 12.0,  # over the SQLite target: printed, never raised
        "p50_ratio_http_over_bare": 2.75,
        "p99_ratio_http_over_bare": 12.0,
        "batch_100_entities_per_second": 4000.0,
    }
    report = {
        "stores": {"sqlite": figures, "redis": figures},
        "targets": {
            "http_p99_ms": bench_serving.HTTP_P99_TARGET_MS,
            "p99_ratio_http_over_bare": bench_serving.P99_RATIO_TARGET,
        },
        "machine": {"cpus": 2, "load_average_1m_before": 0.5, "load_average_1m_after": 0.7},
    }
    monkeypatch.setattr(console, "width", 200)
    with console.capture() as captured:
        bench_serving.print_serving(report, 100)
    table = captured.get()
    http_p99 = next(line for line in table.splitlines() if "HTTP p99" in line)
    assert "12.00" in http_p99 and "<= 10" in http_p99 and "<= 5" in http_p99
    ratio = next(line for line in table.splitlines() if "HTTP / bare at p99" in line)
    assert ratio.count("<= 1.3") == 2
    with pytest.raises(ValueError, match="unknown online store"):
        bench_serving.bench_serving(Params.model_construct(), 10, 10, ("cassandra",))


BARE_WINDOW = Window(end_date=dt.date(2026, 3, 31), days=20)
BARE_ROWS_PER_DAY = 300


@pytest.fixture
def bare_project(params: Params, contract: DatasetContract, tmp_path: Path) -> Params:
    """The project's params over a 20-day window of 300 contract rows a day in tmp_path,
    with a small split and a short training, for the bare baselines."""
    from {{ cookiecutter.package_name }}.batches import batch_path

    window = BARE_WINDOW
    frame = contract_frame(contract, window.dates(), BARE_ROWS_PER_DAY, population=3_000, seed=5)
    for day, part in frame.groupby(frame[contract.timestamp].dt.date):
        part.to_parquet(batch_path(tmp_path, day), index=False)
    return params.model_copy(
        update={
            "paths": params.paths.model_copy(update={"raw": tmp_path}),
            "data": params.data.model_copy(update={"window_days": window.days}),
            "interval": params.interval.model_copy(update={"end_date": window.end_date}),
            "split": params.split.model_copy(update={"valid_days": 3, "test_days": 3}),
            "train": params.train.model_copy(update={"num_boost_round": 20, "nthread": 2}),
        }
    )


def test_bare_training_trains_on_matured_labels_only(
    bare_project: Params, contract: DatasetContract
) -> None:
    figures = bench_pipeline.bare_training(bare_project)
    split, horizon = bare_project.split, contract.label.horizon_days
    train_days = BARE_WINDOW.days - horizon - split.valid_days - split.test_days
    assert figures["rows"] == BARE_ROWS_PER_DAY * BARE_WINDOW.days
    assert figures["train_rows"] == BARE_ROWS_PER_DAY * train_days
    assert figures["features"] == len(contract.feature_columns)
    assert figures["rounds"] >= 1


def test_bare_daily_reads_the_newest_batch_and_retrains_on_the_window(
    bare_project: Params,
) -> None:
    from tools.bench_daily import bare_daily

    figures = bare_daily(bare_project)
    assert figures["new_batch_rows"] == BARE_ROWS_PER_DAY
    assert figures["rounds"] >= 1 and figures["train_rows"] > 0
    steps = ("new_batch_seconds", "matrix_seconds", "train_seconds", "predict_seconds")
    assert figures["work_seconds"] == pytest.approx(sum(figures[k] for k in steps))


def test_sized_copy_ingests_the_generated_rows_and_passes_the_raw_gate(
    contract: DatasetContract, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scratch copy reads the generated rows through `ingest.source: files`, over the
    project's window, and its suites fit them."""
    from {{ cookiecutter.package_name }} import sources
    from {{ cookiecutter.package_name }}.batches import read_raw
    from {{ cookiecutter.package_name }}.raw_gate import validate_window
    from {{ cookiecutter.package_name }}.stages import ingest

    def shrink(p: dict[str, Any]) -> None:
        p["dataset"] = contract.model_dump(mode="json")
        p["data"]["window_days"] = 12

    source = copy_project(PROJECT_ROOT, tmp_path / "project", shrink)
    params = load_params(source / "params.yaml")
    copy = bench_pipeline.sized_copy(source, tmp_path / "copy", 12 * 150, params)
    sized = load_params(copy / "params.yaml")
    assert sized.dataset == contract and sized.window == params.window
    assert sized.ingest.source == "files"
    assert sized.ingest.files.path == BENCH_SOURCE.as_posix()
    assert sized.validate_raw.min_rows_per_day <= 150 <= sized.validate_raw.max_rows_per_day
    delivered = pd.read_parquet(copy / BENCH_SOURCE)
    assert len(delivered) == 12 * 150
    assert set(delivered[contract.label.column]) <= {
        contract.label.positive,
        *(contract.label.negative or [f"not {contract.label.positive}"]),
    }

    monkeypatch.chdir(copy)
    sources._file_table.cache_clear()
    ingest.run(sized.window, sized.ingest, contract, sized.paths.raw)
    raw = read_raw(sized.paths.raw)
    assert len(raw) == len(delivered)
    positive = delivered[contract.label.column].astype(str) == str(contract.label.positive)
    order = [contract.timestamp, contract.entity.key]
    got = raw.sort_values(order)[contract.label.column].to_numpy()
    want = positive.to_numpy()[np.lexsort([delivered[c].to_numpy() for c in order[::-1]])]
    assert (got == want.astype("int64")).all()
    report = validate_window(sized.paths, sized.window, sized.validate_raw, contract)
    assert report.passed, [f.expectation for f in report.findings]
    # the suites and the window are the copy's commit; only the generated rows are not
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=copy, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert status and all(line.startswith("?? data/source/") for line in status), status


def test_a_copy_never_writes_suites_outside_itself(project_params: Params, tmp_path: Path) -> None:
    paths = project_params.paths.model_copy(update={"expectations": tmp_path / "suites"})
    params = project_params.model_copy(update={"paths": paths})
    with pytest.raises(ValueError, match=r"paths\.expectations is absolute"):
        bench_pipeline.sized_copy(PROJECT_ROOT, tmp_path / "copy", 10_000, params)
    assert not (tmp_path / "copy").exists() and not (tmp_path / "suites").exists()


def _small(p: dict[str, Any]) -> None:
    p["data"]["window_days"] = 20
    p["split"].update({"valid_days": 3, "test_days": 3})
    p["train"].update({"num_boost_round": 60, "nthread": 2})


@pytest.mark.bench
def test_bench_pipeline_runs_and_writes_every_section(tmp_path: Path) -> None:
    """The real command on a fresh copy: one small size, components included."""
    project = copy_project(PROJECT_ROOT, tmp_path / "project", _small)
    out = tmp_path / "bench.json"
    done = run(
        [
            sys.executable,
            "-m",
            "tools.bench",
            "pipeline",
            "--sizes",
            "12000",
            "--component-rows",
            "10000",
            "--serve-requests",
            "50",
            "--out",
            str(out),
        ],
        project,
    )
    assert "dvc repro against the bare work" in done.stderr
    report = json.loads(out.read_text())
    (size,) = report["pipeline"]
    assert size["rows"] == 12_000
    assert {s["command"] for s in size["stages"]} == STAGES
    assert all(s["ok"] for s in size["stages"])
    assert size["pipeline_seconds"] > sum(s["work_seconds"] for s in size["stages"])
    assert size["noop_seconds"] > 0
    bare = size["bare"]
    assert bare["rounds"] >= 1 and bare["train_rows"] > 0 and bare["matrix_mb"] > 0
    assert report["raw_gate"]["rows"] >= 10_000
    assert report["feast"]["historical_rows_returned"] > 0
    assert report["layer_ratios"]["pit"]["same_as_merge_asof"]
    (online,) = report["layer_ratios"]["online_load"]["sizes"].values()
    assert online["sqlite"]["online_store"].endswith(".WideSqliteOnlineStore")
    for path in ("project", "bare", "stock", "bare_feast_rows"):
        assert online["sqlite"][f"{path}_seconds"] > 0, path
    assert {m["scenario"] for m in report["monitoring"]} == {"none", "covariate", "concept"}
    assert report["serving"]["http_p50_ms"] > 0
    assert "dag_parse_extra_seconds" in report["summary"]
    daily = size["daily"]  # end_date one day on, then one train.* key changed
    for key in ("daily_run_seconds", "daily_bare_seconds", "devloop_seconds"):
        assert daily[key] > 0 and report["summary"][key] == daily[key]
    assert daily["daily_ratio"] == pytest.approx(
        daily["daily_run_seconds"] / daily["daily_bare_seconds"]
    )
    assert {s["command"] for s in daily["daily_stages"]} == STAGES
    assert daily["daily_bare"]["new_batch_rows"] > 0
