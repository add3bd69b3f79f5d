"""Open-loop command load against a running server, and the report it produces.

Commands are sent at a fixed rate whatever the server answers (open loop, so a slow server
shows up as latency instead of hiding behind a slower client). Completion is observed on the
fleet-wide WebSocket feed, so no polling adds load."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson
from attrs import define, field, frozen

from loadtest.client import LeanPool, post_request

TERMINAL = {"completed", "failed", "timed_out"}


@frozen
class LoadPlan:
    url: str
    username: str
    password: str
    rate: float
    duration_s: float
    command_name: str = "ReadDTC"
    command_params: dict[str, Any] | None = None
    vehicles: int = 1000
    connections: int = 256
    drain_s: float = 15.0


@define
class LoadReport:
    sent: int = 0
    accepted: int = 0
    rejected: Counter[int] = field(factory=Counter)
    errors: Counter[str] = field(factory=Counter)
    terminal: Counter[str] = field(factory=Counter)
    post_latencies_s: list[float] = field(factory=list)
    completion_latencies_s: list[float] = field(factory=list)
    first_send: float = 0.0
    last_completion: float = 0.0
    cpu_s: float = 0.0
    unanswered: int = 0

    def completed_per_s(self) -> float:
        elapsed = self.last_completion - self.first_send
        return self.terminal["completed"] / elapsed if elapsed > 0 else 0.0

    def lines(self) -> list[str]:
        post, done = self.post_latencies_s, self.completion_latencies_s
        return [
            f"sent {self.sent}, accepted {self.accepted}, rejected {dict(self.rejected)}, "
            f"client errors {dict(self.errors)}, unanswered when the run ended {self.unanswered}",
            f"terminal {dict(self.terminal)}, "
            f"never finished {self.accepted - sum(self.terminal.values())}",
            f"completed commands/s: {self.completed_per_s():.0f}",
            f"POST latency ms: p50 {percentile(post, 50):.1f}  p99 {percentile(post, 99):.1f}",
            "POST-to-completed ms: "
            f"p50 {percentile(done, 50):.1f}  p95 {percentile(done, 95):.1f}  "
            f"p99 {percentile(done, 99):.1f}  max {percentile(done, 100):.1f}",
            f"load generator CPU: {self.cpu_s:.2f} s "
            f"({self.cpu_s / max(1, self.sent) * 1e6:.0f} us per command)",
        ]


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index] * 1000


async def _login(session: aiohttp.ClientSession, plan: LoadPlan) -> str:
    async with session.post(
        f"{plan.url}/api/v1/auth/login",
        json={"username": plan.username, "password": plan.password},
    ) as response:
        if response.status != 200:
            raise SystemExit(f"login failed: {response.status} {await response.text()}")
        token: str = (await response.json())["access_token"]
        return token


async def _targets(
    session: aiohttp.ClientSession, plan: LoadPlan, token: str
) -> list[tuple[str, dict[str, Any]]]:
    """(vehicle id, params) pairs; without explicit params, each vehicle's first ECU."""
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(
        f"{plan.url}/api/v1/vehicles",
        params={"limit": str(plan.vehicles), "status": "connected"},
        headers=headers,
    ) as response:
        response.raise_for_status()
        vehicle_ids = [v["vehicle_id"] for v in await response.json()]
    if plan.command_params is not None:
        return [(vehicle_id, plan.command_params) for vehicle_id in vehicle_ids]
    targets = []
    for vehicle_id in vehicle_ids:
        async with session.get(f"{plan.url}/api/v1/vehicles/{vehicle_id}", headers=headers) as r:
            r.raise_for_status()
            ecus = (await r.json())["ecus"]
        targets.append((vehicle_id, {"ecuAddress": ecus[0]["ecu_address"]}))
    return targets


async def run_load(plan: LoadPlan) -> LoadReport:
    report = LoadReport()
    sent_at: dict[str, float] = {}
    early: dict[str, tuple[str, float]] = {}
    finished = asyncio.Event()
    sending_done = asyncio.Event()
    cpu_before = time.process_time()
    async with aiohttp.ClientSession() as session:
        token = await _login(session, plan)
        vehicles = await _targets(session, plan, token)
        if not vehicles:
            raise SystemExit("the server has no connected vehicles")
        ws_url = plan.url.replace("http", "ws", 1) + "/ws/fleet"
        feed = await session.ws_connect(
            ws_url, params={"token": token, "status": ",".join(sorted(TERMINAL))}, max_msg_size=0
        )
        pool = LeanPool(plan.url, plan.connections)
        await pool.open()

        outstanding = 0  # requests sent and not answered yet
        over = False  # the run has ended: closing connections answer what is left

        def check_finished() -> None:
            """Done once everything is sent, answered, and every accepted command ended."""
            if sending_done.is_set() and outstanding == 0 and not sent_at:
                finished.set()

        def settle(command_id: str, status: str, at: float) -> None:
            started = sent_at.pop(command_id, None)
            if started is None:
                early[command_id] = (status, at)
                return
            report.terminal[status] += 1
            report.completion_latencies_s.append(at - started)
            report.last_completion = at
            check_finished()

        async def watch() -> None:
            async for message in feed:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                event = orjson.loads(message.data)
                if event.get("status") in TERMINAL:
                    settle(event["command_id"], event["status"], time.perf_counter())

        def answered(status: int, body: bytes, started: float) -> None:
            nonlocal outstanding
            if over:
                return  # connections closing at the end are not the server's doing
            outstanding -= 1
            report.post_latencies_s.append(time.perf_counter() - started)
            if status == 0:
                report.errors["connection lost"] += 1
            elif status != 202:
                report.rejected[status] += 1
            else:
                report.accepted += 1
                command_id = orjson.loads(body)["command_id"]
                sent_at[command_id] = started
                if command_id in early:
                    settle(command_id, *early.pop(command_id))
            check_finished()

        requests = itertools.cycle(
            [
                post_request(
                    f"{pool.host}:{pool.port}",
                    "/api/v1/commands",
                    token,
                    orjson.dumps(
                        {
                            "vehicle_id": vehicle_id,
                            "command_name": plan.command_name,
                            "command_params": params,
                        }
                    ),
                )
                for vehicle_id, params in vehicles
            ]
        )
        watcher = asyncio.create_task(watch())
        tick_s = 0.001
        begin = time.perf_counter()
        report.first_send = begin
        total = int(plan.rate * plan.duration_s)
        for tick in itertools.count():
            due = min(total, int(plan.rate * tick * tick_s)) - report.sent
            for _ in range(max(0, due)):
                # open loop: each request counts from its scheduled time, not from when a
                # connection became free
                scheduled = begin + report.sent / plan.rate
                report.sent += 1
                outstanding += 1
                pool.request(next(requests), scheduled, answered)
            if report.sent >= total:
                break
            delay = begin + (tick + 1) * tick_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        sending_done.set()
        if outstanding or sent_at:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), plan.drain_s)
        watcher.cancel()
        over = True
        report.unanswered = outstanding
        await pool.close()
        await feed.close()
    report.cpu_s = time.process_time() - cpu_before
    return report
