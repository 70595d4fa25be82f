"""The package stays easy to read: one module per stage, small modules and functions,
no module reaching into another's private names, no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from conftest import PROJECT_ROOT

PACKAGE = "{{ cookiecutter.package_name }}"
SOURCE = PROJECT_ROOT / "src" / PACKAGE
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    """Dotted module name (relative to the package) -> file."""
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        name = ".".join(p for p in parts if p != "__init__")
        found[name] = path
    return found


def imports(path: Path, name: str) -> list[tuple[str, list[str]]]:
    """(imported package module, names) for every package import in the file."""
    tree = ast.parse(path.read_text())
    package_parts = name.split(".") if name else []
    if path.name != "__init__.py":
        package_parts = package_parts[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.split(".")[0] == PACKAGE:
                target = node.module.removeprefix(PACKAGE).lstrip(".")
            else:
                continue
            out.append((target, [alias.name for alias in node.names]))
    return out


def test_every_dvc_stage_has_its_own_module() -> None:
    stages = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]
    stage_modules = {p.stem for p in (SOURCE / "stages").glob("*.py") if p.stem != "__init__"}
    assert stage_modules == set(stages)
    for name in stages:
        assert f"src/{PACKAGE}/stages/{name}.py" in stages[name]["deps"]


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for name, path in modules().items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"module {name}: {lines} lines")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert too_long == []


def test_no_module_imports_another_modules_private_names() -> None:
    private = [
        f"{name} imports {target}.{imported}"
        for name, path in modules().items()
        for target, names in imports(path, name)
        for imported in names
        if imported.startswith("_") and imported != "__version__"
    ]
    assert private == []


def test_no_import_cycles() -> None:
    known = modules()
    graph = {
        name: {t for t, _ in imports(path, name) if t in known and t != name}
        for name, path in known.items()
    }
    # `from . import tracking` names a module, not a package attribute
    for name, path in known.items():
        for target, names in imports(path, name):
            graph[name] |= {f"{target}.{n}".lstrip(".") for n in names} & set(known) - {name}
    for parent in [n for n in known if n]:  # a package's __init__ is not a cycle with its parts
        for child in [n for n in known if n.startswith(parent + ".")]:
            graph[child].discard(parent)
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycles.append(" -> ".join([*trail[trail.index(node) :], node]))
            return
        state[node] = 1
        for nxt in sorted(graph[node]):
            visit(nxt, [*trail, node])
        state[node] = 2

    for node in sorted(graph):
        visit(node, [])
    assert cycles == []
