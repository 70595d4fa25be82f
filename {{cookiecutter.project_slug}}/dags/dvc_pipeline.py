"""Run this project's DVC pipeline from Airflow: the logic the DAGs in this folder share.

- `load_pipeline()` reads dvc.yaml (and params.yaml for `${...}` values) into
  stages and the edges between them: a stage depends on every stage whose
  outputs it reads. The DAGs build their tasks from it, so dvc.yaml stays the
  one definition of the pipeline.
- `run_in_project(args)` runs a command in the project checkout (the folder
  above dags/, or $PIPELINE_PROJECT_DIR) through the PROJECT's virtualenv, not
  Airflow's: `<venv>/bin` goes first on PATH. The venv is the env var
  PROJECT_VENV, else the Airflow Variable `project_venv`, else `<project>/.venv`.
  Output streams into the task log; a failure raises `CommandFailed` with the
  last lines of output.
- `repro_stage`, `dvc_push`, `commit_run`, `set_param`: what the tasks do.

Only the standard library and PyYAML are imported here (Airflow only lazily,
inside functions), so parsing a DAG file stays fast and this module can be
used and tested without Airflow.
"""

from __future__ import annotations

import collections
import configparser
import datetime as dt
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The checkout the tasks work in: the folder above dags/, unless PIPELINE_PROJECT_DIR
# names another (e.g. when Airflow ships dags/ from elsewhere, such as a DAG bundle).
PROJECT_DIR = Path(os.environ.get("PIPELINE_PROJECT_DIR") or Path(__file__).resolve().parents[1])
# The Airflow asset a DAG updates (outlets=[Asset(RETRAIN_REQUEST)]) to ask for retraining:
# continuous_training is scheduled on it (or daily, whichever comes first).
RETRAIN_REQUEST = "retrain_request"
VENV_ENV = "PROJECT_VENV"
VENV_VARIABLE = "project_venv"
TAIL_LINES = 40

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- dvc.yaml


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    desc: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]  # outs, metrics and plots
    git_tracked: tuple[str, ...]  # the outputs with `cache: false` (versioned by git)

    def doc_md(self) -> str:
        lines = [f"**DVC stage `{self.name}`**: {self.desc or '(no desc in dvc.yaml)'}", ""]
        lines += [f"Runs `dvc repro --single-item {self.name}`, that is `{self.cmd}`", ""]
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


_REF = re.compile(r"\$\{\s*([^}\s]+)\s*\}")


def _interpolate(value: str, context: Mapping[str, Any], where: str) -> str:
    def lookup(match: re.Match[str]) -> str:
        node: Any = context
        for part in match.group(1).split("."):
            if not isinstance(node, Mapping) or part not in node:
                ref = "${" + match.group(1) + "}"
                raise ValueError(f"{where}: {ref} is not defined in params.yaml")
            node = node[part]
        return str(node)

    return _REF.sub(lookup, str(value))


def _paths(entries: Sequence[Any] | None) -> list[tuple[str, dict[str, Any]]]:
    """dvc.yaml lists entries as `path` or as a mapping `path: options`."""
    out = []
    for entry in entries or []:
        if isinstance(entry, Mapping):
            out += [(str(path), dict(opts or {})) for path, opts in entry.items()]
        else:
            out.append((str(entry), {}))
    return out


def _norm(path: str) -> str:
    return os.path.normpath(path).replace(os.sep, "/")


def _overlap(dep: str, out: str) -> bool:
    return dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")


def load_pipeline(project: Path = PROJECT_DIR) -> Pipeline:
    """Stages of `project/dvc.yaml` and their dependency edges (from deps and outs)."""
    dvc_yaml = project / "dvc.yaml"
    spec = yaml.safe_load(dvc_yaml.read_text()) or {}
    params_file = project / "params.yaml"
    context: dict[str, Any] = {}
    if params_file.is_file():
        context.update(yaml.safe_load(params_file.read_text()) or {})
    for item in spec.get("vars", []) or []:
        if isinstance(item, Mapping):
            context.update(item)
    stages: dict[str, Stage] = {}
    for name, body in (spec.get("stages") or {}).items():
        if "foreach" in body or "matrix" in body:
            raise ValueError(
                f"{dvc_yaml}: stage {name!r} uses foreach/matrix, which dvc_pipeline does not "
                "expand; list its instances as separate stages"
            )

        def paths(
            key: str, name: str = name, body: Mapping[str, Any] = body
        ) -> list[tuple[str, dict[str, Any]]]:
            return [
                (_norm(_interpolate(p, context, f"{dvc_yaml} stage {name}")), opts)
                for p, opts in _paths(body.get(key))
            ]

        outs = paths("outs") + paths("metrics") + paths("plots")
        stages[name] = Stage(
            name=name,
            cmd=str(body.get("cmd", "")),
            desc=str(body.get("desc", "")),
            deps=tuple(p for p, _ in paths("deps")),
            outs=tuple(p for p, _ in outs),
            git_tracked=tuple(p for p, opts in outs if opts.get("cache") is False),
        )
    upstream = {
        name: tuple(
            other
            for other, producer in stages.items()
            if other != name and any(_overlap(d, o) for d in stage.deps for o in producer.outs)
        )
        for name, stage in stages.items()
    }
    _check_acyclic(upstream, dvc_yaml)
    return Pipeline(stages, upstream)


def _check_acyclic(upstream: Mapping[str, Sequence[str]], source: Path) -> None:
    state: dict[str, int] = {}  # 1: visiting, 2: done

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise ValueError(f"{source}: stages form a cycle: {' -> '.join([*trail, node])}")
        state[node] = 1
        for up in upstream[node]:
            visit(up, [*trail, node])
        state[node] = 2

    for node in upstream:
        visit(node, [])


# --------------------------------------------------------------------------- running


class CommandFailed(RuntimeError):
    """A command in the project failed; the message carries the end of its output."""

    def __init__(self, args: Sequence[str], returncode: int, tail: Sequence[str], hint: str = ""):
        self.returncode = returncode
        self.tail = list(tail)
        text = "".join(self.tail).rstrip()
        super().__init__(
            f"`{shlex.join(args)}` exited with {returncode}."
            + (f" {hint}" if hint else "")
            + f"\n--- last {len(self.tail)} lines of its output ---\n{text}"
        )


def _airflow_variable(key: str) -> str | None:
    try:
        from airflow.sdk import Variable

        return Variable.get(key, default=None)
    except Exception:  # outside a task (tests, tools) or no metadata access
        return None


def project_venv(project: Path = PROJECT_DIR) -> Path:
    """The project's virtualenv: $PROJECT_VENV, Variable `project_venv`, or <project>/.venv."""
    value = os.environ.get(VENV_ENV) or _airflow_variable(VENV_VARIABLE)
    return Path(value).expanduser() if value else project / ".venv"


def project_env(venv: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment, with the project venv first on PATH and Airflow's
    Python settings removed, so commands import the project's packages only."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)])
    env["VIRTUAL_ENV"] = str(venv)
    env["NO_PROGRESS"] = "1"  # plain lines in the task log
    env.update(extra or {})
    return env


def run_in_project(
    args: Sequence[str],
    *,
    project: Path = PROJECT_DIR,
    venv: Path | None = None,
    env: Mapping[str, str] | None = None,
    hint: str = "",
) -> str:
    """Run `args` in the project checkout through the project venv; return its output.

    Each line of output goes to the task log as it comes. A non-zero exit raises
    CommandFailed; if the task itself is stopped (timeout, marked failed), the
    command is terminated too, so it never keeps holding the DVC lock."""
    venv = venv or project_venv(project)
    full_env = project_env(venv, env)
    program = shutil.which(args[0], path=full_env["PATH"])
    if program is None or (args[0] in ("dvc", "python") and not (venv / "bin").is_dir()):
        raise FileNotFoundError(
            f"{args[0]!r} not found in the project venv {venv}: run `make setup` in {project}, "
            f"or point the env var {VENV_ENV} (or the Airflow Variable {VENV_VARIABLE!r}) "
            "at the project's virtualenv"
        )
    log.info("$ %s  (in %s, venv %s)", shlex.join(args), project, venv)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    output: list[str] = []
    proc = subprocess.Popen(
        [program, *args[1:]],
        cwd=project,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.info("%s", line.rstrip())
            tail.append(line)
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
        raise CommandFailed(args, returncode, tail, hint)
    return "".join(output)


def repro_stage(stage: str, project: Path = PROJECT_DIR) -> str:
    """`dvc repro --single-item <stage>`: runs the stage if its deps, params or code changed."""
    return run_in_project(
        ["dvc", "repro", "--single-item", stage],
        project=project,
        hint=f"Stage {stage!r} failed: its message is above; nothing downstream runs.",
    )


# --------------------------------------------------------------------------- DVC remote


def remote_description(project: Path = PROJECT_DIR, remote: str | None = None) -> str:
    """'name (url, endpoint ...)' of the default (or given) DVC remote, from .dvc/config*."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read([project / ".dvc" / "config", project / ".dvc" / "config.local"])
    name = remote or parser.get("core", "remote", fallback="").strip()
    if not name:
        return "(no default DVC remote: `dvc remote default <name>`)"
    section = next(
        (s for s in parser.sections() if s.strip("'\" ").replace('"', "") == f"remote {name}"),
        None,
    )
    if section is None:
        return f"{name!r} (not defined in .dvc/config)"
    url = parser.get(section, "url", fallback="?")
    endpoint = parser.get(section, "endpointurl", fallback="")
    return f"{name!r} ({url}" + (f", endpoint {endpoint}" if endpoint else "") + ")"


def aws_env_from_connection(conn_id: str) -> dict[str, str]:
    """AWS_* variables from the Airflow connection `conn_id` when it exists, else nothing
    (then the worker's environment or instance role provides the credentials)."""
    try:
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or no Airflow at all
        log.info(
            "no Airflow connection %r (%s): S3 credentials come from the environment",
            conn_id,
            type(exc).__name__,
        )
        return {}
    env = {}
    if conn.login:
        env["AWS_ACCESS_KEY_ID"] = conn.login
    if conn.password:
        env["AWS_SECRET_ACCESS_KEY"] = conn.password
    extra = conn.extra_dejson or {}
    if extra.get("region_name"):
        env["AWS_DEFAULT_REGION"] = str(extra["region_name"])
    if extra.get("aws_session_token"):
        env["AWS_SESSION_TOKEN"] = str(extra["aws_session_token"])
    log.info("S3 credentials from the Airflow connection %r", conn_id)
    return env


def dvc_push(
    project: Path = PROJECT_DIR, remote: str | None = None, env: Mapping[str, str] | None = None
) -> str:
    """Push every output in dvc.lock to the DVC remote (only what the remote lacks)."""
    args = ["dvc", "push", *(["--remote", remote] if remote else [])]
    where = remote_description(project, remote)
    hint = (
        f"Pushing to the DVC remote {where} failed: is the endpoint reachable, and do the "
        "credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment, or the "
        "Airflow connection) allow writing to the bucket? Nothing is lost: the outputs stay "
        "in this checkout's DVC cache and the task retries the push."
    )
    return run_in_project(args, project=project, env=env, hint=hint)


# --------------------------------------------------------------------------- git and params


def _git(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise CommandFailed(["git", *args], done.returncode, [done.stdout, done.stderr])
    return done


def commit_run(project: Path, pipeline: Pipeline, message: str) -> str | None:
    """Commit dvc.lock, params.yaml and the git-tracked metrics/plots: with the data
    already in the DVC remote, that commit pins exactly what this run produced
    (`git checkout <commit> && dvc pull` restores it). Returns the commit, or None."""
    if _git(project, "rev-parse", "--is-inside-work-tree", check=False).returncode != 0:
        log.warning("%s is not a git repository: nothing committed", project)
        return None
    paths = ["dvc.lock", "params.yaml"]
    paths += [p for s in pipeline.stages.values() for p in s.git_tracked]
    existing = [p for p in dict.fromkeys(paths) if (project / p).exists()]
    # and the .gitignore files DVC writes next to outputs (ignored ones are skipped)
    _git(project, "add", "--", *existing, ":(glob)**/.gitignore")
    if _git(project, "diff", "--cached", "--quiet", check=False).returncode == 0:
        log.info("nothing changed: no commit")
        return None
    env_identity = []
    if not _git(project, "config", "user.email", check=False).stdout.strip():
        env_identity = ["-c", "user.name=Airflow", "-c", "user.email=airflow@localhost"]
    done = subprocess.run(
        ["git", *env_identity, "commit", "--quiet", "--no-verify", "-m", message],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise CommandFailed(["git", "commit"], done.returncode, [done.stdout, done.stderr])
    commit = _git(project, "rev-parse", "HEAD").stdout.strip()
    log.info("committed %s: %s", commit[:12], message)
    return commit


def set_param(path: Path, key: str, value: str) -> bool:
    """Set the string `value` at dotted `key` of a YAML file, keeping its comments and
    layout (PyYAML would drop them). Returns whether the file changed."""
    lines = path.read_text().splitlines(keepends=True)
    parts = key.split(".")
    start, end, indent = 0, len(lines), 0
    for depth, part in enumerate(parts):
        pattern = re.compile(rf"^{' ' * indent}{re.escape(part)}:(\s|$)")
        found = next((i for i in range(start, end) if pattern.match(lines[i])), None)
        if found is None:
            raise KeyError(f"{key} not found in {path}")
        if depth == len(parts) - 1:
            match = re.match(
                r"^(\s*[^:]+:[ \t]*)([^#\n]*?)([ \t]*#.*)?$", lines[found].rstrip("\n")
            )
            assert match is not None
            new = f"{match.group(1) or ''}{json.dumps(value)}{match.group(3) or ''}\n"
            if match.group(2) == "":
                new = f"{match.group(1).rstrip()} {json.dumps(value)}{match.group(3) or ''}\n"
            changed = new != lines[found]
            lines[found] = new
            break
        block_end = found + 1
        while block_end < end and (
            not lines[block_end].strip()
            or lines[block_end].lstrip().startswith("#")
            or len(lines[block_end]) - len(lines[block_end].lstrip(" ")) > indent
        ):
            block_end += 1
        children = [
            ln
            for ln in lines[found + 1 : block_end]
            if ln.strip() and not ln.lstrip().startswith("#")
        ]
        if not children:
            raise KeyError(f"{key}: {'.'.join(parts[: depth + 1])} has no nested keys in {path}")
        start, end = found + 1, block_end
        indent = len(children[0]) - len(children[0].lstrip(" "))
    text = "".join(lines)
    node: Any = yaml.safe_load(text)
    for part in parts:
        node = node[part]
    if str(node) != value:
        raise ValueError(f"editing {key} in {path} did not take effect (read back {node!r})")
    if changed:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    return changed


def batch_end_date(data_interval_end: dt.datetime | None, run_after: dt.datetime | None) -> dt.date:
    """The last complete day of a run's data: the day before its data interval ends
    (asset-triggered runs have no interval: the day before the run)."""
    moment = data_interval_end or run_after
    if moment is None:
        raise ValueError("the run has neither a data interval nor a run_after time")
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.date() - dt.timedelta(days=1)


# --------------------------------------------------------------------------- DAG defaults


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
