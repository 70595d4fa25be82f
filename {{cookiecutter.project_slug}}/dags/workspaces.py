"""Task workspaces: every stage task of a DAG run works in a clean checkout of its own,
and the DVC remote carries the data from one task to the next.

A run is pinned when it starts (`start_run`): the code commit it runs (HEAD of the
checkout the DAGs were parsed from) and the base it continues from (the tip of the
runs branch, else that commit). Each stage task then:

1. clones that commit into a private folder (`open_workspace`): `dvc.lock` and the
   git-tracked outputs come from the base, the entries of this run's upstream stages
   (from XCom) on top; the run's `interval.yaml` is written there;
2. pulls from the DVC remote only the outputs its stage reads (and its own, if the
   stage keeps them across runs: `persist: true`);
3. runs `dvc repro --single-item --allow-missing --pull <stage>`: DVC skips a stage
   whose code, params and inputs match the base, and restores one it has run before
   from its run cache;
4. pushes the stage's outputs and the run cache, and hands downstream its `dvc.lock`
   entry and its git-tracked outputs (the small `cache: false` metrics and plots)
   through XCom (`StageResult`).

The last task (`commit_run`) assembles the run's `dvc.lock` from those entries and
commits it, with `interval.yaml` and the git-tracked outputs, on the runs branch of
the repository of record (a commit whose parents are the branch's tip and the code
commit), so `git checkout <commit> && dvc pull` restores exactly that run. No task
writes to the checkout the DAGs come from: it only gains git objects and the branch.

Settings (environment of the workers):

- PIPELINE_GIT_REPO: the repository runs commit to (a path or URL; default: the
  checkout itself). Set it to the shared repository when workers have clones.
- PIPELINE_RUNS_BRANCH: the branch the runs are committed on (default pipeline-runs).
- PIPELINE_WORKSPACE_DIR: where workspaces are made (default: the temp folder).
  A workspace is removed when its task succeeds and kept when it fails.
- PIPELINE_DVC_CACHE: a DVC cache the workspaces on one worker share (default: the
  checkout's own cache); `private` gives each workspace its own, so every input
  comes from the remote.
- PIPELINE_STATE_DIR, PIPELINE_SHARED_STATE: service state the stages share (the
  embedded MLflow store, the Feast registry and online store, the prediction log) is
  linked into each workspace from PIPELINE_STATE_DIR (default: the checkout); the
  comma-separated paths are in SHARED_STATE.

Standard library and PyYAML only (see dvc_pipeline.py).
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

RUNS_BRANCH = os.environ.get("PIPELINE_RUNS_BRANCH", "pipeline-runs")
# Paths (relative to the project) of service state that outlives a workspace: the
# embedded MLflow store and artifacts, the Feast registry and online store, the
# prediction log. With servers (MLFLOW_TRACKING_URI, a Redis online store) the links
# are unused.
SHARED_STATE = tuple(
    p.strip()
    for p in os.environ.get(
        "PIPELINE_SHARED_STATE", "mlflow.db,mlartifacts,features/state,logs"
    ).split(",")
    if p.strip()
)
# Git-tracked outputs travel through XCom; anything bigger belongs in the DVC cache.
MAX_TRACKED_BYTES = 512 * 1024
LOCK_FILE = "dvc.lock"
INTERVAL_FILE = "interval.yaml"


class WorkspaceError(RuntimeError):
    """A workspace could not be made or a run could not be committed; says why."""


@dataclass(frozen=True)
class RunPin:
    """What a DAG run works from: set once by its first task, read by the others."""

    commit: str  # the code: HEAD of the checkout when the run started
    base: str  # the state it continues from: the runs branch's tip, else `commit`
    end_date: str  # the run's interval (interval.yaml)
    branch: str = RUNS_BRANCH

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> RunPin:
        return cls(**{k: str(v) for k, v in value.items()})


@dataclass
class StageResult:
    """What a stage task hands on: its dvc.lock entry and git-tracked outputs. `ran` is
    False when DVC restored the outputs from its run cache instead of running."""

    stage: str
    ran: bool
    lock: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # path -> text
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall time

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> StageResult:
        return cls(**value)


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_DIR")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, env=env
    )
    if check and done.returncode != 0:
        raise WorkspaceError(
            f"`git {' '.join(args)}` in {cwd} exited with {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()}"
        )
    return done


def git_repo(project: Path) -> str:
    """The repository of record: PIPELINE_GIT_REPO, else the checkout itself."""
    return os.environ.get("PIPELINE_GIT_REPO") or str(project)


def branch_tip(repo: str, branch: str, cwd: Path) -> str | None:
    shown = git(cwd, "ls-remote", "--heads", repo, f"refs/heads/{branch}").stdout.split()
    return shown[0] if shown else None


def start_run(project: Path, end_date: str, branch: str = RUNS_BRANCH) -> RunPin:
    """Pin the run: the checkout's HEAD and the runs branch's tip (or HEAD again)."""
    if git(project, "rev-parse", "--is-inside-work-tree", check=False).returncode != 0:
        raise WorkspaceError(
            f"{project} is not a git repository: tasks check out the run's commit from it "
            "(`git init && git add -A && git commit`)"
        )
    commit = git(project, "rev-parse", "HEAD").stdout.strip()
    dirty = git(project, "status", "--porcelain", "--untracked-files=no").stdout.strip()
    if dirty:
        log.warning(
            "uncommitted changes in %s are not part of this run (it runs commit %s):\n%s",
            project,
            commit[:12],
            dirty,
        )
    tip = branch_tip(git_repo(project), branch, project)
    pin = RunPin(commit=commit, base=tip or commit, end_date=end_date, branch=branch)
    log.info(
        "run pinned: code %s, continuing from %s (%s)",
        commit[:12],
        pin.base[:12],
        f"tip of {branch}" if tip else "no runs yet",
    )
    return pin


def workspace_root() -> Path:
    root = os.environ.get("PIPELINE_WORKSPACE_DIR")
    return Path(root) if root else Path(tempfile.gettempdir()) / "pipeline-workspaces"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]


def _ensure_commits(workspace: Path, repo: str, commits: Sequence[str]) -> None:
    missing = [
        c
        for c in commits
        if git(workspace, "cat-file", "-e", c + "^{commit}", check=False).returncode
    ]
    if missing:
        git(workspace, "fetch", "--quiet", repo, "+refs/heads/*:refs/remotes/record/*")
    still = [
        c
        for c in missing
        if git(workspace, "cat-file", "-e", c + "^{commit}", check=False).returncode
    ]
    if still:
        raise WorkspaceError(
            f"commit(s) {', '.join(c[:12] for c in still)} are in neither this worker's checkout "
            f"nor {repo}: push them there (PIPELINE_GIT_REPO names the shared repository)"
        )


def _dvc_config(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    if path.is_file():
        parser.read(path)
    return parser


def _section(name: str) -> str:
    return name.replace("'", "").replace('"', "").strip()


def _write_local_config(project: Path, workspace: Path) -> None:
    """The workspace's .dvc/config.local: the checkout's own (credentials, remote choice),
    relative folder remotes made absolute (they are relative to the checkout's .dvc/), and
    the shared DVC cache."""
    merged: dict[str, dict[str, str]] = {}
    for source in (project / ".dvc" / "config", project / ".dvc" / "config.local"):
        for section, values in _dvc_config(source).items():
            if section != "DEFAULT":
                merged.setdefault(_section(section), {}).update(values)
    local = {
        _section(s): dict(v)
        for s, v in _dvc_config(project / ".dvc" / "config.local").items()
        if s != "DEFAULT"
    }
    for section, values in merged.items():
        url = values.get("url", "")
        if (
            section.startswith("remote ")
            and url
            and "://" not in url
            and not Path(url).is_absolute()
        ):
            local.setdefault(section, {})["url"] = str((project / ".dvc" / url).resolve())
    cache = os.environ.get("PIPELINE_DVC_CACHE", "")
    if cache != "private":
        shared = Path(cache) if cache else _project_cache(project, merged)
        shared.mkdir(parents=True, exist_ok=True)
        local.setdefault("cache", {})["dir"] = str(shared.resolve())
    lines = []
    for section, values in local.items():
        head = section.split(" ", 1)
        lines.append(f"['{head[0]} \"{head[1]}\"']" if len(head) == 2 else f"[{section}]")
        # configobj reads a comma as a list and # as a comment: quote such values
        lines += [
            f'    {key} = "{value}"' if any(c in value for c in ',#"') else f"    {key} = {value}"
            for key, value in values.items()
        ]
    (workspace / ".dvc" / "config.local").write_text("\n".join(lines) + "\n")


def _project_cache(project: Path, config: Mapping[str, Mapping[str, str]]) -> Path:
    configured = config.get("cache", {}).get("dir")
    if not configured:
        return project / ".dvc" / "cache"
    path = Path(configured)
    return path if path.is_absolute() else project / ".dvc" / path


def _link_shared_state(project: Path, workspace: Path) -> None:
    state = Path(os.environ.get("PIPELINE_STATE_DIR") or project)
    for relative in SHARED_STATE:
        target, link = state / relative, workspace / relative
        if link.exists() or link.is_symlink():
            continue  # tracked in git: not state
        if not Path(relative).suffix:
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target.resolve())


def lock_entries(text: str) -> dict[str, Any]:
    return dict((yaml.safe_load(text) or {}).get("stages") or {})


def tracked_outputs(entry: Mapping[str, Any], workspace: Path) -> list[str]:
    """The git-tracked outputs of a lock entry: those DVC does not cache (`cache: false`
    in dvc.yaml), as files relative to the workspace."""
    stages = yaml.safe_load((workspace / "dvc.yaml").read_text()).get("stages", {})
    return [out["path"] for out in entry.get("outs", []) if not _cached(stages, out["path"])]


def _cached(stages: Mapping[str, Any], path: str) -> bool:
    for body in stages.values():
        for key in ("outs", "metrics", "plots"):
            for item in body.get(key) or []:
                if isinstance(item, Mapping):
                    for written, options in item.items():
                        if _same_path(written, path):
                            return bool((options or {}).get("cache", True))
                elif _same_path(str(item), path):
                    return True  # outs, metrics and plots are cached unless `cache: false`
    return True


def _same_path(written: str, path: str) -> bool:
    # dvc.yaml paths may hold ${...}; dvc.lock paths are resolved: compare the tails
    if "${" not in written:
        return os.path.normpath(written) == os.path.normpath(path)
    tail = written.split("}", 1)[-1].lstrip("/")
    return bool(tail) and os.path.normpath(path).endswith(os.path.normpath(tail))


def _carry_base(workspace: Path, base: str) -> None:
    """dvc.lock and the git-tracked outputs from the base (the last run), and the lines
    DVC added to .gitignore files there, over the run's code commit."""
    base_lock = git(workspace, "show", f"{base}:{LOCK_FILE}", check=False)
    if base_lock.returncode != 0:
        return
    (workspace / LOCK_FILE).write_text(base_lock.stdout)
    outs = [
        p
        for entry in lock_entries(base_lock.stdout).values()
        for p in tracked_outputs(entry, workspace)
    ]
    if outs:
        present = git(workspace, "ls-tree", "-r", "--name-only", base, "--", *outs).stdout.split()
        if present:
            git(workspace, "checkout", "--quiet", base, "--", *present)
    tree = git(workspace, "ls-tree", "-r", "--name-only", base).stdout.splitlines()
    for relative in (p for p in tree if p.rsplit("/", 1)[-1] == ".gitignore"):
        path = workspace / relative
        mine = path.read_text().splitlines() if path.is_file() else []
        theirs = git(workspace, "show", f"{base}:{relative}").stdout.splitlines()
        added = [line for line in theirs if line not in mine]
        if added:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join([*mine, *added]) + "\n")


def open_workspace(
    project: Path,
    pin: RunPin,
    results: Sequence[StageResult],
    name: str,
    dvc: bool = True,
) -> Path:
    """A private checkout of the run's commit under workspace_root(), with dvc.lock and
    the git-tracked outputs of the base and of `results` (this run's upstream stages),
    and the run's interval.yaml."""
    parent = workspace_root() / _safe(name)
    parent.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix="ws-", dir=parent))
    started = time.monotonic()
    git(parent, "clone", "--quiet", "--no-checkout", "--shared", str(project), str(workspace))
    _ensure_commits(workspace, git_repo(project), [pin.commit, pin.base])
    git(workspace, "checkout", "--quiet", "--detach", pin.commit)
    if pin.base != pin.commit:
        _carry_base(workspace, pin.base)
    apply_results(workspace, results)
    write_interval(workspace, pin.end_date)
    if dvc:
        _write_local_config(project, workspace)
        _link_shared_state(project, workspace)
    log.info(
        "workspace %s: commit %s, base %s, %d upstream entries (%.1f s)",
        workspace,
        pin.commit[:12],
        pin.base[:12],
        len(results),
        time.monotonic() - started,
    )
    return workspace


def apply_results(workspace: Path, results: Sequence[StageResult]) -> None:
    """Put this run's upstream entries into dvc.lock and their git-tracked outputs in place."""
    if not results:
        return
    path = workspace / LOCK_FILE
    lock = (yaml.safe_load(path.read_text()) if path.is_file() else None) or {}
    lock.setdefault("schema", "2.0")
    stages = lock.setdefault("stages", {})
    for result in results:
        stages[result.stage] = result.lock
        for relative, text in result.files.items():
            target = workspace / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    path.write_text(yaml.safe_dump(lock, sort_keys=False))


def write_interval(workspace: Path, end_date: str) -> None:
    path = workspace / INTERVAL_FILE
    old = path.read_text() if path.is_file() else ""
    header = [line for line in old.splitlines(True) if line.startswith("#")]
    path.write_text("".join(header) + yaml.safe_dump({"end_date": end_date}))


def read_result(workspace: Path, stage: str, ran: bool, seconds: dict[str, float]) -> StageResult:
    """The stage's entry in the workspace's dvc.lock and its git-tracked outputs."""
    entries = lock_entries((workspace / LOCK_FILE).read_text())
    if stage not in entries:
        raise WorkspaceError(
            f"stage {stage!r} has no entry in {workspace / LOCK_FILE} after it ran"
        )
    entry = entries[stage]
    files: dict[str, str] = {}
    for relative in tracked_outputs(entry, workspace):
        path = workspace / relative
        paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in paths:
            files[file.relative_to(workspace).as_posix()] = file.read_text()
    # the .gitignore files DVC wrote for new outputs go along, so git leaves them alone
    changed = git(
        workspace, "status", "--porcelain", "--untracked-files=all", "--", ":(glob)**/.gitignore"
    ).stdout
    for line in changed.splitlines():
        relative = line[3:].strip()
        files[relative] = (workspace / relative).read_text()
    size = sum(len(text.encode()) for text in files.values())
    if size > MAX_TRACKED_BYTES:
        raise WorkspaceError(
            f"stage {stage!r} writes {size / 1024:.0f} KiB of git-tracked outputs ({sorted(files)}); "
            f"more than {MAX_TRACKED_BYTES // 1024} KiB does not belong in git or XCom: "
            "drop `cache: false` for the big ones in dvc.yaml"
        )
    return StageResult(stage, ran, entry, files, seconds)


def remove_workspace(workspace: Path) -> None:
    shutil.rmtree(workspace, ignore_errors=True)
    with contextlib.suppress(OSError):
        workspace.parent.rmdir()  # when no other workspace of that name is left


def _identity(workspace: Path) -> list[str]:
    if git(workspace, "config", "user.email", check=False).stdout.strip():
        return []
    return ["-c", "user.name=Airflow", "-c", "user.email=airflow@localhost"]


def commit_run(
    project: Path, pin: RunPin, results: Sequence[StageResult], message: str, attempts: int = 5
) -> str | None:
    """Commit the run on its branch: the code commit's tree with the base's and this run's
    dvc.lock entries, git-tracked outputs and interval.yaml. Parents: the branch's tip (a
    linear history of runs) and the code commit when the tip does not contain it yet.
    Pushed to the repository of record; if another run moved the tip meanwhile, the commit
    is made again on the new tip. Returns the commit, or None when nothing changed."""
    repo = git_repo(project)
    workspace = open_workspace(project, pin, results, f"commit-{pin.commit[:12]}", dvc=False)
    try:
        outs = [
            p
            for entry in lock_entries((workspace / LOCK_FILE).read_text()).values()
            for p in tracked_outputs(entry, workspace)
        ]
        written = [p for result in results for p in result.files]
        existing = [
            p
            for p in dict.fromkeys([LOCK_FILE, INTERVAL_FILE, *outs, *written])
            if (workspace / p).exists()
        ]
        git(workspace, "add", "--force", "--", *existing)
        # the .gitignore files with the lines the base added (none in some projects)
        git(workspace, "add", "--", ":(glob)**/.gitignore", check=False)
        tree = git(workspace, "write-tree").stdout.strip()
        for _ in range(attempts):
            tip = branch_tip(repo, pin.branch, workspace)
            parents = []
            if tip:
                _ensure_commits(workspace, repo, [tip])
                if git(workspace, "rev-parse", tip + "^{tree}").stdout.strip() == tree:
                    log.info("the run changed nothing on %s: no commit", pin.branch)
                    return None
                parents.append(tip)
            contained = (
                tip
                and git(
                    workspace, "merge-base", "--is-ancestor", pin.commit, tip, check=False
                ).returncode
                == 0
            )
            if not contained:
                parents.append(pin.commit)
            args = [a for p in parents for a in ("-p", p)]
            commit = git(
                workspace, *_identity(workspace), "commit-tree", tree, *args, "-m", message
            ).stdout.strip()
            lease = f"--force-with-lease=refs/heads/{pin.branch}:{tip or ''}"
            pushed = git(
                workspace,
                "push",
                "--quiet",
                lease,
                repo,
                f"{commit}:refs/heads/{pin.branch}",
                check=False,
            )
            if pushed.returncode == 0:
                log.info("committed %s on %s of %s: %s", commit[:12], pin.branch, repo, message)
                return commit
            log.warning(
                "%s moved while committing (%s): again on its new tip",
                pin.branch,
                pushed.stderr.strip(),
            )
        raise WorkspaceError(
            f"could not commit the run on {pin.branch} of {repo} after {attempts} attempts"
        )
    finally:
        remove_workspace(workspace)


def read_output(project: Path, pin: RunPin, results: Sequence[StageResult], path: str) -> str:
    """A git-tracked output as this run left it: from a stage that ran, else from the base."""
    for result in results:
        if path in result.files:
            return result.files[path]
    parent = workspace_root() / "read"
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="ws-", dir=parent))
    try:
        git(parent, "clone", "--quiet", "--no-checkout", "--shared", str(project), str(scratch))
        _ensure_commits(scratch, git_repo(project), [pin.base])
        shown = git(scratch, "show", f"{pin.base}:{path}", check=False)
    finally:
        remove_workspace(scratch)
    if shown.returncode != 0:
        raise WorkspaceError(
            f"{path} was written by no stage of this run and is not in {pin.base[:12]}"
        )
    return shown.stdout
