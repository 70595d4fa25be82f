"""Great Expectations gates: validate a DataFrame against a suite in expectations/.

A gate fails when an expectation of severity `critical` (GX's default) fails;
`warning` and `info` failures are reported and let the pipeline go on. Every
run writes, pass or fail, to the gate's report folder:

- result.json: GX's full validation result;
- summary.json: what failed, on which columns, with example values;
- data_docs/index.html: GX Data Docs, the human-readable report: the suite, and a
  validation page for each frame with findings. It is rendered again only when it would
  change: a frame had findings, there is no index.html yet, the suite changed since
  (DOCS_STAMP), or it still shows pages of an earlier run.

Suites are GX's own JSON (`ExpectationSuite.to_json_dict()`); values that
depend on the run (the batch window, "now", row-count bounds) are written
as {"$PARAMETER": "name"} and supplied at validation time.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .config import PathsConfig
from .errors import PipelineError, StageInputError
from .files import file_digest, write_json

log = logging.getLogger(__name__)

EXAMPLES = 5  # offending values shown per failed expectation
DOCS_STAMP = ".suite_md5"  # in data_docs/: the md5 of the suite the pages were rendered from


@dataclass
class Finding:
    expectation: str
    column: str | None
    severity: str
    observed: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: list[Any] = field(default_factory=list)
    error: str | None = None
    batch: str | None = None  # the daily batch (day) it was found in, for per-batch gates

    def describe(self) -> str:
        where = f" on column '{self.column}'" if self.column else ""
        day = f"batch {self.batch}: " if self.batch else ""
        parts = [f"{day}{self.expectation}{where}"]
        if self.error:
            parts.append(f"error: {self.error}")
        if self.unexpected_count:
            pct = (
                f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            )
            parts.append(f"{self.unexpected_count} unexpected rows{pct}")
        if self.examples:
            parts.append(f"e.g. {', '.join(repr(v) for v in self.examples)}")
        if self.observed is not None and not self.examples:
            parts.append(f"observed {self.observed!r}")
        return "; ".join(parts)


@dataclass
class GateReport:
    gate: str
    suite: str
    rows: int
    evaluated: int
    seconds: float
    failures: list[Finding]  # critical: they stop the pipeline
    warnings: list[Finding]  # reported only
    report_dir: str
    details: str = "result.json"  # GX's full result, relative to report_dir

    @property
    def passed(self) -> bool:
        return not self.failures

    def render(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"gate '{self.gate}' {verdict}: suite {self.suite}, {self.rows} rows, "
            f"{self.evaluated} expectations, {len(self.failures)} failed, "
            f"{len(self.warnings)} warnings ({self.seconds:.2f} s)"
        ]
        lines += [f"  FAILED   {f.describe()}" for f in self.failures]
        lines += [f"  WARNING  {w.describe()}" for w in self.warnings]
        lines.append(
            f"  details: {self.report_dir}/{self.details}; "
            f"Data Docs: {self.report_dir}/data_docs/index.html"
        )
        return "\n".join(lines)


class GateFailed(PipelineError):
    """A critical expectation failed: the stage stops and nothing downstream runs."""

    def __init__(self, report: GateReport) -> None:
        super().__init__(report.render())
        self.report = report


def _plain(value: Any) -> Any:
    """JSON-friendly version of a value from a GX result (timestamps, numpy scalars)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def _finding(result: Any, batch: str | None = None) -> Finding:
    config = result.expectation_config
    details = result.result or {}
    exception = result.exception_info or {}
    error = None
    if exception.get("raised_exception"):
        error = str(exception.get("exception_message", "")).splitlines()[0][:300]
    return Finding(
        expectation=config.type,
        column=config.kwargs.get("column")
        or (",".join(config.kwargs["column_list"]) if "column_list" in config.kwargs else None),
        severity=str(getattr(config.severity, "value", config.severity) or "critical"),
        observed=_plain(details.get("observed_value")),
        unexpected_count=details.get("unexpected_count"),
        unexpected_percent=details.get("unexpected_percent"),
        examples=_plain(list(details.get("partial_unexpected_list") or [])[:EXAMPLES]),
        error=error,
        batch=batch,
    )


def load_suite_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise StageInputError(f"expectation suite {path} not found (see expectations/README.md)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StageInputError(f"expectation suite {path} is not valid JSON: {exc}") from exc


def _context(docs_dir: Path) -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # GX logs at INFO on import
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name="gates",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir.resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


# GX's result formats: the verdict alone (no unexpected values collected: the fast pass),
# and with each failed expectation's observed value and example offending values.
VERDICT_ONLY = {"result_format": "BOOLEAN_ONLY"}
DETAILED = {"result_format": "BASIC", "partial_unexpected_count": 20}


class SuiteRunner:
    """One GX context and suite that validate any number of frames: the per-batch raw gate
    validates each new daily batch without rebuilding GX's objects.

    `check` is the fast pass: GX's verdict on a frame (`BOOLEAN_ONLY`, straight on the
    batch: no checkpoint, no stored result, no Data Docs). `run` validates through the
    checkpoint (made at the first `run`) with example values and a stored result, for the
    frames with findings. `build_docs()` renders the Data Docs once, for the suite and
    every `run` so far, when they would differ from the pages already there."""

    def __init__(self, suite_path: Path, gate: str, report_dir: Path) -> None:
        import great_expectations as gx

        suite_json = load_suite_json(suite_path)
        report_dir.mkdir(parents=True, exist_ok=True)
        self.suite_path, self.gate, self.report_dir = suite_path, gate, report_dir
        self.docs_dir = report_dir / "data_docs"
        context = _context(self.docs_dir)
        try:
            suite = context.suites.add(gx.ExpectationSuite(**suite_json))
        except Exception as exc:  # malformed expectation: name the file, not a GX traceback
            raise StageInputError(
                f"expectation suite {suite_path} cannot be loaded: {exc}"
            ) from exc
        self.batch_definition = (
            context.data_sources.add_pandas("pandas")
            .add_dataframe_asset(name=gate)
            .add_batch_definition_whole_dataframe(gate)
        )
        self.context, self.suite, self.suite_json = context, suite, suite_json
        self._checkpoint: Any = None
        self.runs = 0  # frames validated through the checkpoint (pages for the Data Docs)

    @property
    def checkpoint(self) -> Any:
        """The checkpoint `run` validates through, made when first needed: most frames
        pass the fast check and never need it."""
        if self._checkpoint is None:
            import great_expectations as gx

            definition = self.context.validation_definitions.add(
                gx.ValidationDefinition(
                    name=f"{self.gate}_gate", data=self.batch_definition, suite=self.suite
                )
            )
            self._checkpoint = self.context.checkpoints.add(
                gx.Checkpoint(
                    name=f"{self.gate}_gate",
                    validation_definitions=[definition],
                    result_format=DETAILED,
                )
            )
        return self._checkpoint

    def docs_current(self) -> bool:
        """Whether the Data Docs already there are what `build_docs` would render: an
        index.html rendered from this suite, no validation page to add, and none of an
        earlier run's to drop (rendering keeps only this process's pages)."""
        stamp = self.docs_dir / DOCS_STAMP
        if self.runs or not (self.docs_dir / "index.html").is_file() or not stamp.is_file():
            return False
        if any((self.docs_dir / "validations").rglob("*.html")):
            return False
        return stamp.read_text().strip() == file_digest(self.suite_path)

    def build_docs(self) -> bool:
        """Render the Data Docs of the suite and every run so far
        (report_dir/data_docs/index.html) unless they are current; whether it rendered."""
        if self.docs_current():
            return False
        self.context.build_data_docs(site_names=["gates"])
        (self.docs_dir / DOCS_STAMP).write_text(file_digest(self.suite_path) + "\n")
        return True

    def _report(self, result: Any, rows: int, batch: str | None, started: float) -> GateReport:
        findings = [_finding(r, batch) for r in result.results if not r.success]
        return GateReport(
            gate=self.gate,
            suite=str(self.suite_path),
            rows=rows,
            evaluated=len(result.results),
            seconds=time.perf_counter() - started,
            failures=[f for f in findings if f.severity == "critical"],
            warnings=[f for f in findings if f.severity != "critical"],
            report_dir=str(self.report_dir),
        )

    def part(self, name: str, expectations: list[dict[str, Any]]) -> Any:
        """A suite of some of the suite's expectations (suite JSON), for `check`."""
        import great_expectations as gx

        return gx.ExpectationSuite(name=f"{self.suite.name}.{name}", expectations=expectations)

    def check(
        self,
        frame: pd.DataFrame,
        parameters: dict[str, Any] | None = None,
        batch: str | None = None,
        suite: Any = None,
    ) -> tuple[GateReport, Any]:
        """GX's verdict on `frame`, fast: which expectations failed, without example values;
        and GX's result (not stored: no Data Docs page). `suite`: a `part` of the suite
        instead of the whole."""
        started = time.perf_counter()
        result = self.batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
            suite or self.suite, result_format=VERDICT_ONLY, expectation_parameters=parameters or {}
        )
        return self._report(result, len(frame), batch, started), result

    def run(
        self,
        frame: pd.DataFrame,
        parameters: dict[str, Any] | None = None,
        batch: str | None = None,
    ) -> tuple[GateReport, Any]:
        """The verdict on `frame`, with example values, and GX's result (stored for the Data
        Docs; `result_json` makes it JSON-ready); writes nothing."""
        started = time.perf_counter()
        run = self.checkpoint.run(
            batch_parameters={"dataframe": frame}, expectation_parameters=parameters or {}
        )
        self.runs += 1
        result = next(iter(run.run_results.values()))
        return self._report(result, len(frame), batch, started), result


def result_json(result: Any) -> dict[str, Any]:
    """GX's validation result, JSON-ready."""
    return _plain(result.to_json_dict())


def write_summary(report: GateReport, extra: dict[str, Any] | None = None) -> None:
    summary = {**asdict(report), "passed": report.passed, **(extra or {})}
    write_json(summary, Path(report.report_dir) / "summary.json")


def validate(
    frame: pd.DataFrame,
    suite_path: Path,
    gate: str,
    report_dir: Path,
    parameters: dict[str, Any] | None = None,
) -> GateReport:
    """Validate `frame` with the suite at `suite_path`; write reports; return the verdict.
    GX's verdict first; a frame with findings is validated again with example values and
    a Data Docs page (SuiteRunner)."""
    started = time.perf_counter()
    runner = SuiteRunner(suite_path, gate, report_dir)
    report, result = runner.check(frame, parameters)
    if report.failures or report.warnings:
        report, result = runner.run(frame, parameters)
    runner.build_docs()
    report.seconds = time.perf_counter() - started  # GX's set-up counts too
    write_json(result_json(result), report_dir / "result.json")
    write_summary(report)
    return report


def enforce(report: GateReport) -> None:
    """Log the verdict; raise GateFailed when a critical expectation failed."""
    if not report.passed:
        raise GateFailed(report)
    (log.warning if report.warnings else log.info)("%s", report.render())


def run_gate(
    frame: pd.DataFrame,
    paths: PathsConfig,
    suite: str,
    report: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> GateReport:
    """The gate a stage runs: validate `frame` with expectations/<suite>.json, write the
    reports to reports/gates/<report or suite>/, raise GateFailed on a critical failure."""
    result = validate(
        frame,
        paths.expectations / f"{suite}.json",
        suite,
        paths.gate_reports / (report or suite),
        parameters,
    )
    enforce(result)
    return result
