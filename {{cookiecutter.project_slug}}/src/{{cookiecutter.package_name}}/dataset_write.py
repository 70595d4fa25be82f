"""`dataset init`'s writes: params.yaml (contract, source, window-relative settings),
interval.yaml, the ingest stage's dependency on the table, and the gates' suites.

params.yaml is edited in place (comments elsewhere are kept, ruamel.yaml round trip);
everything written is listed for review. Nothing is written when a check fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import SingleQuotedScalarString

from .dataset_init import Inferred, conformed_table, infer, place_source, read_table, settings
from .errors import StageInputError
from .files import write_json
from .suite_bootstrap import contract_suites

INIT_MARK = "# the table ingest.files reads (dataset init)"


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 100
    return yaml


def check_overwrite(root: Path, force: bool) -> None:
    """Refuse to replace a contract already brought (ingest.source other than synthetic)."""
    params = _yaml().load((root / "params.yaml").read_text())
    source = params.get("ingest", {}).get("source", "synthetic")
    if source != "synthetic" and not force:
        raise StageInputError(
            f"params.yaml already reads a table (ingest.source: {source}) with its own "
            "contract and suites: pass --force to replace them"
        )


def _set(doc: Any, dotted: str, values: dict[str, Any]) -> None:
    node = doc
    for part in dotted.split("."):
        node = node.setdefault(part, {})
    for key, value in values.items():
        node[key] = value


def _quoted(value: Any) -> Any:
    """Text values quoted: readers of YAML 1.1 (PyYAML) take a bare yes, no or on as a bool."""
    if isinstance(value, dict):
        return {k: _quoted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quoted(v) for v in value]
    return SingleQuotedScalarString(value) if isinstance(value, str) else value


def write_params(root: Path, inferred: Inferred, source: Path, settings: dict[str, Any]) -> None:
    yaml = _yaml()
    path = root / "params.yaml"
    doc = yaml.load(path.read_text())
    doc["dataset"] = _quoted(inferred.contract.model_dump(mode="json"))
    doc["ingest"]["source"] = "files"
    doc["ingest"]["files"] = {"path": source.as_posix(), "format": "auto"}
    for dotted, values in settings.items():
        _set(doc, dotted, values)
    with path.open("w") as out:
        yaml.dump(doc, out)


def write_interval(root: Path, inferred: Inferred) -> None:
    path = root / "interval.yaml"
    text = path.read_text() if path.is_file() else ""
    line = f"end_date: '{inferred.end_date.isoformat()}'"
    if re.search(r"^end_date:.*$", text, flags=re.M):
        text = re.sub(r"^end_date:.*$", line, text, flags=re.M)
    else:
        text += f"{line}\n"
    path.write_text(text)


def add_ingest_dependency(root: Path, source: Path) -> None:
    """Make the table a dependency of the ingest stage: a new table re-runs the pipeline."""
    path = root / "dvc.yaml"
    lines = [line for line in path.read_text().splitlines() if INIT_MARK not in line]
    try:
        start = lines.index("  ingest:")
        deps = next(i for i in range(start, len(lines)) if lines[i] == "    deps:")
    except (ValueError, StopIteration) as exc:
        raise StageInputError(f"{path}: found no deps: list in the ingest stage") from exc
    lines.insert(deps + 1, f"      - {source.as_posix()}  {INIT_MARK}")
    path.write_text("\n".join(lines) + "\n")


def write_suites(
    root: Path, expectations: Path, inferred: Inferred, table: pd.DataFrame
) -> dict[str, Path]:
    """Every gate's suite, profiled on the whole table as ingest lands it."""
    conformed = conformed_table(inferred.contract, table)
    written = {}
    for name, suite in contract_suites(inferred.contract, conformed, inferred.window_days).items():
        target = root / expectations / f"{name}.json"
        write_json(suite, target)
        written[name] = target
    return written


def _track_with_dvc(root: Path, source: Path) -> str:
    """`dvc add` the table (versioned in the DVC remote, kept out of git) in a DVC project."""
    import subprocess
    import sys

    if not (root / ".dvc").is_dir():
        return "not a DVC project: the table is not tracked"
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "add", source.as_posix()],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise StageInputError(f"dvc add {source} failed:\n{done.stderr.strip()}")
    return f"dvc add {source}: commit {source}.dvc, then `dvc push` to store the table"


def init_project(root: Path, table_path: Path, force: bool, **options: Any) -> dict[str, Any]:
    """Profile `table_path` and write the project's contract, settings and suites.
    `options` are `dataset_init.infer`'s (entity, timestamp, label, positive, ...)."""
    check_overwrite(root, force)
    table = read_table(table_path)
    inferred = infer(table, **options)
    extra = settings(inferred)  # checks the window is long enough before anything is written
    expectations = Path(_yaml().load((root / "params.yaml").read_text())["paths"]["expectations"])
    source = place_source(table_path, root)
    suites = write_suites(root, expectations, inferred, table)
    write_params(root, inferred, source, extra)
    write_interval(root, inferred)
    add_ingest_dependency(root, source)
    tracked = _track_with_dvc(root, source)
    return {
        "inferred": inferred,
        "source": source,
        "suites": suites,
        "settings": extra,
        "dvc": tracked,
    }
