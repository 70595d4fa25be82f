"""champion.py without a registry: where a version's threshold comes from, scoring by name."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.champion import (
    DEFAULT_THRESHOLD,
    RUN_THRESHOLD_PARAM,
    THRESHOLD_TAG,
    booster_scores,
    version_threshold,
)
from {{ cookiecutter.package_name }}.errors import StageInputError


class FakeClient:
    def __init__(self, params: dict[str, str]) -> None:
        self.params = params

    def get_run(self, run_id: str) -> SimpleNamespace:
        return SimpleNamespace(data=SimpleNamespace(params=self.params))


def version(tags: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(name="m", version="3", run_id="r", tags=tags)


def test_the_version_tag_is_the_threshold() -> None:
    client = FakeClient({RUN_THRESHOLD_PARAM: "0.2"})
    assert version_threshold(client, version({THRESHOLD_TAG: "0.37"})) == 0.37


def test_a_version_registered_by_hand_falls_back_to_the_run_param() -> None:
    assert version_threshold(FakeClient({RUN_THRESHOLD_PARAM: "0.2"}), version({})) == 0.2
    assert version_threshold(FakeClient({}), version({})) == DEFAULT_THRESHOLD


def test_booster_scores_reads_features_by_name() -> None:
    import xgboost as xgb

    x = pd.DataFrame({"a": [0.0, 1.0, 0.0, 1.0], "b": [1.0, 1.0, 0.0, 0.0]})
    booster = xgb.train(
        {"objective": "binary:logistic"},
        xgb.DMatrix(x, label=[0, 1, 0, 1]),
        num_boost_round=2,
    )
    scores = booster_scores(booster, x[["b", "a"]].assign(extra=1.0))
    assert np.allclose(scores, booster.predict(xgb.DMatrix(x)))
    with pytest.raises(StageInputError, match="lacks features the model reads: \\['b'\\]"):
        booster_scores(booster, x[["a"]])
