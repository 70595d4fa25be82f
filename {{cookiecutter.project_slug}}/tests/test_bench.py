"""The benchmark behind `make bench`: its arithmetic, its refusals, and one real run.

No test here checks a duration against a limit: the benchmark prints figures.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import bench_pipeline
from {{ cookiecutter.package_name }}.bench_pipeline import SizeResult, fit, print_results, summarise
from {{ cookiecutter.package_name }}.config import load_params
from {{ cookiecutter.package_name }}.logs import console

from pipeline_helpers import copy_project, run

STAGES = {
    "ingest",
    "validate raw",
    "featurize",
    "validate features",
    "training-set",
    "materialize",
    "train",
    "evaluate",
    "validate predictions",
    "monitor",
    "promote",
}


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


def test_bad_sizes_are_refused(tmp_path: Path) -> None:
    params = load_params(Path("params.yaml"))
    with pytest.raises(ValueError, match="10,000 rows or more"):
        bench_pipeline.run_benchmark(tmp_path, params, [500], 10_000, tmp_path / "b.json")
    done = run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "bench", "pipeline", "--sizes", "1M,5M"],
        Path.cwd(),
        check=False,
    )
    assert done.returncode == 2
    assert "comma-separated integers" in done.stderr


@pytest.mark.bench
def test_bench_pipeline_runs_and_writes_every_section(tmp_path: Path) -> None:
    """The real command on a fresh copy: one small size, components included."""
    project = copy_project(tmp_path / "project")
    out = tmp_path / "bench.json"
    done = run(
        [
            sys.executable,
            "-m",
            "{{ cookiecutter.package_name }}",
            "bench",
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
    assert {m["scenario"] for m in report["monitoring"]} == {"none", "covariate", "concept"}
    assert report["serving"]["http_p50_ms"] > 0
    assert "dag_parse_extra_seconds" in report["summary"]
