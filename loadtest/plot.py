"""`--plot`: throughput and latency percentiles over time, as a PNG (matplotlib, the
optional extra `sovd-sim[plot]`)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

NEEDS_MATPLOTLIB = "--plot needs matplotlib: pip install 'sovd-sim[plot]'"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def require_matplotlib() -> None:
    """Fails before a run whose plot could not be drawn."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise PlotUnavailable(NEEDS_MATPLOTLIB) from None


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Draws a `--report` document's time series into `path` (PNG)."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    from matplotlib import pyplot

    series = report["timeseries"]
    seconds = [row["second"] for row in series]
    figure, (throughput, latency) = pyplot.subplots(2, 1, sharex=True, figsize=(9, 6))
    throughput.plot(seconds, [row["sent"] for row in series], label="sent")
    throughput.plot(seconds, [row["completed"] for row in series], label="completed")
    throughput.plot(seconds, [row["errors"] for row in series], label="errors")
    throughput.set_ylabel("commands/s")
    throughput.legend(loc="upper right")
    throughput.grid(alpha=0.3)
    for key, label in (("completion_p50_ms", "p50"), ("completion_p99_ms", "p99")):
        latency.plot(seconds, [_gap(row[key]) for row in series], marker=".", label=label)
    latency.set_ylabel("POST-to-completed ms")
    latency.set_xlabel("second of the run")
    latency.legend(loc="upper right")
    latency.grid(alpha=0.3)
    totals = report["totals"]
    figure.suptitle(
        f"sovd-sim loadtest: {totals['sent']} sent, {totals['completed_per_s']:.0f} completed/s, "
        f"errors {totals['error_rate']:.2%}"
    )
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    pyplot.close(figure)


def _gap(value: float | None) -> float:
    return float("nan") if value is None else value
