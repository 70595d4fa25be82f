"""Typed view of params.yaml `tune`: the optional Optuna search over train's XGBoost
parameters (tuning.py runs it). config.py holds the rest of params.yaml and loads the file."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The train.* keys a search may cover; the rest of `train` holds for every trial.
Tunable = Literal[
    "learning_rate", "max_depth", "min_child_weight", "subsample", "colsample_bytree", "reg_lambda"
]
INTEGER_KEYS = frozenset({"max_depth"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchRange(_Strict):
    """One key's search space: a range (`low`..`high`, sampled on a log scale when `log`)
    or a list of `choices`; not both."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[float] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _range_or_choices(self) -> SearchRange:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("give either choices or low/high (and log), not both")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError(f"choices repeat a value: {self.choices}")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high (a range) or choices (a list)")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got {self.low})")
        return self

    def values(self) -> list[float]:
        """The values whose validity bounds the space: the choices, or low and high."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]  # type: ignore[list-item]

    def contains(self, value: float) -> bool:
        if self.choices is not None:
            return value in self.choices
        return self.low <= value <= self.high  # type: ignore[operator]


class TuneConfig(_Strict):
    # false (the default, and the scheduled run's): the tune stage only records that
    # tuning is off and train uses params.yaml `train` as it is
    enabled: bool = False
    n_trials: int = Field(30, ge=1)  # the trial budget: at most this many trials ...
    timeout_seconds: float | None = Field(None, gt=0)  # ... and none started after this
    seed: int = 42  # the TPE sampler's seed: the same seed, data and budget, the same search
    # trials at least this many boosting rounds in before the median pruner may stop them
    prune_warmup_rounds: int = Field(10, ge=0)
    search_space: dict[Tunable, SearchRange] = Field(min_length=1)

    @model_validator(mode="after")
    def _integer_keys(self) -> TuneConfig:
        for key in INTEGER_KEYS & set(self.search_space):
            space = self.search_space[key]
            if any(float(v) != int(v) for v in space.values()):
                raise ValueError(f"search_space.{key}: {key} is an integer: give whole numbers")
        return self
