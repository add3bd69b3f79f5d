"""`--plot`: the PNG, and the clear error when matplotlib is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loadtest.plot import PlotUnavailable, plot_report
from loadtest.report import LoadReport
from tests.unit.loadtest.test_report import a_run


def test_without_matplotlib_the_plot_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError

    with pytest.raises(PlotUnavailable, match=r"pip install 'sovd-sim\[plot\]'"):
        plot_report(LoadReport().as_json(), tmp_path / "plot.png")
    assert not (tmp_path / "plot.png").exists()


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "plot.png"

    plot_report(a_run().as_json(), path)

    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert path.stat().st_size > 10_000
