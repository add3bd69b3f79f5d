"""The chaos run's short form (bench/chaos.py): the server killed, Redis and PostgreSQL
restarted twice each under load, and nothing accepted is lost, stuck or run twice."""

from __future__ import annotations

import pytest

from bench.chaos import ChaosPlan, missing_tools, run_chaos
from tests.conftest import IN_CI

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.integration]

SHORT = ChaosPlan(
    duration_s=30,
    rate=60,
    vehicles=500,
    server_kills=2,
    redis_restarts=2,
    postgres_restarts=2,
    seed=7,
    settle_s=30,
    quiet_s=3,
)


async def test_nothing_accepted_is_lost_across_kills_and_restarts() -> None:
    missing = missing_tools()
    if missing:
        needs = "the chaos run needs " + ", ".join(missing)
        if IN_CI:
            pytest.fail(f"{needs}; CI requires it", pytrace=False)
        pytest.skip(f"{needs}; set CI=1 to make this a failure")
    progress: list[str] = []
    report = await run_chaos(SHORT, say=progress.append)
    summary = "\n".join([*progress, *report.lines()])
    print(summary)
    assert report.problems == [], summary
    assert len(report.tally.accepted) > SHORT.rate * 3, summary  # the load did run
    assert any(follow.reconnected for follow in report.tally.followed.values()), summary
