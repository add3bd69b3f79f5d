"""The load test's report: totals, per command and HTTP status, and the time series."""

from __future__ import annotations

import json

from loadtest.report import LoadReport, percentile


def test_percentiles_are_nearest_rank_in_milliseconds() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1 ms ... 100 ms

    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) != percentile([], 99)  # NaN


def a_run() -> LoadReport:
    report = LoadReport(first_send=100.0)
    for i in range(4):
        report.record_sent("ReadDTC", 100.0 + i * 0.5)
    report.record_answer("ReadDTC", 202, 100.0, 100.01)
    report.record_answer("ReadDTC", 202, 100.5, 100.51)
    report.record_answer("ReadDTC", 429, 101.0, 101.01)
    report.record_answer("ReadDTC", 0, 101.5, 101.6)
    report.record_terminal("ReadDTC", "completed", 100.0, 100.02)
    report.record_terminal("ReadDTC", "failed", 100.5, 101.3)
    return report


def test_totals_count_every_outcome_and_errors() -> None:
    document = json.loads(json.dumps(a_run().as_json()))
    totals = document["totals"]

    assert (totals["sent"], totals["accepted"], totals["rejected"]) == (4, 2, {"429": 1})
    assert totals["client_errors"] == {"connection lost": 1}
    assert totals["terminal"] == {"completed": 1, "failed": 1, "timed_out": 0}
    assert totals["errors"] == 3  # the 429, the lost connection and the failed command
    assert totals["error_rate"] == 0.75
    assert document["http_status"] == {"202": 2, "429": 1}
    assert document["commands"]["ReadDTC"]["terminal"] == {"completed": 1, "failed": 1}
    assert document["latency_ms"]["completion"]["max"] == 800.0
    assert document["latency_ms"]["stream"]["p99"] is None


def test_the_time_series_has_one_row_per_second() -> None:
    series = a_run().as_json()["timeseries"]

    assert [row["second"] for row in series] == [0, 1]
    assert [row["sent"] for row in series] == [2, 2]
    assert [row["accepted"] for row in series] == [2, 0]
    assert [(row["completed"], row["failed"]) for row in series] == [(1, 0), (0, 1)]
    assert [row["errors"] for row in series] == [0, 2]
    assert series[0]["completion_p99_ms"] == 20.0


def test_the_progress_line_shows_rate_completions_errors_and_p99() -> None:
    line = a_run().progress_line(now=102.0)

    assert line == "loadtest   2.0s  sent 4 (2/s)  completed 1  errors 3  p99 800.0 ms"
