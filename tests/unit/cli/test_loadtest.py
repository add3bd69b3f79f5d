"""`sovd-sim loadtest` refuses what it cannot do before it sends anything."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cli.main import main


def test_plot_without_matplotlib_exits_2_before_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setenv("SOVD_LOADTEST_PASSWORD", "unused")

    code = main(["loadtest", "--url", "http://127.0.0.1:9", "--plot", str(tmp_path / "p.png")])

    assert code == 2
    assert capsys.readouterr().err == (
        "sovd-sim loadtest: --plot needs matplotlib: pip install 'sovd-sim[plot]'\n"
    )


def test_a_report_into_a_missing_directory_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOVD_LOADTEST_PASSWORD", "unused")

    code = main(["loadtest", "--report", str(tmp_path / "nowhere" / "r.json")])

    assert code == 2
    assert "--report: the directory" in capsys.readouterr().err
