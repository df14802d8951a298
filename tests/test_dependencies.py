"""pyproject.toml says what the code imports: nothing imported undeclared, nothing declared unused."""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWN = {"cli", "flows", "tasks", "blocks", "webapp", "sandbox", "templates", "benchmarks", "tests"}
# Needed without being imported by name: Starlette parses uploaded forms with python-multipart;
# the rest are commands `make test` runs, or a pytest plugin.
USED_INDIRECTLY = {"python-multipart", "ruff", "import-linter", "mypy", "pytest-timeout"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!\[;~]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    extras = {_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    return runtime, extras - {"hris-runbook"}


def _imports(folders: tuple[str, ...]) -> set[str]:
    found = set()
    for folder in folders:
        found |= _folder_imports(folder)
    return {m for m in found if m not in OWN and m not in sys.stdlib_module_names and m != "__future__"}


@functools.cache
def _folder_imports(folder: str) -> frozenset[str]:
    found = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return frozenset(found)


@functools.cache
def _installed() -> dict[str, list[str]]:
    """Which distributions provide each top-level module: one scan of the installed metadata (~0.3 s)
    instead of one per module looked up."""
    return packages_distributions()


def _distributions(module: str) -> set[str]:
    return {d.lower().replace("_", "-") for d in _installed().get(module, [])}


def test_every_package_the_product_imports_is_a_declared_dependency():
    runtime, extras = _declared()
    undeclared = {
        module: sorted(_distributions(module))
        for module in _imports(("cli", "flows", "tasks", "blocks", "webapp", "sandbox", "templates"))
        if not _distributions(module) & (runtime | extras)
    }
    assert not undeclared, f"imported but not in pyproject.toml: {undeclared}"


def test_every_declared_dependency_is_imported():
    runtime, extras = _declared()
    imported = set()
    for module in _imports(
        ("cli", "flows", "tasks", "blocks", "webapp", "sandbox", "templates", "tests", "benchmarks")
    ):
        imported |= _distributions(module)
    unused = sorted((runtime | extras) - imported - USED_INDIRECTLY)
    # `bench` holds the anchors `make bench` compares the engine with; nothing else may sit unused.
    bench = {
        _name(r)
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"].get(
            "bench", []
        )
    }
    assert set(unused) <= bench, f"declared but never imported: {sorted(set(unused) - bench)}"
    assert "pandas" not in runtime, "the engine runs on pyarrow; pandas is a benchmark anchor only"
