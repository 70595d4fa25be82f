"""Stage metrics for the benchmark, without any hook in the package.

`tools/bench_pipeline.py` puts this folder on PYTHONPATH for the `dvc repro` it times,
with STAGE_METRICS_FILE set, so every Python process of the run imports this module
at start-up. A process that imports a stage module (`{{ cookiecutter.package_name }}.stages.<stage>`)
appends one JSON line to that file when it exits:

- start-up: from the process start (psutil's create_time) until the stage module
  finished importing: the interpreter, the CLI, and every library the stage imports;
- work: from then until exit (the stage's `run`, and writing its outputs);
- peak memory: the process's maximum resident set size (ru_maxrss);
- ok: no uncaught exception and no sys.exit with a failure code (how click ends).

Other processes (dvc itself, git) record nothing. Python imports only the first
sitecustomize on its path: this one shadows any other while the bench runs.
"""

import atexit
import json
import os
import sys
import time

_OUT = os.environ.get("STAGE_METRICS_FILE")
_STAGES = "{{ cookiecutter.package_name }}.stages."
_state = {"stage": None, "ready": None, "code": 0}


class _StageImportTimer:
    """A meta path finder that only watches: it times the first stage module's import."""

    def find_spec(self, name, path=None, target=None):
        if _state["stage"] is not None or not name.startswith(_STAGES):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                _state["stage"] = name
                spec.loader = _TimedLoader(spec.loader)
                return spec
        return None


class _TimedLoader:
    def __init__(self, loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        _state["ready"] = time.time()

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _exit(code=0):
    _state["code"] = code
    _real_exit(code)


def _excepthook(kind, value, traceback):
    _state["code"] = 1
    _real_excepthook(kind, value, traceback)


def _record() -> None:
    if _state["ready"] is None:
        return  # not a stage process
    import resource

    import psutil

    started = psutil.Process().create_time()
    now = time.time()
    code = _state["code"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    line = {
        "command": " ".join(sys.argv[1:]),
        "stage_module": _state["stage"],
        "ok": code in (0, None),
        "startup_seconds": round(_state["ready"] - started, 3),
        "work_seconds": round(now - _state["ready"], 3),
        "total_seconds": round(now - started, 3),
        "peak_rss_mb": round(peak / (2**20 if sys.platform == "darwin" else 1024), 1),
    }
    with open(_OUT, "a") as handle:  # noqa: PTH123 - no pathlib at interpreter start-up
        handle.write(json.dumps(line) + "\n")


if _OUT:
    _real_exit, _real_excepthook = sys.exit, sys.excepthook
    sys.exit, sys.excepthook = _exit, _excepthook
    sys.meta_path.insert(0, _StageImportTimer())
    atexit.register(_record)
