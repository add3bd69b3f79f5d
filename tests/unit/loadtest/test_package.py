"""The load generator stays a client of the HTTP API: it imports nothing of the server."""

from __future__ import annotations

import ast
from pathlib import Path

import loadtest

SOVD_SIM_PACKAGES = {"web", "db", "actors", "sovd", "cli"}


def imported_packages(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(), filename=str(source))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name.split(".")[0] for name in names}


def test_the_load_generator_imports_nothing_of_the_server() -> None:
    sources = sorted(Path(loadtest.__file__).parent.glob("*.py"))
    assert len(sources) >= 3
    for source in sources:
        assert imported_packages(source) & SOVD_SIM_PACKAGES == set(), source.name
