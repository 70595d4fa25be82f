"""The challenger: the registry's `candidate` version, served beside the champion.

`serving.rollout` says how (serving.py applies it to each request):

- `champion`: the champion answers every request; the candidate is not loaded;
- `shadow`: the candidate scores every request's features too (through its own
  calibration); its score and label go to the prediction log (prediction_log.py
  shadow_*), the caller gets the champion's;
- `canary`: the entities whose stable hash (`canary_bucket`: sha256 of the id's text,
  the same in every process and across restarts) falls below `serving.canary_share`
  are answered by the candidate, the others by the champion. Raising the share keeps
  the entities already in the canary. Only a candidate the promotion gate passed
  (version tag `promotion.decision`: promoted or awaiting_shadow) takes canary traffic:
  a rejected one is refused, and the champion answers everyone.

There is no challenger when the alias is missing, points at the champion, or at a
version that cannot be loaded (bytes or features not the registered ones): the
champion answers alone, /health says why and the log says so once. The challenger
never fails a request. Like ChampionModel, `Challenger` checks the alias at most every
`serving.refresh_seconds`, so no request waits on the registry.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

import numpy as np

from .champion import (
    CANDIDATE,
    DECISION_TAG,
    GATE_PASSED,
    LoadedModel,
    alias_version,
    load_version,
)
from .contract import DatasetContract

log = logging.getLogger(__name__)

MODES = ("champion", "shadow", "canary")


def canary_bucket(entity_id: int | str) -> float:
    """A stable number in [0, 1) for an id: the first 8 bytes of the sha256 of its text
    (Python's hash() is salted per process, so it would re-route entities at restart)."""
    digest = hashlib.sha256(str(entity_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_canary(ids: list[Any], share: float) -> np.ndarray:
    """Which ids the candidate answers: bucket < share (0: none, 1: all)."""
    return np.fromiter((canary_bucket(i) < share for i in ids), dtype=bool, count=len(ids))


class Challenger:
    """Holds the `candidate` version for a shadow or canary rollout; get() never raises."""

    def __init__(
        self,
        name: str,
        contract: DatasetContract,
        mode: str = "champion",
        refresh_seconds: float = 30.0,
        canary_share: float = 0.0,
    ) -> None:
        import mlflow

        if mode not in MODES:
            raise ValueError(f"serving.rollout must be one of {', '.join(MODES)}, not {mode!r}")
        self.name, self.contract, self.mode = name, contract, mode
        self.refresh_seconds, self.canary_share = refresh_seconds, canary_share
        self._client = mlflow.MlflowClient()
        self._lock = threading.Lock()
        self._model: LoadedModel | None = None
        self._checked = -float("inf")
        self._state = "no champion to compare with yet"  # what /health says, logged once

    def get(self, champion_version: str) -> LoadedModel | None:
        """The candidate to serve beside `champion_version`, or None (the champion alone)."""
        if self.mode == "champion":
            return None
        now = time.monotonic()
        with self._lock:
            if now - self._checked >= self.refresh_seconds:
                self._refresh()
                self._checked = now
            model = self._model
            if model is None:
                return None
            if model.version == champion_version:
                self._say(f"candidate version {model.version} is the champion: champion only")
                return None
            self._say(f"{self.mode}: candidate version {model.version}", logging.INFO)
            return model

    def _refresh(self) -> None:
        try:
            version = alias_version(self._client, self.name, CANDIDATE)
            if version is None:
                self._drop(f"model {self.name!r} has no '{CANDIDATE}' version: champion only")
            elif self._model is None or self._model.version != str(version.version):
                self._model = None
                self._model = self._load(version)
        except Exception as exc:  # a challenger must never fail the service
            self._drop(f"the '{CANDIDATE}' version cannot be served ({exc}): champion only")

    def _load(self, version: Any) -> LoadedModel | None:
        decision = (version.tags or {}).get(DECISION_TAG)
        if self.mode == "canary" and decision not in GATE_PASSED:
            self._drop(
                f"candidate version {version.version} has {DECISION_TAG} {decision!r}: canary "
                "traffic goes only to a candidate the promotion gate passed; champion only"
            )
            return None
        return load_version(self._client, self.name, str(version.version), self.contract)

    def _drop(self, why: str) -> None:
        self._model = None
        self._say(why)

    def _say(self, state: str, level: int = logging.WARNING) -> None:
        """Record the rollout's state; log it when it changes (not at every request)."""
        if state != self._state:
            log.log(level, "rollout %s", state)
            self._state = state

    def status(self, champion_version: str | None) -> dict[str, Any]:
        """What /health says about the rollout (`champion_version`: None when none serves)."""
        out: dict[str, Any] = {"mode": self.mode}
        if self.mode == "champion":
            return out
        if self.mode == "canary":
            out["canary_share"] = self.canary_share
        model = self.get(champion_version) if champion_version is not None else None
        out["candidate_version"] = model.version if model is not None else None
        out["detail"] = self._state
        return out


def shadow_fields(shadow: LoadedModel, known: Any) -> list[dict[str, Any]]:
    """The shadow's prediction-log fields for each row of `known` (the champion's feature
    rows, online_read.OnlineRows); none when it fails to score (logged): the shadow never
    fails a request."""
    from .model import predict_matrix

    try:
        scores = predict_matrix(
            shadow.booster, known.values, known.columns, shadow.calibration
        ).tolist()
    except Exception:  # the shadow never fails a request
        log.exception("shadow: candidate version %s failed to score; not logged", shadow.version)
        return [{}] * len(known.ids)
    return [
        {
            "shadow_version": shadow.version,
            "shadow_score": score,
            "shadow_predicted": int(score >= shadow.threshold),
        }
        for score in scores
    ]
