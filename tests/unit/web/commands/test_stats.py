"""The dashboard's command statistics: per-second buckets over a sliding window, failures by
reason and latency percentiles."""

from __future__ import annotations

import pytest

from web.commands.stats import CommandStats, failure_reason, latency_bin, percentile_ms


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [
        ("failed", "NRC 0x31 requestOutOfRange", "nrc"),
        ("failed", "vehicle WVW is disconnected: the command could not be delivered", "offline"),
        ("timed_out", "vehicle WVW stayed disconnected: no reply within 30 s", "offline"),
        ("failed", "connection to the vehicle lost: its link is intermittent", "offline"),
        ("timed_out", "no reply within 30 s", "timeout"),
        ("failed", "internal error while running ReadDTC", "other"),
        ("failed", None, "other"),
    ],
)
def test_failures_are_grouped_by_reason(status: str, message: str | None, reason: str) -> None:
    assert failure_reason(status, message) == reason


def test_percentiles_are_read_from_the_histogram_within_a_bin() -> None:
    histogram = [0] * 60
    for ms in [1.0] * 98 + [500.0, 500.0]:
        histogram[latency_bin(ms / 1000)] += 1

    median = percentile_ms(histogram, 100, 0.5)
    high = percentile_ms(histogram, 100, 0.99)

    assert median is not None and 0.9 <= median <= 1.2
    assert high is not None and 420 <= high <= 600
    assert percentile_ms(histogram, 0, 0.5) is None


def test_commands_are_counted_in_the_second_they_finish() -> None:
    clock = Clock()
    stats = CommandStats(clock, window_s=10)
    stats.command_accepted()
    stats.command_finished("completed", None, 0.010)
    clock.now += 1
    stats.command_finished("failed", "NRC 0x31 requestOutOfRange", 0.020)
    stats.command_finished("timed_out", "no reply within 30 s", None)

    snapshot = stats.snapshot()

    assert snapshot["start"] == int(clock.now) - 9
    assert snapshot["accepted"][-2:] == [1, 0]
    assert snapshot["completed"][-2:] == [1, 0]
    assert snapshot["failed"][-2:] == [0, 2]
    assert snapshot["failures"] == {"nrc": 1, "timeout": 1, "offline": 0, "other": 0}
    assert snapshot["nrcs"] == {"NRC 0x31 requestOutOfRange": 1}
    assert snapshot["totals"] | {"completed": 1, "failed": 2} == snapshot["totals"]
    p50 = snapshot["p50_ms"][-2]
    assert p50 is not None and 8 <= p50 <= 10
    assert snapshot["p50_ms"][:-2] == [None] * 8


def test_seconds_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    stats = CommandStats(clock, window_s=10)
    stats.command_finished("completed", None, 0.001)
    clock.now += 9
    assert sum(stats.snapshot()["completed"]) == 1

    clock.now += 1
    snapshot = stats.snapshot()

    assert sum(snapshot["completed"]) == 0
    assert snapshot["totals"]["p50_ms"] is None
    stats.command_finished("completed", None, 0.001)
    assert stats.snapshot()["completed"] == [0] * 9 + [1]


def test_a_second_that_is_over_keeps_its_percentiles() -> None:
    clock = Clock()
    stats = CommandStats(clock, window_s=10)
    stats.command_finished("completed", None, 0.004)
    clock.now += 1
    first = stats.snapshot()["p99_ms"][-2]

    assert first == stats.snapshot()["p99_ms"][-2]
    assert first is not None and 3.2 < first <= 4.9
