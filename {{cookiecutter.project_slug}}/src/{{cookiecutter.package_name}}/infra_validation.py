"""Infra validation: the candidate served as the service serves it, before `champion` moves.

promote (promotion.py) runs `validate` on the registered candidate version:

1. it opens the Feast store as the service does (feature_store.open_store), checks its
   feature view against the contract, and reads the probed ids straight from the
   online store: up to `promote.infra_validation.requests` distinct entity ids of the
   holdout (a seeded choice) and one id no entity has (UNKNOWN_ID);
2. it loads the candidate as the service does (champion.load_version: from the
   registry, its model file's sha256 checked) and builds the real app
   (serving.create_app) around a PinnedVersion of it: no alias is read or moved, the
   prediction log is a file in a temporary folder (the real one is not written), and
   there are no API keys and no rate limit in the way;
3. it sends a fixed sequence of requests through Starlette's TestClient (the ASGI app
   called in-process, no socket): GET /health, GET /metadata, one untimed warm-up
   POST /predict, `requests` timed single-id POST /predict cycling through the ids the
   online store holds, one batch POST /predict of those ids (up to the batch limit)
   with the unknown id, and one POST /predict of the unknown id alone.

The checks it adds to the promotion decision (promotion_checks.Check):

- `infra.online_store`: the store serves the contract's features and holds some of the
  holdout ids (none: materialize has not run, or wrote another store);
- `infra.responses`: every answer is HTTP 200 and names the candidate's version, every
  id the store holds is scored (`ok`, a score in [0, 1], a 0/1 label), the unknown id is
  `unknown_entity`, and the prediction log got one record per scored id;
- `infra.p99_ms`: the p99 latency of the timed requests <= `max_p99_ms`;
- `infra.memory_mb`: how far the process's resident memory (RSS) rose, from just
  before the model is loaded to its highest reading while serving, <= `max_memory_mb`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .champion import PinnedVersion, load_version
from .config import InfraValidationConfig, Params
from .contract import DatasetContract
from .errors import PipelineError
from .prediction_log_files import log_files
from .promotion_checks import Check

KEY = "promote.infra_validation"
SEED = 0  # the holdout ids probed: a seeded choice, the same for every candidate
UNKNOWN_ID: dict[str, int | str] = {"int": -(2**63), "string": "infra-validation: no such id"}
SHOWN = 3  # failures named in a check's detail (promotion.json lists up to MAX_LISTED)
MAX_LISTED = 20


@dataclass(frozen=True)
class Probe:
    """One request of the sequence; `ids` for POST /predict."""

    method: str
    path: str
    ids: list[Any] | None = None
    timed: bool = False

    def describe(self) -> str:
        if self.ids is None:
            return f"{self.method} {self.path}"
        what = f"id {self.ids[0]!r}" if len(self.ids) == 1 else f"{len(self.ids)} ids"
        return f"{self.method} {self.path} ({what})"


@dataclass
class Served:
    """What serving the candidate measured."""

    requests: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # the timed requests
    batch_ms: float | None = None
    memory_mb: float = 0.0
    failures: list[str] = field(default_factory=list)

    def record(self, probe: Probe, elapsed_ms: float, failure: str | None) -> None:
        self.requests += 1
        if probe.timed:
            self.latencies_ms.append(elapsed_ms)
        elif probe.ids is not None and len(probe.ids) > 1:
            self.batch_ms = elapsed_ms
        if failure:
            self.failures.append(failure)


@dataclass(frozen=True)
class InfraValidation:
    """The checks for the decision and the figures for reports/promotion.json."""

    checks: list[Check]
    figures: dict[str, Any]


def probe_ids(holdout: pd.DataFrame, count: int, contract: DatasetContract) -> list[Any]:
    """Up to `count` distinct entity ids of the holdout: a seeded choice of its sorted ids
    (the same for every candidate on the same holdout), then UNKNOWN_ID."""
    ids = np.sort(pd.unique(holdout[contract.entity.key].dropna()))
    chosen = np.random.default_rng(SEED).choice(ids, size=min(count, len(ids)), replace=False)
    return contract.key_values([*chosen.tolist(), UNKNOWN_ID[contract.entity.dtype]])


def request_plan(online: dict[Any, bool], count: int, max_batch: int) -> list[Probe]:
    """The fixed sequence of requests (see the module docstring)."""
    known = [i for i, held in online.items() if held]
    unknown = [i for i, held in online.items() if not held]
    plan = [
        Probe("GET", "/health"),
        Probe("GET", "/metadata"),
        Probe("POST", "/predict", known[:1]),
    ]
    plan += [Probe("POST", "/predict", [known[i % len(known)]], timed=True) for i in range(count)]
    batch = [*known[: max_batch - len(unknown[:1])], *unknown[:1]]
    plan.append(Probe("POST", "/predict", batch))
    plan += [Probe("POST", "/predict", [i]) for i in unknown[:1]]
    return plan


def _scored(answer: dict[str, Any]) -> bool:
    score = answer.get("score")
    return (
        answer.get("status") == "ok"
        and isinstance(score, float)
        and math.isfinite(score)
        and 0.0 <= score <= 1.0
        and answer.get("label") in (0, 1)
    )


def judge(
    probe: Probe, status: int, body: Any, online: dict[Any, bool], version: str
) -> str | None:
    """What is wrong with one answer, or None."""
    where = probe.describe()
    if status != 200:
        return f"{where}: HTTP {status}: {str(body)[:200]}"
    if not isinstance(body, dict):
        return f"{where}: the answer is not a JSON object: {str(body)[:200]}"
    if probe.path == "/health" and body.get("status") != "ok":
        return f"{where}: status {body.get('status')!r}: {body.get('detail')}"
    if body.get("model_version") != version:
        return f"{where}: answered by version {body.get('model_version')!r}, not {version}"
    if probe.ids is None:
        return None
    answers = body.get("predictions")
    if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
        return f"{where}: the answer holds no list of predictions"
    if [a.get("id") for a in answers] != probe.ids:
        return f"{where}: the answers' ids are not the ids asked for, in order"
    for answer in answers:
        held = online[answer["id"]]
        if held and not _scored(answer):
            return f"{where}: id {answer['id']!r} is in the online store but got {answer}"
        if not held and answer.get("status") != "unknown_entity":
            return f"{where}: id {answer['id']!r} is not in the online store but got {answer}"
    return None


def _send(
    http: Any, probe: Probe, online: dict[Any, bool], version: str
) -> tuple[float, str | None]:
    """Send one request: its latency (ms) and what is wrong with the answer, if anything."""
    body = None if probe.ids is None else {"ids": probe.ids}
    started = time.perf_counter()
    response = http.request(probe.method, probe.path, json=body)
    elapsed_ms = (time.perf_counter() - started) * 1000
    try:
        answer = response.json()
    except ValueError:
        answer = response.text
    return elapsed_ms, judge(probe, response.status_code, answer, online, version)


def _serve(
    p: Params, client: Any, version: str, store: Any, online: dict[Any, bool], count: int
) -> Served:
    """Load the candidate, build the app, send the plan; memory and latency measured."""
    import gc
    import logging
    import tempfile
    import warnings

    import psutil

    with warnings.catch_warnings():  # Starlette now asks for httpx2; the locked httpx works
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request

    from .api_keys import Gatekeeper
    from .config import RateLimitConfig
    from .serving import MAX_BATCH, create_app

    contract, process, served = p.dataset, psutil.Process(), Served()
    plan = request_plan(online, count, MAX_BATCH)
    unlimited = Gatekeeper({}, RateLimitConfig(requests_per_second=1e9, burst=len(plan)))
    gc.collect()
    baseline = peak = process.memory_info().rss
    model = load_version(client, p.mlflow.registered_model, version, contract)
    with tempfile.TemporaryDirectory(prefix="infra-validation-") as tmp:
        log_path = Path(tmp) / "predictions.jsonl"
        app = create_app(store, PinnedVersion(model), log_path, contract, unlimited)
        peak = max(peak, process.memory_info().rss)
        with TestClient(app, raise_server_exceptions=False) as http:
            for probe in plan:
                elapsed_ms, failure = _send(http, probe, online, version)
                peak = max(peak, process.memory_info().rss)
                served.record(probe, elapsed_ms, failure)
        scored = sum(online[i] for probe in plan for i in probe.ids or [])
        logged = sum(len(f.read_text().splitlines()) for f in log_files(log_path))
    if logged != scored:
        served.failures.append(f"the prediction log got {logged} records for {scored} scored ids")
    served.memory_mb = (peak - baseline) / 2**20
    return served


def limit_check(name: str, what: str, value: float, limit: float, key: str, unit: str) -> Check:
    """`value` against the limit `KEY.key`; the detail names both."""
    verdict = "<=" if value <= limit else ">"
    detail = f"{what} {value:.2f} {unit} {verdict} {KEY}.{key} {limit:g} {unit}"
    return Check(name, value <= limit, value, limit, detail)


def served_checks(served: Served, cfg: InfraValidationConfig) -> list[Check]:
    """infra.responses, infra.p99_ms and infra.memory_mb of what serving measured."""
    failed = served.failures
    if failed:
        shown = "; ".join(failed[:SHOWN])
        more = f"; ... ({len(failed) - SHOWN} more)" if len(failed) > SHOWN else ""
        detail = f"{len(failed)} of {served.requests} requests answered wrongly: {shown}{more}"
        responses = Check("infra.responses", False, len(failed), 0, detail)
    else:
        detail = f"{served.requests} requests answered as expected"
        responses = Check("infra.responses", True, 0, 0, detail)
    p99 = float(np.percentile(served.latencies_ms, 99))
    latency = limit_check("infra.p99_ms", "p99", p99, cfg.max_p99_ms, "max_p99_ms", "ms")
    memory = limit_check(
        "infra.memory_mb", "RSS growth", served.memory_mb, cfg.max_memory_mb, "max_memory_mb", "MB"
    )
    return [responses, latency, memory]


def online_store_check(online: dict[Any, bool]) -> Check:
    """infra.online_store: the store holds some of the holdout ids probed."""
    held, probed = sum(online.values()), len(online) - 1
    if held:
        return Check(
            "infra.online_store", True, held, 1, f"holds {held} of the {probed} holdout ids probed"
        )
    example = ", ".join(repr(i) for i in list(online)[:3])
    detail = (
        f"the online store holds none of the {probed} holdout ids probed (e.g. {example}): "
        "run `dvc repro materialize` (it loads the newest features) before promote"
    )
    return Check("infra.online_store", False, 0, 1, detail)


def read_online(
    repo: Path, holdout: pd.DataFrame, count: int, contract: DatasetContract
) -> tuple[Any, dict[Any, bool]]:
    """The Feast store (as the service opens it) and, for each probed id, whether its
    online store holds features for it."""
    from .feature_store import feature_view, open_store
    from .online_read import online_features

    store = open_store(repo)
    feature_view(store, contract)
    ids = probe_ids(holdout, count, contract)
    unknown = set(online_features(store, ids, contract)[1])
    return store, {i: i not in unknown for i in ids}


def _figures(
    version: str, online: dict[Any, bool], served: Served | None, cfg: InfraValidationConfig
) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "version": int(version),
        "probed_ids": max(0, len(online) - 1),
        "ids_online": sum(online.values()),
        "limits": {"max_p99_ms": cfg.max_p99_ms, "max_memory_mb": cfg.max_memory_mb},
    }
    if served is not None:
        latencies = np.array(served.latencies_ms)
        figures.update(
            requests=served.requests,
            timed_requests=len(latencies),
            p50_ms=round(float(np.percentile(latencies, 50)), 3),
            p99_ms=round(float(np.percentile(latencies, 99)), 3),
            max_ms=round(float(latencies.max()), 3),
            batch_ms=None if served.batch_ms is None else round(served.batch_ms, 3),
            memory_mb=round(served.memory_mb, 2),
            failures=served.failures[:MAX_LISTED],
        )
    return figures


def _stopped(
    checks: list[Check], version: str, online: dict[Any, bool], cfg: InfraValidationConfig
) -> InfraValidation:
    """The checks so far, and the rest skipped: nothing was measured."""
    done = {c.name for c in checks}
    skipped = [
        Check(name, None, None, None, "skipped: the candidate was not served")
        for name in ("infra.responses", "infra.p99_ms", "infra.memory_mb")
        if name not in done
    ]
    return InfraValidation([*checks, *skipped], _figures(version, online, None, cfg))


def validate(
    p: Params, client: Any, version: str | int, holdout: pd.DataFrame, root: Path = Path()
) -> InfraValidation:
    """Serve `version` in-process against the Feast store of `root` (see the module
    docstring); its checks decide with the others whether the alias may move."""
    from .feature_store import FEATURE_REPO

    cfg, version = p.promote.infra_validation, str(version)
    if not cfg.enabled:
        skipped = Check("infra", None, None, None, f"skipped: {KEY}.enabled is false")
        return InfraValidation([skipped], {"enabled": False})
    try:
        store, online = read_online(root / FEATURE_REPO, holdout, cfg.requests, p.dataset)
    except PipelineError as exc:
        failed = Check("infra.online_store", False, None, None, f"cannot serve: {exc}")
        return _stopped([failed], version, {}, cfg)
    store_check = online_store_check(online)
    if not store_check.passed:
        return _stopped([store_check], version, online, cfg)
    try:
        served = _serve(p, client, version, store, online, cfg.requests)
    except PipelineError as exc:
        why = f"version {version} cannot be served: {exc}"
        return _stopped(
            [store_check, Check("infra.responses", False, None, None, why)], version, online, cfg
        )
    checks = [store_check, *served_checks(served, cfg)]
    return InfraValidation(checks, _figures(version, online, served, cfg))
