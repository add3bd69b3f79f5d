"""The load generator's open-loop schedule: each request leaves at its scheduled time, and
its latency counts from then."""

from __future__ import annotations

import time

from loadtest.client import Answer
from loadtest.mix import single_command
from loadtest.report import LoadReport
from loadtest.run import LoadPlan, _LoadRun

RATE = 10.0  # one request every 100 ms


class RecordingPool:
    """Takes requests and never answers; records when each was handed over."""

    def __init__(self) -> None:
        self.handed: list[tuple[float, float]] = []  # (scheduled, handed over at)

    def request(self, request: bytes, queued_at: float, answer: Answer) -> None:
        self.handed.append((queued_at, time.perf_counter()))


class OneRequest:
    def next(self, index: int) -> tuple[str, bytes]:
        return "ReadDTC", b"POST"


async def test_each_request_leaves_at_its_scheduled_time_not_one_interval_later() -> None:
    plan = LoadPlan(
        url="http://127.0.0.1:1",
        username="admin",
        password="-",
        rate=RATE,
        duration_s=0.5,
        mix=single_command("ReadDTC", None),
    )
    report = LoadReport()
    run = _LoadRun(plan, report, session=None, ws_base="ws://127.0.0.1:1", token="t")  # type: ignore[arg-type]
    pool = RecordingPool()

    await run.send(pool, OneRequest())  # type: ignore[arg-type]

    assert report.sent == len(pool.handed) == 5
    interval = 1 / RATE
    scheduled = [at for at, _ in pool.handed]
    assert scheduled == [report.first_send + k * interval for k in range(5)]
    lags = [handed - at for at, handed in pool.handed]
    # Sent within a tick or two of its time; a request held back one whole interval would
    # add that interval to every latency measured from its scheduled time.
    assert all(-1e-3 <= lag < interval / 2 for lag in lags), lags
