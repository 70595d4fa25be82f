"""Post-hoc calibration of the model's scores (params.yaml train.calibration).

XGBoost's probabilities are often not frequencies: `scale_pos_weight` (auto: negatives /
positives) inflates every score on imbalanced data, and boosting bends them. A
calibration maps the model's raw score to one that is: fitted by the train stage on the
validation days only (never the test days evaluate reports on), stored as plain JSON
beside the model (models/calibration.json; never pickle), logged with the model in
MLflow (the registered version carries it; its sha256 is checked like the model file's),
and applied by `Calibration.apply`, the one function every score passes through:
evaluate, batch scoring, serving, promotion and monitoring alike.

- `none`: the scores as XGBoost gives them (apply returns its input as it is);
- `isotonic`: a non-decreasing map (sklearn's IsotonicRegression), stored as its
  breakpoints `x` (raw scores, increasing) and `y` (calibrated scores), applied by linear
  interpolation between them and constant beyond the ends. It can merge nearby scores
  into one (ties), which costs the ranking metrics a little;
- `platt`: Platt scaling, a logistic regression of the label on the raw log-odds,
  stored as its slope `a` (> 0) and intercept `b`: 1 / (1 + exp(-(a * logit(score) + b))).
  It keeps the ranking (ROC and PR AUC do not change).
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import StageInputError

CALIBRATION_FILE = "calibration.json"  # in paths.model_dir, and in the logged MLflow model
Method = Literal["none", "isotonic", "platt"]
EPSILON = 1e-12  # raw scores are clipped to [EPSILON, 1 - EPSILON] before the logit


class CalibrationFileError(StageInputError):
    """A calibration file that is not JSON or not a valid calibration."""


def logit(scores: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(scores, dtype=np.float64), EPSILON, 1 - EPSILON)
    return np.log(p) - np.log1p(-p)


class Calibration(BaseModel):
    """A fitted calibration; `Calibration()` is `none`. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    method: Method = "none"
    x: list[float] = Field(default_factory=list)  # isotonic: raw scores, increasing
    y: list[float] = Field(default_factory=list)  # isotonic: their calibrated scores
    a: float | None = None  # platt: slope on the raw log-odds
    b: float | None = None  # platt: intercept
    rows: int = Field(0, ge=0)  # validation rows it was fitted on
    positive_rate: float | None = Field(None, ge=0, le=1)  # ... and their positive rate

    @model_validator(mode="after")
    def _fits_its_method(self) -> Calibration:
        finite = all(math.isfinite(v) for v in [*self.x, *self.y, self.a or 0.0, self.b or 0.0])
        if not finite:
            raise ValueError("every number must be finite")
        isotonic, platt = self.method == "isotonic", self.method == "platt"
        if isotonic != bool(self.x) or len(self.x) != len(self.y):
            raise ValueError("x and y: one value each per breakpoint, for isotonic only")
        if isotonic and not (
            all(a < b for a, b in zip(self.x, self.x[1:], strict=False))
            and all(a <= b for a, b in zip(self.y, self.y[1:], strict=False))
            and self.y[0] >= 0.0
            and self.y[-1] <= 1.0
        ):
            raise ValueError("isotonic: x must increase, y must not decrease and lie in [0, 1]")
        if platt != (self.a is not None and self.b is not None) or (platt and self.a <= 0):
            raise ValueError("a (> 0) and b: for platt only")
        return self

    @cached_property
    def _breakpoints(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.x, dtype=np.float64), np.asarray(self.y, dtype=np.float64)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """The calibrated scores of the model's raw scores `raw` (`none`: `raw` itself)."""
        if self.method == "none":
            return raw
        if self.method == "isotonic":
            x, y = self._breakpoints
            return np.interp(np.asarray(raw, dtype=np.float64), x, y)
        z = np.clip(self.a * logit(raw) + self.b, -500.0, 500.0)  # type: ignore[operator]
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True) | {"method": self.method}


def fit_calibration(method: Method, y: np.ndarray, raw: np.ndarray) -> Calibration:
    """A `method` calibration of the raw scores `raw` to the 0/1 labels `y` (the
    validation rows); `none` fits nothing."""
    if method == "none":
        return Calibration()
    y = np.asarray(y).astype(np.int64)
    if len(np.unique(y)) < 2:
        raise StageInputError(
            f"train.calibration: {method} needs both classes in the validation split; it "
            "holds one only (widen split.valid_days or data.window_days)"
        )
    seen = {"rows": len(y), "positive_rate": float(y.mean())}
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        fitted.fit(np.asarray(raw, dtype=np.float64), y)
        x, values = fitted.X_thresholds_.tolist(), fitted.y_thresholds_.tolist()
        return Calibration(method="isotonic", x=x, y=values, **seen)
    from sklearn.linear_model import LogisticRegression

    regression = LogisticRegression(C=np.inf).fit(logit(raw)[:, None], y)  # C=inf: no penalty
    a, b = float(regression.coef_[0, 0]), float(regression.intercept_[0])
    if not a > 0:
        raise StageInputError(
            f"train.calibration: platt found a slope of {a:.4g} on the validation split: the "
            "model's scores do not rank its rows, so there is nothing to calibrate (check "
            "the training data, or set train.calibration: none)"
        )
    return Calibration(method="platt", a=a, b=b, **seen)


def write_calibration(calibration: Calibration, path: Path) -> None:
    """The calibration as JSON (Python's float text: every number reads back exactly)."""
    from .files import write_json

    write_json(calibration.to_dict(), path)


def read_calibration(path: Path, what: str) -> Calibration:
    """The calibration stored at `path`; a CalibrationFileError naming `what` (the model
    it belongs to) when it is not one."""
    import json

    try:
        return Calibration.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError) as exc:
        raise CalibrationFileError(
            f"the calibration of {what} ({path}) is unusable: {exc}"
        ) from exc
