"""`python -m tools.bench pit` (tools/bench_pit.py): it times the same join both ways
(the layer's rows equal merge_asof's), measures memory in processes of its own and
registers its figures in bench.json beside the rest. No test checks a duration."""

from __future__ import annotations

import json
from pathlib import Path

from {{ cookiecutter.package_name }}.config import Params

from tools import bench_pit


def test_the_layer_and_merge_asof_join_the_same_rows(params: Params) -> None:
    figures = bench_pit.bench_pit(params, 2_000, rounds=2, stock=True, memory=False)
    assert figures["rows"] == figures["feature_rows"] == 2_000
    assert figures["rows_returned"] == 2_000  # every label has its own features
    assert figures["same_as_merge_asof"]
    assert len(figures["layer_seconds_each"]) == len(figures["bare_seconds_each"]) == 2
    assert figures["ratio"] == figures["layer_seconds"] / figures["bare_seconds"]
    assert figures["stock_seconds"] > 0
    assert figures["offline_store"].endswith("offline_store.MergeAsofOfflineStore")
    assert "memory" not in figures


def test_memory_is_measured_in_processes_of_their_own(project_params: Params) -> None:
    figures = bench_pit.bench_pit(project_params, 1_000, rounds=1, stock=False, memory=True)
    memory = figures["memory"]
    assert set(memory) == {"labels_mb", "features_mb", "input_mb", "bare", "layer"}
    for path in ("bare", "layer"):
        run = memory[path]
        assert run["rows_returned"] == 1_000
        assert run["peak_rss_mb"] >= run["start_rss_mb"] > 0
        assert run["working_over_input"] == run["working_mb"] / memory["input_mb"]


def test_figures_are_registered_beside_the_rest_of_the_report(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"summary": {"linearity": 1.2}, "layer_ratios": {"gate": {"x": 1}}}))
    bench_pit.register(out, {"rows": 5, "ratio": 1.5})
    report = json.loads(out.read_text())
    assert report["summary"] == {"linearity": 1.2}
    assert report["layer_ratios"] == {"gate": {"x": 1}, "pit": {"rows": 5, "ratio": 1.5}}
    fresh = tmp_path / "new" / "bench.json"
    bench_pit.register(fresh, {"rows": 5})
    assert json.loads(fresh.read_text()) == {"layer_ratios": {"pit": {"rows": 5}}}
