"""examples/locustfile.py: valid Python that sends the load test's mix (locust itself is
not installed here; where it is, the file is imported too)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

LOCUSTFILE = Path(__file__).resolve().parents[3] / "examples" / "locustfile.py"


def test_the_locustfile_compiles_and_reuses_the_load_tests_mix() -> None:
    tree = ast.parse(LOCUSTFILE.read_text(encoding="utf-8"), filename=str(LOCUSTFILE))
    compile(tree, str(LOCUSTFILE), "exec")

    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert {"locust", "loadtest.mix"} <= imported
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    assert classes == ["DiagnosticsUser"]


def test_the_locustfile_imports_where_locust_is_installed() -> None:
    pytest.importorskip("locust")
    pytest.importorskip("websocket")
    spec = importlib.util.spec_from_file_location("locustfile", LOCUSTFILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    assert module.MIX.names == ("ReadDTC", "ReadDataByID", "ClearDTC")
