"""The layers of README "Architecture" import only what the table there allows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("sovd", "actors", "db", "web", "cli", "loadtest", "sovd_sim_pytest")
ALLOWED = {
    "sovd": set(),
    "actors": {"sovd"},
    "db": {"sovd"},
    "web": {"sovd", "actors", "db"},
    "cli": {"sovd", "actors", "db", "web", "loadtest"},
    "loadtest": set(),
    "sovd_sim_pytest": {"sovd", "actors", "db", "web"},
}


def imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return {name.split(".")[0] for name in names} & set(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    files = sorted((ROOT / layer).rglob("*.py"))
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported - ALLOWED[layer] - {layer})
        for path in files
        if (imported := imported_layers(path)) - ALLOWED[layer] - {layer}
    }

    assert files
    assert wrong == {}
