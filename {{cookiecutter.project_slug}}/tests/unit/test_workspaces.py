"""dags/workspaces.py with dags/dvc_pipeline.py on a tiny project of real git and DVC: each
stage run in a private workspace, the DVC remote carrying the data between them, and the
run committed on the runs branch."""

from __future__ import annotations

import datetime as dt
import graphlib
import hashlib
import importlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import PROJECT_ROOT

DAGS = PROJECT_ROOT / "dags"
if str(DAGS) not in sys.path:
    sys.path.insert(0, str(DAGS))  # as Airflow puts the DAG folder on sys.path
dp = importlib.import_module("dvc_pipeline")
ws = importlib.import_module("workspaces")

BRANCH = "pipeline-runs"
END_DATE = "2026-02-01"
ROWS, SCALE = 3, 1.5

# Each stage a quick one-liner of the standard library only: the fake venv's python finds no
# site-packages. prepare -> summarize (git-tracked metrics) -> history (kept across runs).
STAGES: dict[str, dict[str, Any]] = {
    "prepare": {
        "cmd": (
            'python -c "import pathlib; '
            "end = open('interval.yaml').read().split('end_date:')[1].split()[0].strip(chr(39)); "
            "out = pathlib.Path('data/prepared'); out.mkdir(parents=True, exist_ok=True); "
            "[(out / f'part-{i}.csv').write_text((f'{end},{i}' + chr(10)) * ${prepare.rows}) "
            'for i in range(2)]"'
        ),
        "params": ["prepare.rows", {"interval.yaml": ["end_date"]}],
        "outs": ["data/prepared"],
    },
    "summarize": {
        "cmd": (
            'python -c "import json, pathlib; '
            "rows = sum(len(p.read_text().splitlines()) "
            "for p in pathlib.Path('data/prepared').iterdir()); "
            "pathlib.Path('metrics.json').write_text("
            "json.dumps({'rows': rows, 'score': rows * ${summarize.scale}}))\""
        ),
        "deps": ["data/prepared"],
        "params": ["summarize.scale"],
        "metrics": [{"metrics.json": {"cache": False}}],
    },
    "history": {
        "cmd": (
            "python -c \"import pathlib; out = pathlib.Path('history'); out.mkdir(exist_ok=True); "
            "n = len(list(out.iterdir())); "
            "(out / f'run-{n}.txt').write_text(open('metrics.json').read())\""
        ),
        "deps": ["metrics.json"],
        "outs": [{"history": {"persist": True}}],
    },
}
# Stages the faulty copy of the project adds: a command that fails, a gate that rejects,
# and a git-tracked output too big for git and XCom.
FAULTY_STAGES: dict[str, dict[str, Any]] = {
    "broken": {
        "cmd": (
            "python -c \"import pathlib; pathlib.Path('partial.txt').write_text('half'); "
            'raise SystemExit(3)"'
        ),
        "deps": ["interval.yaml"],
        "outs": ["partial.txt"],
    },
    "gate": {
        "cmd": (
            "python -c \"q = chr(39); print(f'gate {q}x{q} FAILED: 1 of 2 expectations'); "
            "print('  FAILED  rows >= 10'); raise SystemExit(1)\""
        ),
        "deps": ["interval.yaml"],
        "outs": ["gate.json"],
    },
    "big": {
        "cmd": "python -c \"import pathlib; pathlib.Path('big.json').write_text('0' * 600_000)\"",
        "deps": ["interval.yaml"],
        "metrics": [{"big.json": {"cache": False}}],
    },
}


def run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(args)} in {cwd}:\n{done.stdout}{done.stderr}"
    return done.stdout


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    return run(["git", *identity, "-c", "commit.gpgsign=false", *args], cwd)


def status(project: Path) -> str:
    return git(project, "status", "--porcelain", "--untracked-files=all")


def heads(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/heads").split()


def parents(repo: Path, commit: str) -> list[str]:
    return git(repo, "rev-list", "--parents", "-n", "1", commit).split()[1:]


def shown(repo: Path, commit: str, path: str) -> str:
    return git(repo, "show", f"{commit}:{path}")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def storage_files(storage: Path) -> set[str]:
    return {p.relative_to(storage).as_posix() for p in storage.rglob("*") if p.is_file()}


def manifest(storage: Path, entry: dict[str, Any], path: str) -> dict[str, str]:
    """relpath -> md5 of the files of the output folder `path` of a lock entry, read from
    the `.dir` object DVC pushed to the folder remote."""
    out = next(o for o in entry["outs"] if o["path"] == path)
    digest = out["md5"].removesuffix(".dir")
    listing = json.loads((storage / "files" / "md5" / digest[:2] / f"{digest[2:]}.dir").read_text())
    return {item["relpath"]: item["md5"] for item in listing}


def prepared_csv(end_date: str, part: int) -> str:
    return f"{end_date},{part}\n" * ROWS


def make_fake_venv(root: Path) -> Path:
    """A venv folder whose bin/ holds this test venv's python and dvc."""
    bin_dir = root / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "dvc"):
        (bin_dir / name).symlink_to(Path(sys.executable).parent / name)
    return root / "venv"


def make_project(
    root: Path, venv: Path, stages: dict[str, Any] = STAGES, ignore_outputs: bool = True
) -> Path:
    """A git + DVC project at root/project whose folder remote is root/storage, named by a
    path relative to .dvc/ (as DVC reads it)."""
    project = root / "project"
    project.mkdir(parents=True)
    git(project, "init", "--quiet", "--initial-branch=main")
    run([str(venv / "bin" / "dvc"), "init", "--quiet"], project)
    (project / ".dvc" / "config").write_text(
        "[core]\n    remote = local\n['remote \"local\"']\n    url = ../../storage\n"
    )
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (project / "params.yaml").write_text(
        yaml.safe_dump({"prepare": {"rows": ROWS}, "summarize": {"scale": SCALE}})
    )
    (project / "interval.yaml").write_text("# the run's interval\nend_date: '2026-01-01'\n")
    if ignore_outputs:
        (project / ".gitignore").write_text("/data/prepared\n/history\n/partial.txt\n")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "the project")
    return project


def clone_project(root: Path, source: Path, name: str) -> Path:
    """Another checkout of `source` beside it (so its relative remote is the same folder),
    with the runs branch and an empty DVC cache of its own."""
    dest = root / name
    git(root, "clone", "--quiet", str(source), str(dest))
    if git(dest, "branch", "--list", "--remotes", f"origin/{BRANCH}").strip():
        git(dest, "branch", BRANCH, f"origin/{BRANCH}")
    return dest


def commit_change(project: Path, path: str, text: str) -> str:
    (project / path).write_text(text)
    git(project, "add", "--", path)
    git(project, "commit", "--quiet", "-m", f"change {path}")
    return git(project, "rev-parse", "HEAD").strip()


def run_all(
    project: Path, pin: ws.RunPin, only: list[str] | None = None
) -> dict[str, ws.StageResult | None]:
    """Every stage (or `only` those) in topological order, each handed what this run's
    earlier stages handed on, as the DAG's stage tasks are."""
    pipeline = dp.load_pipeline(project)
    results: dict[str, ws.StageResult | None] = {}
    for name in graphlib.TopologicalSorter(pipeline.upstream).static_order():
        if only is None or name in only:
            upstream = [r for a in pipeline.ancestors(name) if (r := results.get(a))]
            results[name] = dp.run_stage(pipeline, name, pin, upstream, project=project)
    return results


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The module's folder, and the workers' settings: the fake venv, workspaces and
    service state under it, no repository of record but the checkout."""
    root = tmp_path_factory.mktemp("workspaces")
    venv = make_fake_venv(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROJECT_VENV", str(venv))
        patch.setenv("PIPELINE_WORKSPACE_DIR", str(root / "workspaces"))
        patch.setenv("PIPELINE_STATE_DIR", str(root / "state"))
        patch.setenv("GIT_CEILING_DIRECTORIES", str(root.parent))
        patch.setenv("DVC_NO_ANALYTICS", "1")
        for name in ("PIPELINE_GIT_REPO", "PIPELINE_DVC_CACHE"):
            patch.delenv(name, raising=False)
        yield root


@dataclass
class FirstRun:
    root: Path
    project: Path
    storage: Path
    pin: ws.RunPin
    results: dict[str, ws.StageResult | None]
    commit: str | None
    status_before: str
    status_after: str
    head_before: str
    head_after: str


@pytest.fixture(scope="module")
def first_run(root: Path) -> FirstRun:
    """The project's first run: every stage, then commit_run."""
    project = make_project(root, root / "venv")
    status_before, head_before = status(project), git(project, "rev-parse", "HEAD").strip()
    pin = ws.start_run(project, END_DATE)
    results = run_all(project, pin)
    made = [r for r in results.values() if r is not None]
    commit = ws.commit_run(project, pin, made, f"test run: end_date={END_DATE}")
    return FirstRun(
        root,
        project,
        root / "storage",
        pin,
        results,
        commit,
        status_before,
        status(project),
        head_before,
        git(project, "rev-parse", "HEAD").strip(),
    )


@dataclass
class ScaledRun:
    project: Path
    code: str
    pin: ws.RunPin
    results: dict[str, ws.StageResult | None]
    commit: str | None


@pytest.fixture(scope="module")
def scaled(first_run: FirstRun) -> ScaledRun:
    """A checkout of the project after its first run, summarize.scale changed to 2 and
    committed, run and committed on the runs branch."""
    project = clone_project(first_run.root, first_run.project, "scaled")
    params = yaml.safe_dump({"prepare": {"rows": ROWS}, "summarize": {"scale": 2.0}})
    code = commit_change(project, "params.yaml", params)
    pin = ws.start_run(project, END_DATE)
    results = run_all(project, pin)
    made = [r for r in results.values() if r is not None]
    return ScaledRun(project, code, pin, results, ws.commit_run(project, pin, made, "scale 2"))


@pytest.fixture(scope="module")
def faulty(first_run: FirstRun) -> Path:
    """A checkout of the project after its first run, with the FAULTY_STAGES added."""
    project = clone_project(first_run.root, first_run.project, "faulty")
    stages = {**STAGES, **FAULTY_STAGES}
    commit_change(project, "dvc.yaml", yaml.safe_dump({"stages": stages}, sort_keys=False))
    return project


# --------------------------------------------------------------------------- interval.yaml


def test_write_interval_keeps_the_header_comment_and_writes_end_date_as_a_string(
    tmp_path: Path,
) -> None:
    original = (PROJECT_ROOT / "interval.yaml").read_text()
    (tmp_path / "interval.yaml").write_text(original)
    ws.write_interval(tmp_path, "2027-01-15")
    edited = (tmp_path / "interval.yaml").read_text()
    before, after = original.splitlines(), edited.splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].startswith("end_date:")
    assert before[0].startswith("#") and after[0] == before[0], "the header comment is kept"
    assert yaml.safe_load(edited) == {"end_date": "2027-01-15"}  # a string, as DVC records it
    # the date it already holds leaves the file as it was, quoting and all
    (tmp_path / "interval.yaml").write_text(original)
    ws.write_interval(tmp_path, yaml.safe_load(original)["end_date"])
    assert (tmp_path / "interval.yaml").read_text() == original
    assert [p.name for p in tmp_path.iterdir()] == ["interval.yaml"], "no temporary file left"


def test_the_written_interval_is_what_the_pipeline_config_reads(tmp_path: Path) -> None:
    from {{ cookiecutter.package_name }}.config import load_params

    (tmp_path / "params.yaml").write_text((PROJECT_ROOT / "params.yaml").read_text())
    ws.write_interval(tmp_path, "2026-05-09")  # no interval.yaml yet
    params = load_params(tmp_path / "params.yaml")
    assert params.interval.end_date == dt.date(2026, 5, 9)
    assert params.window.end_date == dt.date(2026, 5, 9)


def test_tracked_outputs_are_the_uncached_ones_with_paths_resolved_in_the_lock(
    tmp_path: Path,
) -> None:
    stages = {
        "s": {
            "cmd": "s",
            "outs": ["${paths.data}", {"${paths.reports}/summary.json": {"cache": False}}],
            "metrics": [{"${paths.reports}/metrics.json": {"cache": False}}],
            "plots": [{"roc.csv": {"cache": False}}, {"${paths.reports}/big.csv": {}}],
        }
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    lock_paths = ["data", "reports/summary.json", "reports/metrics.json", "roc.csv"]
    entry = {"outs": [{"path": p} for p in [*lock_paths, "reports/big.csv"]]}
    assert ws.tracked_outputs(entry, tmp_path) == lock_paths[1:]


# --------------------------------------------------------------------------- a first run


def test_every_stage_of_a_first_run_ran_and_handed_on_its_lock_entry(
    first_run: FirstRun,
) -> None:
    results = first_run.results
    assert {name: r is not None and r.ran for name, r in results.items()} == dict.fromkeys(
        STAGES, True
    )
    assert all(r is not None and r.stage == name for name, r in results.items())
    summarize = results["summarize"]
    assert summarize is not None
    assert json.loads(summarize.files["metrics.json"]) == {
        "rows": 2 * ROWS,
        "score": 2 * ROWS * SCALE,
    }
    assert summarize.lock["params"]["params.yaml"] == {"summarize.scale": SCALE}
    assert set(summarize.seconds) == {"checkout", "pull", "stage", "push"}
    prepare = results["prepare"]
    assert prepare is not None and prepare.files == {}, "a cached output goes through DVC only"
    assert prepare.lock["params"]["interval.yaml"] == {"end_date": END_DATE}


def test_stage_results_and_the_pin_survive_xcoms_json(first_run: FirstRun) -> None:
    for result in first_run.results.values():
        assert result is not None
        assert ws.StageResult.from_xcom(json.loads(json.dumps(result.to_xcom()))) == result
    assert ws.RunPin.from_xcom(json.loads(json.dumps(vars(first_run.pin)))) == first_run.pin


def test_a_run_leaves_the_checkout_as_it_was(first_run: FirstRun) -> None:
    assert first_run.status_after == first_run.status_before
    assert first_run.head_after == first_run.head_before
    assert heads(first_run.project) == ["refs/heads/main", f"refs/heads/{BRANCH}"]
    assert not (first_run.project / "data").exists()
    assert not (first_run.project / "metrics.json").exists()


def test_the_run_is_committed_on_the_runs_branch_with_lock_interval_and_metrics(
    first_run: FirstRun,
) -> None:
    project, commit = first_run.project, first_run.commit
    assert commit is not None
    assert git(project, "rev-parse", BRANCH).strip() == commit
    assert parents(project, commit) == [first_run.pin.commit]
    lock = yaml.safe_load(shown(project, commit, "dvc.lock"))
    assert list(lock["stages"]) == list(STAGES)
    for name, result in first_run.results.items():
        assert result is not None and lock["stages"][name] == result.lock
    assert yaml.safe_load(shown(project, commit, "interval.yaml")) == {"end_date": END_DATE}
    assert shown(project, commit, "interval.yaml").startswith("# the run's interval\n")
    summarize = first_run.results["summarize"]
    assert summarize is not None
    assert shown(project, commit, "metrics.json") == summarize.files["metrics.json"]
    tree = git(project, "ls-tree", "-r", "--name-only", commit).split()
    assert not [p for p in tree if p.startswith(("data/", "history/"))], "cached outputs stay out"
    assert git(project, "log", "-1", "--format=%s", commit).strip() == (
        f"test run: end_date={END_DATE}"
    )


def test_a_clone_of_the_run_commit_pulls_exactly_what_the_stages_made(
    first_run: FirstRun, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(first_run.project), str(clone))
    git(clone, "checkout", "--quiet", BRANCH)
    dvc = str(first_run.root / "venv" / "bin" / "dvc")
    run([dvc, "remote", "modify", "--local", "local", "url", str(first_run.storage)], clone)
    run([dvc, "pull"], clone)
    prepare, history = first_run.results["prepare"], first_run.results["history"]
    assert prepare is not None and history is not None
    made = {
        **{
            f"data/prepared/{p}": m
            for p, m in manifest(first_run.storage, prepare.lock, "data/prepared").items()
        },
        **{
            f"history/{p}": m
            for p, m in manifest(first_run.storage, history.lock, "history").items()
        },
    }
    pulled = {
        p.relative_to(clone).as_posix(): md5(p.read_bytes())
        for folder in ("data/prepared", "history")
        for p in (clone / folder).rglob("*")
        if p.is_file()
    }
    assert pulled == made
    assert sorted(pulled) == [
        "data/prepared/part-0.csv",
        "data/prepared/part-1.csv",
        "history/run-0.txt",
    ]
    assert (clone / "data/prepared/part-1.csv").read_text() == prepared_csv(END_DATE, 1)
    assert (clone / "history/run-0.txt").read_text() == (clone / "metrics.json").read_text()
    assert "up to date" in run([dvc, "status"], clone), "lock, params and outputs agree"


def test_a_second_run_with_the_same_inputs_runs_nothing_and_commits_nothing(
    first_run: FirstRun,
) -> None:
    project = first_run.project
    pin = ws.start_run(project, END_DATE)
    assert (pin.commit, pin.base) == (first_run.pin.commit, first_run.commit)
    results = run_all(project, pin)
    assert results == dict.fromkeys(STAGES)
    assert ws.commit_run(project, pin, [], "nothing new") is None
    assert git(project, "rev-parse", BRANCH).strip() == first_run.commit
    assert status(project) == first_run.status_before


def test_read_output_takes_a_stage_result_first_then_the_base(first_run: FirstRun) -> None:
    pin = ws.start_run(first_run.project, END_DATE)
    summarize = first_run.results["summarize"]
    assert summarize is not None
    from_base = ws.read_output(first_run.project, pin, [], "metrics.json")
    assert from_base == summarize.files["metrics.json"]
    newer = ws.StageResult("summarize", True, {}, {"metrics.json": '{"rows": 1}'})
    assert ws.read_output(first_run.project, pin, [newer], "metrics.json") == '{"rows": 1}'
    with pytest.raises(ws.WorkspaceError, match="written by no stage"):
        ws.read_output(first_run.project, pin, [], "reports/missing.json")


# --------------------------------------------------------------------------- later runs


def test_a_changed_param_runs_only_its_stage_and_those_downstream(
    first_run: FirstRun, scaled: ScaledRun
) -> None:
    assert (scaled.pin.commit, scaled.pin.base) == (scaled.code, first_run.commit)
    assert {name: r is not None for name, r in scaled.results.items()} == {
        "prepare": False,
        "summarize": True,
        "history": True,
    }
    summarize, history = scaled.results["summarize"], scaled.results["history"]
    assert summarize is not None and history is not None
    assert json.loads(summarize.files["metrics.json"])["score"] == 2 * ROWS * 2.0
    assert scaled.commit is not None
    assert parents(scaled.project, scaled.commit) == [first_run.commit, scaled.code]
    lock = yaml.safe_load(shown(scaled.project, scaled.commit, "dvc.lock"))["stages"]
    first_prepare = first_run.results["prepare"]
    assert first_prepare is not None and lock["prepare"] == first_prepare.lock
    assert lock["summarize"] == summarize.lock and lock["history"] == history.lock


def test_a_persist_stage_keeps_its_earlier_files_and_adds_to_them(
    first_run: FirstRun, scaled: ScaledRun
) -> None:
    first, later = first_run.results["history"], scaled.results["history"]
    assert first is not None and later is not None
    earlier = manifest(first_run.storage, first.lock, "history")
    now = manifest(first_run.storage, later.lock, "history")
    assert sorted(now) == ["run-0.txt", "run-1.txt"]
    assert now["run-0.txt"] == earlier["run-0.txt"]
    summarize = scaled.results["summarize"]
    assert summarize is not None
    assert now["run-1.txt"] == md5(summarize.files["metrics.json"].encode())


def test_a_param_set_back_is_restored_from_the_run_cache_in_the_remote(
    first_run: FirstRun, scaled: ScaledRun
) -> None:
    project = clone_project(first_run.root, scaled.project, "set-back")
    commit_change(project, "params.yaml", (first_run.project / "params.yaml").read_text())
    pin = ws.start_run(project, END_DATE)
    assert pin.base == scaled.commit
    restored = run_all(project, pin, only=["summarize"])["summarize"]
    first = first_run.results["summarize"]
    assert restored is not None and first is not None
    assert restored.ran is False, "the same inputs ran before: DVC's run cache has the outputs"
    assert restored.files["metrics.json"] == first.files["metrics.json"]
    assert restored.lock == first.lock


# --------------------------------------------------------------------------- failures


def test_a_failing_stage_keeps_its_workspace_and_pushes_nothing(
    faulty: Path, first_run: FirstRun, caplog: pytest.LogCaptureFixture
) -> None:
    before = storage_files(first_run.storage)
    pin = ws.start_run(faulty, END_DATE)
    with (
        caplog.at_level("ERROR"),
        pytest.raises(dp.CommandFailed, match="Stage broken failed") as failed,
    ):
        run_all(faulty, pin, only=["broken"])
    assert not isinstance(failed.value, dp.GateRejected)
    kept = [
        Path(m.group(1))
        for r in caplog.records
        if (m := re.search(r"workspace of stage broken is kept for a look: (\S+)", r.getMessage()))
    ]
    assert len(kept) == 1 and kept[0].is_dir()
    assert kept[0].parent == first_run.root / "workspaces" / "broken"
    assert (kept[0] / "partial.txt").read_text() == "half", "what the command left, to look at"
    assert storage_files(first_run.storage) == before


def test_a_failed_gate_raises_gate_rejected_with_the_gates_name(faulty: Path) -> None:
    pin = ws.start_run(faulty, END_DATE)
    with pytest.raises(dp.GateRejected) as rejected:
        run_all(faulty, pin, only=["gate"])
    assert rejected.value.gate == "x"
    assert rejected.value.findings == ["FAILED  rows >= 10"]
    assert isinstance(rejected.value, dp.CommandFailed)


def test_a_stage_writing_too_much_for_git_is_refused_by_name(faulty: Path) -> None:
    pin = ws.start_run(faulty, END_DATE)
    with pytest.raises(ws.WorkspaceError, match=r"stage 'big' writes 586 KiB") as refused:
        run_all(faulty, pin, only=["big"])
    assert "big.json" in str(refused.value) and "cache: false" in str(refused.value)


def test_start_run_outside_a_git_repository_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "plain").mkdir()
    with pytest.raises(ws.WorkspaceError, match="is not a git repository") as refused:
        ws.start_run(tmp_path / "plain", END_DATE)
    assert "git init" in str(refused.value)


# --------------------------------------------------------------------------- the repository of record


def worker_of(first_run: FirstRun, name: str) -> tuple[Path, Path]:
    """A bare repository of record holding the project and its first run, and a worker's
    checkout of its main branch only (no runs branch, not even its objects)."""
    record = first_run.root / f"{name}.git"
    git(first_run.root, "clone", "--quiet", "--bare", str(first_run.project), str(record))
    worker = first_run.root / name
    git(
        first_run.root,
        "clone",
        "--quiet",
        "--single-branch",
        "--branch",
        "main",
        str(record),
        str(worker),
    )
    return record, worker


def test_runs_are_committed_to_the_repository_of_record_not_the_checkout(
    first_run: FirstRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, worker = worker_of(first_run, "record-one")
    monkeypatch.setenv("PIPELINE_GIT_REPO", str(record))
    code = commit_change(worker, "NOTES.md", "a change the record has not seen yet\n")
    refs_before = heads(worker)
    pin = ws.start_run(worker, "2026-02-02")
    assert (pin.commit, pin.base) == (code, first_run.commit)
    commit = ws.commit_run(worker, pin, [], "on the record")
    assert commit is not None
    assert git(record, "rev-parse", BRANCH).strip() == commit
    assert parents(record, commit) == [first_run.commit, code]
    assert shown(record, commit, "NOTES.md") == "a change the record has not seen yet\n"
    assert shown(record, commit, "dvc.lock") == shown(record, first_run.commit, "dvc.lock")
    assert yaml.safe_load(shown(record, commit, "interval.yaml")) == {"end_date": "2026-02-02"}
    assert heads(worker) == refs_before == ["refs/heads/main"]
    assert status(worker) == ""


def test_a_run_committing_after_another_is_reparented_on_the_new_tip(
    first_run: FirstRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, worker = worker_of(first_run, "record-two")
    monkeypatch.setenv("PIPELINE_GIT_REPO", str(record))
    one, two = ws.start_run(worker, "2026-02-02"), ws.start_run(worker, "2026-02-03")
    assert one.base == two.base == first_run.commit
    first = ws.commit_run(worker, one, [], "one")
    second = ws.commit_run(worker, two, [], "two")
    assert first is not None and second is not None
    assert parents(record, first) == [first_run.commit]
    assert parents(record, second) == [first], "on the tip the other run left"
    assert git(record, "rev-list", BRANCH).split()[:3] == [second, first, first_run.commit]
    assert yaml.safe_load(shown(record, second, "interval.yaml")) == {"end_date": "2026-02-03"}


# --------------------------------------------------------------------------- workspaces


@pytest.mark.parametrize("cache", ["", "private", "elsewhere"])
def test_a_workspace_has_absolute_remote_urls_and_the_cache_it_is_told(
    first_run: FirstRun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache: str
) -> None:
    from dvc.repo import Repo

    setting = str(tmp_path / "cache") if cache == "elsewhere" else cache
    monkeypatch.setenv("PIPELINE_DVC_CACHE", setting)
    workspace = ws.open_workspace(first_run.project, first_run.pin, [], "config")
    try:
        local = (workspace / ".dvc" / "config.local").read_text()
        assert f"url = {first_run.storage.resolve()}" in local
        with Repo(str(workspace)) as repo:
            assert repo.config["core"]["remote"] == "local"
            assert str(repo.config["remote"]["local"]["url"]) == str(first_run.storage.resolve())
            used = Path(repo.cache.local_cache_dir)
        expected = {
            "": first_run.project / ".dvc" / "cache",
            "private": workspace / ".dvc" / "cache",
            "elsewhere": tmp_path / "cache",
        }[cache]
        assert used == expected.resolve()
        assert (workspace / ".dvc" / "config").read_text() == (
            first_run.project / ".dvc" / "config"
        ).read_text(), "the committed config is left as it is"
    finally:
        ws.remove_workspace(workspace)
    assert not workspace.exists()


def test_a_workspace_links_the_service_state_from_the_state_dir(first_run: FirstRun) -> None:
    workspace = ws.open_workspace(first_run.project, first_run.pin, [], "state")
    try:
        state = first_run.root / "state"
        for relative in ws.SHARED_STATE:
            assert (workspace / relative).is_symlink(), relative
            assert (workspace / relative).resolve() == (state / relative).resolve()
        assert yaml.safe_load((workspace / "interval.yaml").read_text()) == {"end_date": END_DATE}
        assert git(workspace, "rev-parse", "HEAD").strip() == first_run.pin.commit
    finally:
        ws.remove_workspace(workspace)


# A stage writing a cached output and a git-tracked one, with nothing in .gitignore yet.
COUNTED = {
    **STAGES["prepare"],
    "cmd": STAGES["prepare"]["cmd"].replace(
        'range(2)]"', "range(2)]; pathlib.Path('count.json').write_text('2')\""
    ),
    "metrics": [{"count.json": {"cache": False}}],
}


def test_a_run_that_ran_nothing_keeps_the_gitignore_entries_dvc_wrote(
    root: Path, tmp_path: Path
) -> None:
    project = make_project(tmp_path, root / "venv", {"prepare": COUNTED}, ignore_outputs=False)
    pin = ws.start_run(project, END_DATE)
    prepared = run_all(project, pin)["prepare"]
    assert prepared is not None and prepared.files["data/.gitignore"] == "/prepared\n"
    first = ws.commit_run(project, pin, [prepared], "first")
    assert first is not None and shown(project, first, "data/.gitignore") == "/prepared\n"
    again = ws.start_run(project, END_DATE)  # its one stage up to date: nothing handed on
    second = ws.commit_run(project, again, [], "nothing new")
    assert second is None, git(project, "show", "--stat", "--format=%s", str(second))


def test_a_changed_param_reruns_its_stage_when_no_stage_has_git_tracked_outputs(
    root: Path, tmp_path: Path
) -> None:
    project = make_project(tmp_path, root / "venv", {"prepare": STAGES["prepare"]})
    pin = ws.start_run(project, END_DATE)
    prepared = run_all(project, pin)["prepare"]
    assert prepared is not None
    assert ws.commit_run(project, pin, [prepared], "first") is not None
    params = yaml.safe_dump({"prepare": {"rows": ROWS + 1}, "summarize": {"scale": SCALE}})
    commit_change(project, "params.yaml", params)
    again = ws.start_run(project, END_DATE)
    workspace = ws.open_workspace(project, again, [], "look")
    try:
        assert (workspace / "params.yaml").read_text() == params, "the run's commit, not the base's"
    finally:
        ws.remove_workspace(workspace)
    rerun = run_all(project, again)["prepare"]
    assert rerun is not None and rerun.lock["params"]["params.yaml"] == {"prepare.rows": ROWS + 1}
