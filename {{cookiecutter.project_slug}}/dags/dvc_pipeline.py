"""What the DAGs in this folder share and DVC does not do for them: the stage graph
of dvc.yaml (`load_pipeline`), commands run through the project's virtualenv
(`run_in_project`), one stage run in a workspace of its own (`run_stage`, and
`stage_task` / `commit_task`, the bodies of the DAGs' tasks; workspaces.py makes the
workspaces and commits the run) and the DAGs' defaults.

Only the standard library and PyYAML are imported here (Airflow lazily, inside
functions), so parsing a DAG file stays fast and this module is testable without Airflow.
"""

from __future__ import annotations

import configparser
import datetime as dt
import graphlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE, STDOUT
from typing import Any

import workspaces as ws
import yaml

# The checkout the DAGs come from: the folder above dags/, unless PIPELINE_PROJECT_DIR
# names another (e.g. when Airflow ships dags/ from elsewhere, such as a DAG bundle).
# Tasks never work in it: they clone the run's commit from it (workspaces.py).
PROJECT_DIR = Path(os.environ.get("PIPELINE_PROJECT_DIR") or Path(__file__).resolve().parents[1])
# The Airflow asset a DAG updates (outlets=[Asset(RETRAIN_REQUEST)]) to ask for retraining:
# continuous_training is scheduled on it (or daily, whichever comes first).
RETRAIN_REQUEST = "retrain_request"
VENV_ENV = "PROJECT_VENV"
VENV_VARIABLE = "project_venv"
TAIL_LINES = 40
# DVC's advice after `dvc repro` (git add dvc.lock, enable autostage, dvc push): the DAG
# pushes and commits the run itself, so these lines are left out of the task log.
DVC_HINTS = re.compile(
    r"^\s*(To track the changes with git, run:|git add .*|To enable auto staging, "
    r"run:|dvc config core\.autostage true|Use `dvc push` to send your updates to remote storage\.)"
    r"\s*$"
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    desc: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]  # outs, metrics and plots
    persist: tuple[str, ...] = ()  # outs kept across runs (`persist: true`)

    def doc_md(self) -> str:
        lines = [f"**DVC stage `{self.name}`**: {self.desc or '(no desc in dvc.yaml)'}", ""]
        lines += [
            f"Runs `dvc repro --single-item {self.name}`, that is `{self.cmd}`, in a "
            "workspace of its own (its inputs pulled from the DVC remote, its outputs pushed)",
            "",
        ]
        lines += [f"- reads `{d}`" for d in self.deps]
        lines += [f"- writes `{o}`" for o in self.outs]
        return "\n".join(lines)


@dataclass(frozen=True)
class Pipeline:
    stages: dict[str, Stage]  # in dvc.yaml order
    upstream: dict[str, tuple[str, ...]]  # stage -> the stages whose outputs it reads

    @property
    def roots(self) -> list[str]:
        return [s for s in self.stages if not self.upstream[s]]

    @property
    def leaves(self) -> list[str]:
        used = {u for ups in self.upstream.values() for u in ups}
        return [s for s in self.stages if s not in used]

    def ancestors(self, stage: str) -> list[str]:
        """Every stage `stage` depends on, directly or not, in dvc.yaml order."""
        found: set[str] = set()
        todo = list(self.upstream[stage])
        while todo:
            name = todo.pop()
            if name not in found:
                found.add(name)
                todo += self.upstream[name]
        return [s for s in self.stages if s in found]

    @property
    def direct_upstream(self) -> dict[str, tuple[str, ...]]:
        """`upstream` without the edges another path already implies (the transitive
        reduction): the same order of runs, and a graph in the UI that can be read."""
        ancestors: dict[str, set[str]] = {}
        for stage in graphlib.TopologicalSorter(self.upstream).static_order():
            ancestors[stage] = {a for u in self.upstream[stage] for a in {u, *ancestors[u]}}
        return {
            stage: tuple(
                u for u in ups if not any(u in ancestors[other] for other in ups if other != u)
            )
            for stage, ups in self.upstream.items()
        }


def _paths(body: Mapping[str, Any], *keys: str) -> tuple[str, ...]:
    """The paths of a stage's entries under `keys`: each `path` or `path: options`."""
    entries = [e for key in keys for e in body.get(key) or []]
    paths = [p for e in entries for p in (e if isinstance(e, Mapping) else [e])]
    return tuple(os.path.normpath(str(p)).replace(os.sep, "/") for p in paths)


def _overlap(dep: str, out: str) -> bool:
    return dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")


def load_pipeline(project: Path = PROJECT_DIR) -> Pipeline:
    """The stages of `project/dvc.yaml` and their edges: a stage depends on every stage
    whose outs, metrics or plots it reads (a dep equal to an output, or inside an output
    folder). Paths are compared as written, `${...}` unresolved, so params.yaml is not read
    at DAG-parse time: spell a path alike where it is written and where it is read."""
    dvc_yaml = project / "dvc.yaml"
    stages: dict[str, Stage] = {}
    for name, body in (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {}).items():
        if "foreach" in body or "matrix" in body:
            raise ValueError(
                f"{dvc_yaml}: stage {name!r} uses foreach/matrix, which dvc_pipeline does not "
                "expand; list its instances as separate stages"
            )
        cmd, desc = str(body.get("cmd", "")), str(body.get("desc", ""))
        outs = _paths(body, "outs", "metrics", "plots")
        persist = tuple(
            path
            for entry in body.get("outs") or []
            if isinstance(entry, Mapping)
            for path, options in entry.items()
            if (options or {}).get("persist")
        )
        stages[name] = Stage(name, cmd, desc, _paths(body, "deps"), outs, persist)
    upstream = {
        name: tuple(
            other
            for other, producer in stages.items()
            if other != name and any(_overlap(d, o) for d in stage.deps for o in producer.outs)
        )
        for name, stage in stages.items()
    }
    try:
        graphlib.TopologicalSorter(upstream).prepare()
    except graphlib.CycleError as cycle:
        raise ValueError(f"{dvc_yaml}: stages form a cycle: {' <- '.join(cycle.args[1])}") from None
    return Pipeline(stages, upstream)


class CommandFailed(RuntimeError):
    """A command in the project failed; the message carries the end of its output."""

    def __init__(
        self,
        args: Sequence[str],
        returncode: int,
        tail: Sequence[str],
        hint: str = "",
        output: Sequence[str] = (),
    ):
        self.returncode = returncode
        self.output = list(output or tail)  # every line, for callers that look for more
        super().__init__(
            f"`{shlex.join(args)}` exited with {returncode}. {hint}".rstrip()
            + f"\n--- last {len(tail)} lines of its output ---\n{''.join(tail).rstrip()}"
        )


def project_venv(project: Path = PROJECT_DIR) -> Path:
    """The project's virtualenv: $PROJECT_VENV, Variable `project_venv`, or <project>/.venv."""
    value = os.environ.get(VENV_ENV)
    if not value:
        try:
            from airflow.sdk import Variable

            value = Variable.get(VENV_VARIABLE, default=None)
        except Exception:  # outside a task (tests, tools) or no metadata access
            value = None
    return Path(value).expanduser() if value else project / ".venv"


def run_in_project(
    args: Sequence[str],
    *,
    project: Path = PROJECT_DIR,
    venv: Path | None = None,
    env: Mapping[str, str] | None = None,
    hint: str = "",
    hide: re.Pattern[str] | None = None,
) -> str:
    """Run `args` in the project checkout (the folder above dags/, or $PIPELINE_PROJECT_DIR)
    through the project venv, not Airflow's: the venv first on PATH, Airflow's
    PYTHONHOME/PYTHONPATH removed; return its output. Each line goes to the task log as it
    comes (but lines matching `hide`); a non-zero exit raises CommandFailed. If the task
    itself is stopped (timeout, marked failed), the command is terminated too, so it never
    keeps holding the DVC lock."""
    venv = venv or project_venv(project)
    full_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    full_env["PATH"] = os.pathsep.join([str(venv / "bin"), full_env.get("PATH", os.defpath)])
    full_env.update({"VIRTUAL_ENV": str(venv), "NO_PROGRESS": "1"}, **(env or {}))
    program = shutil.which(args[0], path=full_env["PATH"])
    if program is None or not (venv / "bin").is_dir():
        raise FileNotFoundError(
            f"{args[0]!r} not found in the project venv {venv}: run `make setup` in {project}, "
            f"or point the env var {VENV_ENV} (or the Airflow Variable {VENV_VARIABLE!r}) "
            "at the project's virtualenv"
        )
    log.info("$ %s  (in %s, venv %s)", shlex.join(args), project, venv)
    output: list[str] = []
    proc = subprocess.Popen(
        [program, *args[1:]], cwd=project, env=full_env, stdout=PIPE, stderr=STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if hide is None or not hide.match(line):
                log.info("%s", line.rstrip())
            output.append(line)
        returncode = proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if returncode != 0:
        raise CommandFailed(args, returncode, output[-TAIL_LINES:], hint, output)
    return "".join(output)


class GateRejected(CommandFailed):
    """A stage's gate (a critical expectation) failed: the data is wrong, so retrying
    cannot help. `gate` is its name, `findings` the failed expectations as it listed them."""

    def __init__(self, failed: CommandFailed, gate: str) -> None:
        RuntimeError.__init__(self, str(failed))
        self.returncode, self.output, self.gate = failed.returncode, failed.output, gate
        self.findings = [line.strip() for line in self.output if line.strip().startswith("FAILED")]


GATE_FAILED = re.compile(r"gate '([^']+)' FAILED")


REPRO_RAN = "Running stage '{}'"
REPRO_RESTORED = "Stage '{}' is cached - skipping run, checking out outputs"


def repro_stage(
    stage: str, *, workspace: Path, venv: Path, env: Mapping[str, str] | None = None
) -> str:
    """`dvc repro --single-item --allow-missing --pull <stage>` in `workspace`: runs the
    stage if its code, params or inputs changed (not the stages upstream of it: those are
    tasks of their own); outputs it would only restore stay in the remote; one run before
    with the same inputs is restored from DVC's run cache. A failed gate raises
    GateRejected, any other failure CommandFailed."""
    try:
        return run_in_project(
            ["dvc", "repro", "--single-item", "--allow-missing", "--pull", stage],
            project=workspace,
            venv=venv,
            env=env,
            hint=f"Stage {stage} failed: its message is above; nothing downstream runs.",
            hide=DVC_HINTS,
        )
    except CommandFailed as failed:
        found = (m.group(1) for line in failed.output if (m := GATE_FAILED.search(line)))
        gate = next(found, None)
        if gate is None:
            raise
        raise GateRejected(failed, gate) from None


def stage_ran(output: str, stage: str) -> bool:
    """Whether `dvc repro` output says the stage ran (not skipped as up to date)."""
    return REPRO_RAN.format(stage) in output


def _remote_hint(project: Path, action: str) -> str:
    return (
        f"{action} the DVC remote {remote_description(project)} failed: is the endpoint "
        "reachable, and do the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the "
        "environment, or the Airflow connection) allow it? Nothing half-made is kept: the "
        "task retries in a new workspace."
    )


def _pull_targets(
    pipeline: Pipeline, stage: Stage, workspace: Path, base: Mapping[str, Any]
) -> list[str]:
    """What the stage reads from the DVC remote: the outputs of the stages it depends on,
    the files it reads that a .dvc file tracks (the tables you brought), and its own
    outputs when it keeps them across runs (`persist: true`) and ran before."""
    targets = list(pipeline.upstream[stage.name])
    tracked = subprocess.run(
        ["git", "ls-files", "*.dvc"], cwd=workspace, capture_output=True, text=True, check=False
    ).stdout.split()
    literal = [d for d in stage.deps if "${" not in d]
    targets += [t for t in tracked if any(_overlap(d, t.removesuffix(".dvc")) for d in literal)]
    if stage.persist and stage.name in base:
        targets.append(stage.name)
    return list(dict.fromkeys(targets))


def run_stage(
    pipeline: Pipeline,
    name: str,
    pin: ws.RunPin,
    upstream: Sequence[ws.StageResult],
    *,
    project: Path = PROJECT_DIR,
    env: Mapping[str, str] | None = None,
) -> ws.StageResult | None:
    """One stage of the run in a workspace of its own (workspaces.py): pull what it
    reads, `dvc repro` it, push what it made (with the run cache). Returns what it hands
    on, or None when the stage was up to date (nothing ran, nothing to hand on: the base's
    entry stands). The workspace is removed on success, kept on failure."""
    stage = pipeline.stages[name]
    venv = project_venv(project)
    seconds: dict[str, float] = {}
    clock = time.monotonic()
    workspace = ws.open_workspace(project, pin, upstream, name)
    # the run's code, not the one installed in the venv (editable from the checkout)
    run_env = {**({"PYTHONPATH": str(workspace / "src")} if (workspace / "src").is_dir() else {})}
    run_env.update(env or {})
    seconds["checkout"] = time.monotonic() - clock
    try:
        clock = time.monotonic()
        base = (
            ws.lock_entries((workspace / ws.LOCK_FILE).read_text())
            if (workspace / ws.LOCK_FILE).is_file()
            else {}
        )
        targets = _pull_targets(pipeline, stage, workspace, base)
        if targets:
            run_in_project(
                ["dvc", "pull", *targets],
                project=workspace,
                venv=venv,
                env=run_env,
                hint=_remote_hint(workspace, "Pulling the stage's inputs from")
                + " A table a .dvc file tracks is read from the remote too: `dvc push` it "
                "from the checkout that added it.",
            )
        seconds["pull"] = time.monotonic() - clock
        clock = time.monotonic()
        output = repro_stage(name, workspace=workspace, venv=venv, env=run_env)
        seconds["stage"] = time.monotonic() - clock
        ran, restored = stage_ran(output, name), REPRO_RESTORED.format(name) in output
        if not (ran or restored):
            ws.remove_workspace(workspace)
            return None
        clock = time.monotonic()
        run_in_project(
            ["dvc", "push", "--run-cache", name],
            project=workspace,
            venv=venv,
            env=run_env,
            hint=_remote_hint(workspace, "Pushing to"),
        )
        seconds["push"] = time.monotonic() - clock
        result = ws.read_result(workspace, name, ran, seconds)
    except BaseException:
        log.error("the workspace of stage %s is kept for a look: %s", name, workspace)
        raise
    ws.remove_workspace(workspace)
    log.info("stage %s: %s", name, ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    return result


def upstream_results(ti: Any, task_ids: Sequence[str]) -> list[ws.StageResult]:
    """What this run's `task_ids` handed on (those that were up to date handed nothing)."""
    values = ((t, ti.xcom_pull(task_ids=t)) for t in task_ids)
    return [ws.StageResult.from_xcom(v) for _, v in values if v]


def stage_task(
    pipeline: Pipeline, name: str, ti: Any, start_task: str, env: Mapping[str, str]
) -> dict[str, Any]:
    """The body of a stage's Airflow task: `run_stage` with the run's pin and the results
    of the stages upstream of it in this DAG. A failed gate fails the task at once (a
    retry cannot fix the data); an up-to-date stage is skipped (shown so in the UI)."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    pin = ws.RunPin.from_xcom(ti.xcom_pull(task_ids=start_task))
    in_dag = set(ti.task.dag.task_ids)
    upstream = upstream_results(ti, [a for a in pipeline.ancestors(name) if a in in_dag])
    try:
        result = run_stage(pipeline, name, pin, upstream, env=env)
    except GateRejected as rejected:
        raise AirflowFailException(str(rejected)) from rejected
    if result is None:
        raise AirflowSkipException(
            f"{name} is up to date: its code, params and inputs match the run's base "
            f"({pin.base[:12]})"
        )
    if not result.ran:
        print(f"{name}: restored from DVC's run cache (the same inputs ran before)")
    return result.to_xcom()


def commit_task(pipeline: Pipeline, ti: Any, start_task: str, message: str) -> str | None:
    """The body of a DAG's commit task: the run's dvc.lock assembled from what its stage
    tasks handed on, committed on the runs branch (workspaces.commit_run)."""
    pin = ws.RunPin.from_xcom(ti.xcom_pull(task_ids=start_task))
    in_dag = set(ti.task.dag.task_ids)
    results = upstream_results(ti, [s for s in pipeline.stages if s in in_dag])
    return ws.commit_run(PROJECT_DIR, pin, results, message)


def remote_description(project: Path = PROJECT_DIR, remote: str | None = None) -> str:
    """'name (url, endpoint ...)' of the default (or given) DVC remote, from .dvc/config*."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read([project / ".dvc" / "config", project / ".dvc" / "config.local"])
    name = remote or parser.get("core", "remote", fallback="").strip()
    if not name:
        return "(no default DVC remote: `dvc remote default <name>`)"
    sections = [
        parser[s] for s in parser.sections() if s.replace('"', "").strip("' ") == f"remote {name}"
    ]
    cfg = sections[0] if sections else {"url": "not defined in .dvc/config"}
    endpoint = f", endpoint {cfg['endpointurl']}" if "endpointurl" in cfg else ""
    return f"{name!r} ({cfg.get('url', '?')}{endpoint})"


def aws_env_from_connection(conn_id: str) -> dict[str, str]:
    """AWS_* variables from the Airflow connection `conn_id` when it exists, else nothing
    (then the worker's environment or instance role provides the credentials)."""
    try:
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or no Airflow at all
        log.info("no Airflow connection %r (%s): S3 credentials from the environment", conn_id, exc)
        return {}
    extra = conn.extra_dejson or {}
    values = {
        "AWS_ACCESS_KEY_ID": conn.login,
        "AWS_SECRET_ACCESS_KEY": conn.password,
        "AWS_DEFAULT_REGION": extra.get("region_name"),
        "AWS_SESSION_TOKEN": extra.get("aws_session_token"),
    }
    log.info("S3 credentials from the Airflow connection %r", conn_id)
    return {k: str(v) for k, v in values.items() if v}


def batch_end_date(data_interval_end: dt.datetime | None, run_after: dt.datetime | None) -> dt.date:
    """The last complete day of a run's data: the day before its data interval ends
    (asset-triggered runs have no interval: the day before the run)."""
    moment = data_interval_end or run_after
    if moment is None:
        raise ValueError("the run has neither a data interval nor a run_after time")
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.date() - dt.timedelta(days=1)


def default_args(owner: str) -> dict[str, Any]:
    """Retries with exponential back-off for every task. PIPELINE_TASK_RETRIES and
    PIPELINE_RETRY_DELAY_SECONDS (read when the DAG file is parsed) tune them."""
    return {
        "owner": owner,
        "retries": int(os.environ.get("PIPELINE_TASK_RETRIES", "2")),
        "retry_delay": dt.timedelta(
            seconds=float(os.environ.get("PIPELINE_RETRY_DELAY_SECONDS", "60"))
        ),
        "retry_exponential_backoff": 2.0,  # the delay doubles at each retry
        "max_retry_delay": dt.timedelta(minutes=30),
        "execution_timeout": dt.timedelta(hours=3),
    }
