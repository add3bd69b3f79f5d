"""Open-loop command load against a running server.

Commands are sent at a fixed rate whatever the server answers (open loop, so a slow server
shows up as latency instead of hiding behind a slower client), in the mix's proportions,
spread over the connected vehicles. Completion is observed on the fleet-wide WebSocket feed,
so no polling adds load; a share of the commands is also followed on its own stream."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
from collections.abc import Callable
from typing import Any, TextIO

import aiohttp
import orjson
from attrs import frozen

from loadtest.client import LeanPool, post_request
from loadtest.mix import CommandMix, MixError
from loadtest.report import TERMINAL, LoadReport

PROGRESS_EVERY_S = 1.0


class LoadtestError(Exception):
    """The run could not start: login refused, no connected vehicles."""


@frozen
class LoadPlan:
    url: str
    username: str
    password: str
    rate: float
    duration_s: float
    mix: CommandMix
    vehicles: int = 1000
    connections: int = 256
    drain_s: float = 15.0
    ws_fraction: float = 0.0


async def _login(session: aiohttp.ClientSession, plan: LoadPlan) -> str:
    async with session.post(
        f"{plan.url}/api/v1/auth/login",
        json={"username": plan.username, "password": plan.password},
    ) as response:
        if response.status != 200:
            raise LoadtestError(f"login failed: {response.status} {await response.text()}")
        token: str = (await response.json())["access_token"]
        return token


async def _check_commands(session: aiohttp.ClientSession, plan: LoadPlan, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{plan.url}/api/v1/command-types", headers=headers) as response:
        response.raise_for_status()
        known = {entry["name"] for entry in await response.json()}
    unknown = [name for name in plan.mix.names if name not in known]
    if unknown:
        raise MixError(
            f"the server has no command {', '.join(unknown)}; it has {', '.join(sorted(known))}"
        )


async def _targets(
    session: aiohttp.ClientSession, plan: LoadPlan, token: str
) -> list[tuple[str, str]]:
    """(vehicle id, address of its first ECU) of up to `plan.vehicles` connected vehicles."""
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(
        f"{plan.url}/api/v1/vehicles",
        params={"limit": str(plan.vehicles), "status": "connected"},
        headers=headers,
    ) as response:
        response.raise_for_status()
        vehicle_ids = [v["vehicle_id"] for v in await response.json()]
    targets = []
    for vehicle_id in vehicle_ids:
        async with session.get(f"{plan.url}/api/v1/vehicles/{vehicle_id}", headers=headers) as r:
            r.raise_for_status()
            ecus = (await r.json())["ecus"]
        targets.append((vehicle_id, ecus[0]["ecu_address"]))
    return targets


class RequestBook:
    """The prepared bytes of every (vehicle, command) pair, in sending order."""

    def __init__(self, pool: LeanPool, plan: LoadPlan, token: str, targets: list[tuple[str, str]]):
        self._host = f"{pool.host}:{pool.port}"
        self._plan = plan
        self._token = token
        self._targets = targets
        self._prepared: dict[tuple[int, str], bytes] = {}
        self._names = itertools.cycle(plan.mix.sequence())

    def next(self, index: int) -> tuple[str, bytes]:
        name = next(self._names)
        target = index % len(self._targets)
        request = self._prepared.get((target, name))
        if request is None:
            vehicle_id, ecu_address = self._targets[target]
            body = {
                "vehicle_id": vehicle_id,
                "command_name": name,
                "command_params": self._plan.mix.params_for(name, ecu_address),
            }
            request = post_request(self._host, "/api/v1/commands", self._token, orjson.dumps(body))
            self._prepared[(target, name)] = request
        return name, request


async def _follow_stream(
    session: aiohttp.ClientSession,
    ws_base: str,
    token: str,
    command_id: str,
    started: float,
    report: LoadReport,
) -> None:
    """One command's `/ws/responses/{id}`: its events counted, the time to its terminal
    event recorded."""
    report.streams_followed += 1
    try:
        async with session.ws_connect(
            f"{ws_base}/ws/responses/{command_id}", params={"token": token}
        ) as ws:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                report.stream_events += 1
                event = orjson.loads(message.data)
                if event.get("event") == "error" or event.get("status") in TERMINAL:
                    report.streams_completed += 1
                    report.stream_latencies_s.append(time.perf_counter() - started)
                    return
        report.stream_errors["closed before the terminal event"] += 1
    except aiohttp.ClientError as exc:
        report.stream_errors[type(exc).__name__] += 1


async def _show_progress(report: LoadReport, out: TextIO) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        print(report.progress_line(time.perf_counter()), file=out, flush=True)


async def run_load(plan: LoadPlan, progress: TextIO | None = None) -> LoadReport:
    """Runs the plan; with `progress`, a line on it each second."""
    report = LoadReport()
    cpu_before = time.process_time()
    async with aiohttp.ClientSession() as session:
        token = await _login(session, plan)
        await _check_commands(session, plan, token)
        vehicles = await _targets(session, plan, token)
        if not vehicles:
            raise LoadtestError("the server has no connected vehicles")
        ws_base = plan.url.replace("http", "ws", 1)
        feed = await session.ws_connect(
            ws_base + "/ws/fleet",
            # In arrays: under load a frame carries many completions, which spares both
            # processes a frame, a system call and a parse per command.
            params={"token": token, "status": ",".join(sorted(TERMINAL)), "batch": "true"},
            max_msg_size=0,
        )
        pool = LeanPool(plan.url, plan.connections)
        await pool.open()
        run = _LoadRun(plan, report, session, ws_base, token)
        watcher = asyncio.create_task(run.watch(feed))
        ticker = asyncio.create_task(_show_progress(report, progress)) if progress else None
        await run.send(pool, RequestBook(pool, plan, token, vehicles))
        await run.drain()
        watcher.cancel()
        if ticker is not None:
            ticker.cancel()
        run.end()
        await pool.close()
        await feed.close()
    report.cpu_s = time.process_time() - cpu_before
    return report


class _LoadRun:
    """One run's bookkeeping: what was sent and not answered yet, which accepted commands
    have not ended, and the streams being followed."""

    def __init__(
        self,
        plan: LoadPlan,
        report: LoadReport,
        session: aiohttp.ClientSession,
        ws_base: str,
        token: str,
    ) -> None:
        self._plan = plan
        self._report = report
        self._session = session
        self._ws_base = ws_base
        self._token = token
        self._follow = _follower(plan.ws_fraction)
        self._followers: set[asyncio.Task[None]] = set()
        # Accepted commands not ended yet, and ends heard of before their 202 was read.
        self._sent_at: dict[str, tuple[str, float]] = {}
        self._early: dict[str, tuple[str, float]] = {}
        self._outstanding = 0  # requests sent and not answered yet
        self._over = False  # the run has ended: closing connections answer what is left
        self._sending_done = asyncio.Event()
        self._finished = asyncio.Event()

    async def send(self, pool: LeanPool, book: RequestBook) -> None:
        """Sends at the plan's rate, in ticks of a millisecond. Open loop: each request counts
        from its scheduled time, not from when a connection became free."""
        plan, report = self._plan, self._report
        tick_s = 0.001
        begin = report.first_send = time.perf_counter()
        total = int(plan.rate * plan.duration_s)
        for tick in itertools.count():
            # Request k is due at k / rate: at this tick, every k <= rate * elapsed.
            due = min(total, int(plan.rate * tick * tick_s) + 1) - report.sent
            for _ in range(max(0, due)):
                scheduled = begin + report.sent / plan.rate
                name, request = book.next(report.sent)
                report.record_sent(name, scheduled)
                self._outstanding += 1
                pool.request(request, scheduled, functools.partial(self._answered, name))
            if report.sent >= total:
                break
            delay = begin + (tick + 1) * tick_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        self._sending_done.set()

    async def drain(self) -> None:
        """Waits up to the plan's drain time for the answers, the ends of the accepted
        commands and the followed streams."""
        drain_until = time.perf_counter() + self._plan.drain_s
        if self._outstanding or self._sent_at:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), self._plan.drain_s)
        if self._followers:
            timeout = max(0.0, drain_until - time.perf_counter())
            await asyncio.wait(self._followers, timeout=timeout)
            for task in self._followers:
                task.cancel()

    def end(self) -> None:
        self._over = True
        self._report.unanswered = self._outstanding

    async def watch(self, feed: aiohttp.ClientWebSocketResponse) -> None:
        """The fleet feed: every command that ends."""
        async for message in feed:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            received = orjson.loads(message.data)
            now = time.perf_counter()
            for event in received if isinstance(received, list) else (received,):
                if event.get("status") in TERMINAL:
                    self._settle(event["command_id"], event["status"], now)

    def _answered(self, name: str, status: int, body: bytes, started: float) -> None:
        if self._over:
            return  # connections closing at the end are not the server's doing
        self._outstanding -= 1
        self._report.record_answer(name, status, started, time.perf_counter())
        if status == 202:
            command_id = orjson.loads(body)["command_id"]
            self._sent_at[command_id] = (name, started)
            if self._follow():
                self._follow_stream(command_id, started)
            if command_id in self._early:
                self._settle(command_id, *self._early.pop(command_id))
        self._check_finished()

    def _follow_stream(self, command_id: str, started: float) -> None:
        task = asyncio.create_task(
            _follow_stream(
                self._session, self._ws_base, self._token, command_id, started, self._report
            )
        )
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    def _settle(self, command_id: str, status: str, at: float) -> None:
        known = self._sent_at.pop(command_id, None)
        if known is None:
            self._early[command_id] = (status, at)
            return
        name, started = known
        self._report.record_terminal(name, status, started, at)
        self._check_finished()

    def _check_finished(self) -> None:
        """Done once everything is sent, answered, and every accepted command ended."""
        if self._sending_done.is_set() and self._outstanding == 0 and not self._sent_at:
            self._finished.set()


def _follower(fraction: float) -> Callable[[], bool]:
    """True for `fraction` of the calls, evenly spread (0.25: every fourth)."""
    count = 0

    def follow() -> bool:
        nonlocal count
        count += 1
        return int(count * fraction) > int((count - 1) * fraction)

    return follow


def describe_plan(plan: LoadPlan) -> dict[str, Any]:
    return {
        "url": plan.url,
        "rate": plan.rate,
        "duration_s": plan.duration_s,
        "mix": dict(plan.mix.weights),
        "params": dict(plan.mix.params) if plan.mix.params is not None else None,
        "vehicles": plan.vehicles,
        "connections": plan.connections,
        "ws_fraction": plan.ws_fraction,
    }
