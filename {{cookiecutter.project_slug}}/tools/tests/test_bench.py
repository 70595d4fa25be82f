"""The benchmark behind `make bench` (tools/bench.py, tools/bench_pipeline.py): its
arithmetic, its refusals, the stage metrics it collects, and one real run.

No test here checks a duration against a limit: the benchmark prints figures.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.config import load_params
from {{ cookiecutter.package_name }}.logs import console
from tools import bench_pipeline
from tools.bench_pipeline import SizeResult, fit, print_results, stage_metrics_env, summarise
from tools.scratch import copy_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]

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
    assert {m["scenario"] for m in report["monitoring"]} == {"none", "covariate", "concept"}
    assert report["serving"]["http_p50_ms"] > 0
    assert "dag_parse_extra_seconds" in report["summary"]
