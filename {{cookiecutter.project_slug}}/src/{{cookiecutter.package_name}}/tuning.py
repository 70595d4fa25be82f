"""Tuning: an Optuna search over train's XGBoost parameters (params.yaml `tune`).

Every trial trains as the train stage does, on the same time split: it fits the train
split, early-stops on the valid split and scores the valid split's PR AUC (`aucpr`,
train's early-stopping metric) at its best round; the test days are never read. Trial 0
is train's own parameters (enqueued), so the best trial is at least as good as them on
the valid split. Trials falling behind the median of earlier ones at the same boosting
round are pruned. The search runs XGBoost in this process (the local engine) whatever
train.engine says. The TPE sampler is seeded (tune.seed): on the CPU, the same data,
parameters and trial budget give the same search.

The tune stage writes the outcome to paths.tuned_params; `train` reads it back
(`tuned_config`): the best parameters when tuning is on, nothing when it is off."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import xgboost as xgb
from pydantic import ValidationError

from .config import TrainConfig
from .contract import DatasetContract
from .errors import ConfigError, StageInputError
from .files import read_json, write_json
from .model import fit_booster, resolve_device, scale_pos_weight, training_matrices, xgb_params
from .split import Splits
from .training import check_classes
from .tune_config import INTEGER_KEYS, SearchRange, Tunable, TuneConfig

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

OBJECTIVE = "aucpr"  # on the valid split, at the trial's best boosting round
MEDIAN_AFTER_TRIALS = 5  # the pruner judges a trial against the median of this many or more


@dataclass(frozen=True)
class Tuned:
    """What paths.tuned_params holds: whether tuning was on and, if so, its outcome."""

    enabled: bool
    params: dict[str, float | int] = field(default_factory=dict)  # the best trial's values
    value: float | None = None  # its valid aucpr
    default_value: float | None = None  # trial 0's: train's own parameters
    trials: int = 0  # trials run (complete + pruned)
    pruned: int = 0
    seconds: float = 0.0
    mlflow_run_id: str | None = None  # the parent `tune` run; one nested run per trial


def check_search_space(tune: TuneConfig, train: TrainConfig) -> None:
    """A ConfigError when a bound or choice of tune.search_space is no valid train value,
    or when train's own value lies outside its key's space (trial 0 runs it)."""
    base = train.model_dump()
    for key, space in tune.search_space.items():
        for value in space.values():
            try:
                TrainConfig.model_validate({**base, key: value})
            except ValidationError as exc:
                reason = exc.errors()[0]["msg"]
                raise ConfigError(
                    f"params.yaml tune.search_space.{key}: {value} is not a valid "
                    f"train.{key} ({reason})"
                ) from None
        current = getattr(train, key)
        if not space.contains(current):
            raise ConfigError(
                f"params.yaml train.{key} ({current}) lies outside tune.search_space.{key} "
                f"({describe(space)}): trial 0 runs train's own parameters, so the space "
                "must hold them. Widen the range or add the value to its choices."
            )


def describe(space: SearchRange) -> str:
    if space.choices is not None:
        return f"choices {space.choices}"
    return f"{space.low}..{space.high}{' (log)' if space.log else ''}"


def _suggest(trial: optuna.Trial, key: str, space: SearchRange) -> float | int:
    if space.choices is not None:
        choices = [int(c) if key in INTEGER_KEYS else c for c in space.choices]
        return trial.suggest_categorical(key, choices)
    if key in INTEGER_KEYS:
        return trial.suggest_int(key, int(space.low), int(space.high), log=space.log)  # type: ignore[arg-type]
    return trial.suggest_float(key, space.low, space.high, log=space.log)  # type: ignore[arg-type]


class PruningCallback(xgb.callback.TrainingCallback):
    """Reports the valid split's aucpr to the trial each boosting round; stops the
    trial (optuna.TrialPruned) when the pruner says it is falling behind."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        import optuna

        self.trial.report(float(evals_log["valid"][OBJECTIVE][-1]), epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at boosting round {epoch}")
        return False


TrialHook = Callable[["optuna.Study", "optuna.trial.FrozenTrial"], None]


def search(
    splits: Splits,
    tune: TuneConfig,
    train: TrainConfig,
    contract: DatasetContract,
    on_trial: TrialHook | None = None,
) -> Tuned:
    """Run the study; `on_trial(study, trial)` is called after each trial (the stage logs
    it to MLflow)."""
    import optuna

    check_search_space(tune, train)
    check_classes(splits, contract)
    device = resolve_device(train.device)
    spw = scale_pos_weight(splits.train[contract.label.column].to_numpy(), train)
    dtrain, dvalid = training_matrices(splits, train, contract)  # max_bin is not searched

    def objective(trial: optuna.Trial) -> float:
        cfg = train.model_copy(
            update={k: _suggest(trial, k, s) for k, s in tune.search_space.items()}
        )
        booster, evals = fit_booster(
            cfg, xgb_params(cfg, device, spw), dtrain, dvalid, PruningCallback(trial)
        )
        trial.set_user_attr("best_iteration", int(booster.best_iteration))
        return float(evals["valid"][OBJECTIVE][booster.best_iteration])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=tune.seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=MEDIAN_AFTER_TRIALS, n_warmup_steps=tune.prune_warmup_rounds
        ),
    )
    study.enqueue_trial({key: getattr(train, key) for key in tune.search_space})
    hooks = [_log_trial] + ([on_trial] if on_trial else [])
    started = time.perf_counter()
    study.optimize(objective, n_trials=tune.n_trials, timeout=tune.timeout_seconds, callbacks=hooks)
    return _outcome(study, time.perf_counter() - started)


def _log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    if "best_iteration" in trial.user_attrs:
        outcome = f"valid {OBJECTIVE} {trial.value:.4f}"
    else:
        outcome = f"{trial.state.name.lower()} after {len(trial.intermediate_values)} rounds"
    log.info("trial %d: %s; %s", trial.number, outcome, trial.params)


def _outcome(study: optuna.Study, seconds: float) -> Tuned:
    import optuna

    states = [t.state for t in study.trials]
    default = study.trials[0]
    if default.state != optuna.trial.TrialState.COMPLETE:
        raise StageInputError("trial 0 (train's own parameters) did not complete")
    best = study.best_trial
    log.info(
        "best of %d trials (%d pruned): valid %s %.4f (train's own parameters: %.4f) with %s",
        len(states),
        states.count(optuna.trial.TrialState.PRUNED),
        OBJECTIVE,
        best.value,
        default.value,
        best.params,
    )
    return Tuned(
        enabled=True,
        params=dict(best.params),
        value=float(best.value),  # type: ignore[arg-type]
        default_value=float(default.value),  # type: ignore[arg-type]
        trials=len(states),
        pruned=states.count(optuna.trial.TrialState.PRUNED),
        seconds=round(seconds, 3),
    )


def write_tuned(tuned: Tuned, path: Path) -> None:
    """paths.tuned_params; when tuning is off only `{"enabled": false}`, so the file (a
    dep of train) stays the same from run to run."""
    write_json(asdict(tuned) if tuned.enabled else {"enabled": False}, path)


def read_tuned(path: Path) -> Tuned:
    raw: Any = read_json(path, "tune")
    try:
        return Tuned(**raw)
    except TypeError as exc:
        raise StageInputError(
            f"{path} is not what the tune stage writes ({exc}): re-run `dvc repro tune`"
        ) from None


def tuned_config(train: TrainConfig, tuned: Tuned) -> TrainConfig:
    """`train` with the tuned parameters in place (none when tuning is off)."""
    unknown = sorted(set(tuned.params) - set(get_args(Tunable)))
    if unknown:
        raise StageInputError(
            f"the tuned parameters name keys tuning never searches: {unknown}: "
            "re-run `dvc repro tune`"
        )
    try:
        return TrainConfig.model_validate({**train.model_dump(), **tuned.params})
    except ValidationError as exc:
        raise StageInputError(f"the tuned parameters are not valid train values: {exc}") from None
