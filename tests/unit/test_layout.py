"""The package layout holds: one installed name, dependencies pointing one way, no cycles.

Read from the source (every `import` statement, at module level or inside a function), so a
new import that breaks the direction fails here, naming the file and the import:

    swarmsync.dashboard                -> swarmsync.client, swarmsync.spec (and its own modules)
    swarmsync.cli, swarmsync.api       -> core, deployments, blocks (never the dashboard)
    swarmsync.deployments              -> core, flows, blocks
    swarmsync.flows                    -> core
    core (every other swarmsync.*)     -> blocks; never flows, deployments, dashboard, cli, api
    swarmsync.blocks                   -> nothing of SwarmSync (Prefect only)
    swarmsync (the package facade)     -> anything but the ways in (cli, api, dashboard)
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
APPS = ("cli", "api", "dashboard")
ALLOWED = {  # part -> parts it may import
    "dashboard": {"dashboard", "core"},  # of the core, only the client and the spec (below)
    "cli": {"cli", "api", "core", "deployments", "blocks", "flows", "facade"},
    "api": {"api", "core", "deployments", "blocks", "facade"},
    "deployments": {"deployments", "core", "flows", "blocks"},
    "flows": {"flows", "core"},
    "core": {"core", "blocks"},
    "blocks": {"blocks"},
    "facade": {"core", "deployments", "blocks", "flows"},
}
DASHBOARD_MAY_USE = {"swarmsync.client", "swarmsync.spec"}


def modules() -> dict[str, Path]:
    """Every module of the installed `swarmsync` package, by dotted name, from its folder."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if package == "swarmsync" and parts and parts[0] in {p.split(".")[1] for p in PACKAGE_DIRS if "." in p}:
                continue  # a mapped subpackage's folder never lives inside swarmsync/
            if "migrations" in parts:
                continue  # Alembic scripts, loaded by Alembic
            found[".".join([package, *parts])] = path
    return found


def part_of(module: str) -> str:
    if module == "swarmsync":
        return "facade"
    name = module.split(".")[1]
    return name if name in {*APPS, "deployments", "flows", "blocks"} else "core"


def imports(module: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported swarmsync module, line) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known and name != module:
                found.append((name, node.lineno))
    return found


def graph() -> dict[str, list[tuple[str, int]]]:
    known = modules()
    return {module: imports(module, path, set(known)) for module, path in known.items()}


def test_only_swarmsync_is_installed_as_a_top_level_name():
    assert all(package == "swarmsync" or package.startswith("swarmsync.") for package in PACKAGE_DIRS)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert all(p == "swarmsync" or p.startswith("swarmsync.") for p in config["packages"])


def test_every_import_points_the_allowed_way():
    wrong = []
    for module, targets in graph().items():
        part = part_of(module)
        for target, line in targets:
            if part_of(target) not in ALLOWED[part]:
                wrong.append(f"{modules()[module].relative_to(ROOT)}:{line}: {part} {module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_dashboard_uses_only_the_client_and_the_spec():
    wrong = [
        f"{module}:{line} imports {target}"
        for module, targets in graph().items() if part_of(module) == "dashboard"
        for target, line in targets
        if part_of(target) != "dashboard" and target not in DASHBOARD_MAY_USE
    ]
    assert not wrong, "\n".join(wrong)


def test_there_is_no_import_cycle():
    edges = defaultdict(set)
    for module, targets in graph().items():
        edges[module].update(target for target, _ in targets)
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_the_layout_check_sees_a_wrong_import(tmp_path):
    """The checker itself: an import from the core into the dashboard is found."""
    core = tmp_path / "mod.py"
    core.write_text("def f():\n    from swarmsync.dashboard import data\n")
    found = imports("swarmsync.mod", core, {"swarmsync.dashboard.data", "swarmsync.dashboard", "swarmsync.mod"})
    assert found == [("swarmsync.dashboard.data", 2)]
    assert part_of("swarmsync.mod") == "core" and "dashboard" not in ALLOWED["core"]
