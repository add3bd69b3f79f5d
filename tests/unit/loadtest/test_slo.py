"""Service-level objectives of a load test."""

from __future__ import annotations

import pytest

from loadtest.report import LoadReport
from loadtest.slo import Objective, SloError, judge, parse_slo


def test_objectives_are_parsed() -> None:
    assert parse_slo("p99_ms=200, error_rate=0.01") == (
        Objective("p99_ms", 200.0),
        Objective("error_rate", 0.01),
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("p42_ms=1", "unknown objective 'p42_ms'; known: p50_ms"),
        ("p99_ms", "expected NAME=VALUE"),
        ("p99_ms=fast", "needs a number, got 'fast'"),
        ("error_rate=-1", "needs a number >= 0"),
    ],
)
def test_a_bad_objective_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(SloError, match=problem):
        parse_slo(text)


def test_upper_and_lower_bounds_are_judged() -> None:
    report = LoadReport(first_send=0.0, completion_latencies_s=[0.010] * 99 + [0.300])
    report.sent = report.accepted = 100
    report.terminal["completed"] = 100
    report.last_completion = 10.0

    verdicts = judge(report, parse_slo("p99_ms=200,max_ms=200,error_rate=0,min_rate=11"))

    assert [(v.objective.name, v.met) for v in verdicts] == [
        ("p99_ms", True),
        ("max_ms", False),
        ("error_rate", True),
        ("min_rate", False),
    ]
    assert verdicts[1].line() == "SLO max_ms <= 200: FAILED (POST-to-completed max (ms): 300)"


def test_a_latency_objective_fails_when_nothing_completed() -> None:
    (verdict,) = judge(LoadReport(), parse_slo("p99_ms=1000"))

    assert not verdict.met
