from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.metrics import classification_metrics, evaluate, write_reports


def test_metrics_on_a_known_example() -> None:
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.4, 0.9])
    m = classification_metrics(y, scores, threshold=0.5)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)


def test_evaluation_writes_metrics_slices_and_plots(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    test = pd.DataFrame(
        {"churned": rng.integers(0, 2, 400), "segment": rng.choice(["a", "b"], 400)}
    )
    scores = np.clip(test["churned"] * 0.5 + rng.random(400) * 0.5, 0, 1)
    result = evaluate(test, scores, 0.5, 0.5, {"f1": 2.0, "f2": 5.0}, "segment", plot_points=50)
    assert result.metrics["roc_auc"] > result.metrics["baseline"]["roc_auc"] == 0.5
    assert set(result.slices) == {"a", "b"}
    assert len(result.roc) <= 50
    assert result.importance["feature"].tolist() == ["f2", "f1"]
    paths = write_reports(result, tmp_path)
    assert json.loads(paths["metrics"].read_text())["roc_auc"] == pytest.approx(
        result.metrics["roc_auc"]
    )
    assert pd.read_csv(paths["confusion"]).shape == (400, 2)
