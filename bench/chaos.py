"""Chaos run (SPEC §6, "nothing lost"): `sovd-sim serve` as a process on a PostgreSQL cluster
and a Redis server of its own, under steady command load, while the server is killed with
SIGKILL, Redis is restarted and PostgreSQL is restarted, each many times at random moments.

Then it checks, and prints: every accepted command (every 202) is terminal in PostgreSQL
(none lost, none stuck), no command ran twice, every WebSocket follower got each followed
command's result exactly once, and every answer was 2xx, 401, 429 or 503 with Retry-After.

    .venv/bin/python bench/chaos.py [--duration 300] [--rate 200] [--vehicles 500]
        [--server-kills 10] [--redis-restarts 10] [--postgres-restarts 10] [--seed 1]

Needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin, or PG_BINDIR) and
`redis-server`; as root, PostgreSQL runs as the `postgres` OS user (`runuser`). Only its own
services are restarted: a cluster initialised in a temporary directory and a Redis child
process, both on free ports, removed at the end. Exit code 0 when every check holds."""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import math
import os
import pwd
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from aiohttp import WSCloseCode

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "chaos-admin-password"
SECRET = "chaos-secret-" + "c" * 40
DATABASE = "sovd_chaos"
TERMINAL = frozenset({"completed", "failed", "timed_out"})
# The commands that change a vehicle's state: running one twice would show.
STATE_CHANGING = frozenset({"ClearDTC", "DiagnosticSessionControl", "WriteDataByID", "ECUReset"})
# Followed on their stream whatever the share: they run long enough to be cut off.
ALWAYS_FOLLOWED = frozenset({"RoutineControl"})
WS_ROUTE = "WS /ws/responses/{id}"
FAULTS = ("server_kill", "redis_restart", "postgres_restart")
# How long an answer may take once the request is sent (time waiting for one of the
# client's connections is not counted: that is the load generator's queue).
REQUEST_TIMEOUT_S = 30.0
# After a fault, commands must be accepted again (a 202) within this long.
RECOVERY_LIMIT_S = 30.0
# A request that fails without an answer is the kill's doing when it overlaps the time the
# server was down, give or take this much (a pooled connection is found dead on first use).
NO_ANSWER_GRACE_S = 2.0
SHOWN_PER_PROBLEM = 5

FLEET_TOML = """\
# The chaos run's fleet: one model, every vehicle connected, no simulated failures.
[simulation]
seed = {seed}
command_deadline_s = 30

[simulation.latency]
distribution = "uniform"
min_ms = {low_ms}
max_ms = {high_ms}

[[fleets]]
name = "chaos"
count = {count}
profile = "vw-golf"
"""

Progress = Callable[[str], None]
Step = tuple[str, dict[str, Any]]
# One job is one or more commands sent in turn to one vehicle, each after the one before
# was accepted. The cycle is 10 jobs, 11 commands: 6 reads, 4 that change state and a
# self-test that streams its progress for about four seconds, long enough for a fault to
# strike it midway.
JOB_CYCLE: tuple[tuple[Step, ...], ...] = (
    (("ReadDTC", {}),),
    (("ReadDataByID", {"dataId": "0xF190"}),),
    (("ClearDTC", {}),),
    (("ReadDTC", {}),),
    (
        ("DiagnosticSessionControl", {"session": "extended"}),
        ("WriteDataByID", {"dataId": "0xF198"}),  # a repair shop code; the value varies
    ),
    (("ReadDataByID", {"dataId": "0xF190"}),),
    (("RoutineControl", {"routineId": "0x0203"}),),
    (("ECUReset", {"resetType": "softReset"}),),
    (("ReadDTC", {}),),
    (("ReadDataByID", {"dataId": "0xF190"}),),
)


class ChaosSetupError(Exception):
    """A service of the run could not be started; the message says which and why."""


@dataclass(frozen=True)
class ChaosPlan:
    duration_s: float = 300.0
    rate: float = 200.0  # commands per second, open loop
    vehicles: int = 500
    server_kills: int = 10
    redis_restarts: int = 10
    postgres_restarts: int = 10
    seed: int = 1
    follow_share: float = 0.1  # accepted commands also followed on /ws/responses/{id}
    read_share: float = 0.1  # API reads (GET) per command sent
    latency_ms: tuple[int, int] = (2, 8)
    settle_s: float = 60.0  # how long commands may take to end after the load stops
    quiet_s: float = 5.0  # no fault in the first and last seconds of the load

    def fault_counts(self) -> dict[str, int]:
        return {
            "server_kill": self.server_kills,
            "redis_restart": self.redis_restarts,
            "postgres_restart": self.postgres_restarts,
        }


def fault_schedule(plan: ChaosPlan) -> list[tuple[float, str]]:
    """(seconds into the load, fault) at random moments, the same for the same seed."""
    rng = random.Random(plan.seed)
    first = min(plan.quiet_s, plan.duration_s / 4)
    last = max(first, plan.duration_s - first)
    kinds = [kind for kind, count in plan.fault_counts().items() for _ in range(count)]
    return sorted((rng.uniform(first, last), kind) for kind in kinds)


# Tools ---------------------------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """PG_BINDIR when set, else the newest /usr/lib/postgresql/*/bin; None unless it has
    initdb and pg_ctl."""
    given = os.environ.get("PG_BINDIR")
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key)
    candidates = [Path(given)] if given else installed[::-1]
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    return None


def _version_key(bindir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))


def _running_as_root() -> bool:
    return os.geteuid() == 0


def missing_tools() -> list[str]:
    """What the run needs and this machine lacks, in words."""
    missing = []
    if postgres_bindir() is None:
        missing.append("PostgreSQL server binaries (initdb, pg_ctl; set PG_BINDIR)")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if _running_as_root():
        if shutil.which("runuser") is None:
            missing.append("runuser (PostgreSQL refuses to run as root)")
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing.append("the postgres OS user (PostgreSQL refuses to run as root)")
    return missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_tool(*args: str, env: dict[str, str] | None = None, timeout_s: float = 120.0) -> str:
    process = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ChaosSetupError(f"{args[0]} took longer than {timeout_s:.0f} s") from None
    text = out.decode(errors="replace")
    if process.returncode != 0:
        raise ChaosSetupError(f"{' '.join(args)} exited {process.returncode}:\n{text}")
    return text


# Services ------------------------------------------------------------------------------------


class PostgresCluster:
    """A cluster of our own in a temporary directory; as root it runs as the postgres user."""

    def __init__(self, bindir: Path, workdir: Path) -> None:
        self.bindir = bindir
        self.workdir = workdir
        self.data = workdir / "pgdata"
        self.log = workdir / "postgres.log"
        self.port = free_port()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bindir / tool), *args]
        return ["runuser", "-u", "postgres", "--", *command] if _running_as_root() else command

    def _options(self) -> str:
        return (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.workdir} -c max_connections=100"
        )

    async def start(self) -> None:
        await run_tool(
            *self._as_owner(
                "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                "--no-sync",
            )
        )  # fmt: skip
        await self._pg_ctl("start")

    async def restart(self) -> None:
        """A fast restart: every session ends (FATAL 57P01), then connections are refused
        until the server is back."""
        await self._pg_ctl("restart", "-m", "fast")

    async def stop(self) -> None:
        with contextlib.suppress(ChaosSetupError):
            await self._pg_ctl("stop", "-m", "immediate")

    async def _pg_ctl(self, action: str, *args: str) -> None:
        await run_tool(
            *self._as_owner(
                "pg_ctl", action, "-D", str(self.data), "-w", "-t", "60", "-l", str(self.log),
                "-o", self._options(), *args,
            )
        )  # fmt: skip


class RedisServer:
    """`redis-server` as our child process on a free port, nothing saved."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log = workdir / "redis.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                stdout=log, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 15
        while not await self._answers_ping():
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise ChaosSetupError(f"redis-server did not start; see {self.log}")
            await asyncio.sleep(0.05)

    async def _answers_ping(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            return await asyncio.wait_for(reader.readline(), 2) == b"+PONG\r\n"
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class SovdServer:
    """`sovd-sim serve` on one port, started anew after each kill. Keeps the error-level log
    events of every process it started."""

    def __init__(self, port: int, env: dict[str, str], fleet_file: Path) -> None:
        self.port = port
        self.env = env
        self.fleet_file = fleet_file
        self.process: asyncio.subprocess.Process | None = None
        self.errors: list[dict[str, Any]] = []
        self.starts = 0
        self.recovered = Counter[str]()
        self._tail: deque[str] = deque(maxlen=40)
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 90.0) -> None:
        started = asyncio.get_running_loop().create_future()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "serve", "--port", str(self.port),
            "--fleet", str(self.fleet_file),
            cwd=ROOT, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read(self.process, started))
        try:
            await asyncio.wait_for(started, timeout_s)
        except (TimeoutError, ChaosSetupError) as exc:
            await self.kill()
            tail = "\n".join(self._tail)
            raise ChaosSetupError(f"sovd-sim serve did not start ({exc}):\n{tail}") from None
        self.starts += 1

    async def _read(
        self, process: asyncio.subprocess.Process, started: asyncio.Future[None]
    ) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self._tail.append(line)
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(event, dict):
                continue
            name = event.get("event")
            if name == "server_started" and not started.done():
                started.set_result(None)
            elif name == "unfinished_commands_recovered":
                self.recovered["resumed"] += int(event.get("resumed", 0))
                self.recovered["failed"] += int(event.get("failed", 0))
            if event.get("level") in ("error", "critical"):
                self.errors.append(event)
        if not started.done():
            started.set_exception(ChaosSetupError(f"it exited with {await process.wait()}"))

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; whatever was not committed is gone."""
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        if self._reader is not None:
            await self._reader

    async def stop(self) -> int:
        """SIGTERM and the exit code (0 for a clean shutdown)."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.process.wait(), 60)
        except TimeoutError:
            await self.kill()
            code = -9
        if self._reader is not None:
            await self._reader
        return code


# Traffic -------------------------------------------------------------------------------------


@dataclass
class Follow:
    """What one client following one command on /ws/responses/{id} received."""

    command_id: str
    connections: int = 0
    sequences: list[int] = field(default_factory=list)  # across connections, first sightings
    duplicates_in_connection: int = 0
    terminal_events: int = 0
    terminal_status: str | None = None
    events_after_terminal: int = 0
    close_codes: Counter[int | None] = field(default_factory=Counter)
    refused: Counter[int] = field(default_factory=Counter)  # handshake answers other than 101
    connect_errors: int = 0

    @property
    def reconnected(self) -> bool:
        return self.connections > 1


@dataclass
class Tally:
    """Every answer the load got, by status, and what went wrong."""

    statuses: Counter[int] = field(default_factory=Counter)
    by_request: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    no_retry_after: list[str] = field(default_factory=list)
    # (monotonic start, end, request, error) of requests that got no answer
    no_answer: list[tuple[float, float, str, str]] = field(default_factory=list)
    # (monotonic start, end, close code, error) of streams that ended other than with 1000
    ws_drops: list[tuple[float, float, int | None, str | None]] = field(default_factory=list)
    sent_commands: int = 0
    accepted: dict[str, str] = field(default_factory=dict)  # command id -> name
    accepted_at: list[float] = field(default_factory=list)  # monotonic, of each 202
    followed: dict[str, Follow] = field(default_factory=dict)


def _failure(exc: BaseException) -> str:
    """`timeout` for a request sent and not answered in time, else the error's name."""
    return "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__


def acceptable(status: int) -> bool:
    """2xx (101 for a WebSocket upgrade), 401, 429 or 503: what faults may cause."""
    return 200 <= status < 300 or status in (101, 401, 429, 503)


class Traffic:
    """Open-loop commands at a fixed rate over the fleet, some API reads, and WebSocket
    clients following a share of the accepted commands (reconnecting until the end)."""

    def __init__(self, url: str, plan: ChaosPlan) -> None:
        self.url = url
        self.ws_url = url.replace("http", "ws", 1)
        self.plan = plan
        self.tally = Tally()
        self.token = ""
        self.vehicles: list[tuple[str, str]] = []  # (vehicle id, first ECU's address)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._followers: set[asyncio.Task[None]] = set()
        self._recent: deque[str] = deque(maxlen=200)
        self._writes = itertools.count()
        self._offered = 0

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None
        return self._session

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=400),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=REQUEST_TIMEOUT_S),
        )
        async with self.session.post(
            f"{self.url}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
        ) as response:
            if response.status != 200:
                raise ChaosSetupError(f"login: {response.status} {await response.text()}")
            self.token = (await response.json())["access_token"]
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        async with self.session.get(
            f"{self.url}/api/v1/vehicles", params={"limit": str(self.plan.vehicles)}
        ) as response:
            vehicle_ids = [v["vehicle_id"] for v in await response.json()]
        for vehicle_id in vehicle_ids:
            async with self.session.get(f"{self.url}/api/v1/vehicles/{vehicle_id}") as response:
                ecus = (await response.json())["ecus"]
            self.vehicles.append((vehicle_id, ecus[0]["ecu_address"]))
        if not self.vehicles:
            raise ChaosSetupError("the server has no vehicles")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def drive(self, duration_s: float) -> None:
        """Sends for `duration_s`; returns once every request sent has its answer."""
        loop = asyncio.get_running_loop()
        begin = loop.time()
        jobs = itertools.count()
        scheduled = reads = 0
        read_rate = self.plan.rate * self.plan.read_share
        while (elapsed := loop.time() - begin) < duration_s:
            while scheduled < int(elapsed * self.plan.rate):
                vehicle, job = self._assign(next(jobs))
                scheduled += len(job)
                self._spawn(self._run_job(vehicle, job))
            while reads < int(elapsed * read_rate):
                reads += 1
                self._spawn(self._read(reads))
            await asyncio.sleep(0.01)
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def _assign(self, index: int) -> tuple[tuple[str, str], tuple[Step, ...]]:
        """The `index`th job and its vehicle: the fleet in turn, and each round over it one
        job further along the cycle, so every vehicle gets every kind of job (were the
        cycle's length to divide the fleet's, a vehicle would get the same job forever)."""
        rounds, position = divmod(index, len(self.vehicles))
        return self.vehicles[position], JOB_CYCLE[(index + rounds) % len(JOB_CYCLE)]

    async def settle_followers(self, timeout_s: float) -> None:
        """Lets the followers finish; those still waiting after `timeout_s` are stopped."""
        if self._followers:
            await asyncio.wait(set(self._followers), timeout=timeout_s)
        for task in list(self._followers):
            task.cancel()
        if self._followers:
            await asyncio.wait(set(self._followers))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_job(self, vehicle: tuple[str, str], job: Sequence[Step]) -> None:
        vehicle_id, ecu_address = vehicle
        for name, extra in job:
            params = {"ecuAddress": ecu_address, **extra}
            if name == "WriteDataByID":
                params["value"] = f"CHAOS{next(self._writes) % 100_000:05d}"
            command_id = await self._post_command(vehicle_id, name, params)
            if command_id is None:
                return  # the next step needs this one queued before it

    async def _post_command(self, vehicle_id: str, name: str, params: dict[str, Any]) -> str | None:
        body = {"vehicle_id": vehicle_id, "command_name": name, "command_params": params}
        self.tally.sent_commands += 1
        answer = await self._request("POST", "/api/v1/commands", body)
        if answer is None or answer[0] != 202:
            return None
        command_id: str = orjson.loads(answer[1])["command_id"]
        self.tally.accepted[command_id] = name
        self.tally.accepted_at.append(time.monotonic())
        self._recent.append(command_id)
        if name in ALWAYS_FOLLOWED or self._follow_next():
            follow = self.tally.followed[command_id] = Follow(command_id)
            task = asyncio.create_task(self._follow(follow))
            self._followers.add(task)
            task.add_done_callback(self._followers.discard)
        return command_id

    def _follow_next(self) -> bool:
        """True for `follow_share` of the calls, evenly spread."""
        self._offered += 1
        share = self.plan.follow_share
        return int(self._offered * share) > int((self._offered - 1) * share)

    async def _read(self, index: int) -> None:
        vehicle_id, _ = self.vehicles[index % len(self.vehicles)]
        if index % 3 == 0 and self._recent:
            path = f"/api/v1/commands/{self._recent[-1]}"
        elif index % 3 == 1:
            path = f"/api/v1/vehicles/{vehicle_id}/status"
        else:
            path = f"/api/v1/commands?vehicle_id={vehicle_id}&limit=5"
        await self._request("GET", path)

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, bytes] | None:
        """(status, body), or None when no answer came; every outcome is tallied."""
        route = f"{method} {re.sub(r'[0-9a-f-]{36}', '{id}', path.split('?')[0])}"
        started = time.monotonic()
        try:
            async with self.session.request(method, self.url + path, json=body) as response:
                data = await response.read()
                self._tally(route, response.status, response.headers.get("Retry-After"), data)
                return response.status, data
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.tally.no_answer.append((started, time.monotonic(), route, _failure(exc)))
            return None

    def _tally(self, route: str, status: int, retry_after: str | None, body: bytes) -> None:
        self.tally.statuses[status] += 1
        self.tally.by_request[(route, status)] += 1
        if not acceptable(status):
            self.tally.unexpected.append(f"{route}: {status} {body[:300]!r}")
        elif status == 503 and not retry_after:
            self.tally.no_retry_after.append(f"{route}: {body[:300]!r}")

    async def _follow(self, follow: Follow) -> None:
        """Follows one command until its terminal event, reconnecting after every drop; a
        new connection starts over from what the server has stored, so sequence numbers
        already seen are not counted twice."""
        backoff = 0.1
        url = f"{self.ws_url}/ws/responses/{follow.command_id}"
        while follow.terminal_status is None:
            started = time.monotonic()
            try:
                async with self.session.ws_connect(url, params={"token": self.token}) as ws:
                    follow.connections += 1
                    self._tally(WS_ROUTE, 101, None, b"")
                    error = await self._receive(follow, ws)
                    follow.close_codes[ws.close_code] += 1
                    if error is not None or ws.close_code != WSCloseCode.OK:
                        drop = (started, time.monotonic(), ws.close_code, error)
                        self.tally.ws_drops.append(drop)
                    backoff = 0.1
            except aiohttp.WSServerHandshakeError as exc:
                follow.refused[exc.status] += 1
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                self._tally(WS_ROUTE, exc.status, retry_after, exc.message.encode())
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                follow.connect_errors += 1
                ended = time.monotonic()
                self.tally.no_answer.append((started, ended, WS_ROUTE, _failure(exc)))
            if follow.terminal_status is None:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    @staticmethod
    async def _receive(follow: Follow, ws: aiohttp.ClientWebSocketResponse) -> str | None:
        """Reads one connection to its end; what broke it, if it was not a close frame."""
        last = 0
        async for message in ws:
            if message.type == aiohttp.WSMsgType.ERROR:
                return repr(message.data)
            if message.type != aiohttp.WSMsgType.TEXT:
                return None
            event = orjson.loads(message.data)
            if follow.terminal_status is not None:
                follow.events_after_terminal += 1
            elif event["event"] == "response":
                sequence = event["sequence_number"]
                if sequence <= last:
                    follow.duplicates_in_connection += 1
                last = max(last, sequence)
                if sequence not in follow.sequences:
                    follow.sequences.append(sequence)
            elif event["event"] == "error" or event.get("status") in TERMINAL:
                follow.terminal_events += 1
                follow.terminal_status = event["status"]
        return None


# The run -------------------------------------------------------------------------------------


@dataclass
class Injected:
    kind: str
    at_s: float  # seconds into the load
    took_s: float  # until the service was back (the server: until it logged server_started)
    ended: float  # monotonic, when it was back
    # From then until the next 202; None when the load ended or the next fault struck first.
    accepting_after_s: float | None = None


@dataclass
class ChaosReport:
    plan: ChaosPlan
    tally: Tally
    faults: list[Injected]
    stored: dict[str, tuple[str, str, str | None]]  # accepted id -> (name, status, error)
    terminal_by_status: Counter[str]
    failure_reasons: Counter[str]
    unfinished_rows: int
    executions_over_one: dict[str, int]  # command id -> terminal audit entries, when > 1
    finals_over_one: dict[str, int]  # command id -> is_final responses, when > 1
    stored_sequences: dict[str, list[int]]  # followed command id -> its responses
    server_errors: Counter[str]
    recovered: Counter[str]
    server_exit_code: int
    unexpected_no_answer: list[str]
    timed_out: int
    unexpected_ws_ends: list[str]
    problems: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Fills `problems`: one line per failed check."""
        accepted = self.tally.accepted
        lost = [cid for cid in accepted if cid not in self.stored]
        stuck = [cid for cid, (_, status, _) in self.stored.items() if status not in TERMINAL]
        twice = [cid for cid in self.executions_over_one if accepted.get(cid) in STATE_CHANGING]
        self._expect(lost, "accepted commands lost (202 but no row in PostgreSQL)")
        self._expect(stuck, "accepted commands not terminal after the wait")
        self._expect(
            [f"{n} unfinished" for n in [self.unfinished_rows] if n],
            "commands in PostgreSQL still pending or in_progress (accepted or not)",
        )
        self._expect(twice, "state-changing commands that ran more than once")
        self._expect(
            [cid for cid in self.executions_over_one if cid not in twice],
            "other commands that ran more than once",
        )
        self._expect(list(self.finals_over_one), "commands with more than one final response")
        self._expect(
            [f"{event} {n}" for event, n in self.server_errors.most_common()],
            "kinds of error logged by the server",
        )
        self._expect(self.tally.unexpected, "answers other than 2xx, 401, 429, 503")
        self._expect(self.tally.no_retry_after, "503 answers without Retry-After")
        self._expect(
            self.unexpected_no_answer, "connections refused or dropped while the server was up"
        )
        self._expect(
            [
                f"{f.kind} at {f.at_s:.1f} s: {f.accepting_after_s:.1f} s"
                for f in self.faults
                if f.accepting_after_s is not None and f.accepting_after_s > RECOVERY_LIMIT_S
            ],
            f"faults after which no command was accepted for {RECOVERY_LIMIT_S:.0f} s",
        )
        self._expect(
            self.unexpected_ws_ends,
            "WebSocket streams broken other than by a kill or a 1013 close",
        )
        self._expect(self._follow_problems(), "WebSocket followers that did not get the result")
        for kind, wanted in self.plan.fault_counts().items():
            done = sum(1 for fault in self.faults if fault.kind == kind)
            if done != wanted:
                self.problems.append(f"{kind}: injected {done} of {wanted}")
        if self.server_exit_code != 0:
            self.problems.append(f"the last server exited {self.server_exit_code} on SIGTERM")

    def _expect(self, found: Sequence[str], what: str) -> None:
        if found:
            shown = "; ".join(found[:SHOWN_PER_PROBLEM])
            self.problems.append(f"{len(found)} {what}: {shown}")

    def _follow_problems(self) -> list[str]:
        problems = []
        for cid, follow in self.tally.followed.items():
            status = self.stored.get(cid, ("", "(no row)", None))[1]
            expected = self.stored_sequences.get(cid, [])
            if follow.terminal_status is None:
                problems.append(f"{cid}: no terminal event (stored: {status})")
            elif follow.terminal_events != 1 or follow.events_after_terminal:
                problems.append(f"{cid}: {follow.terminal_events} terminal events")
            elif follow.duplicates_in_connection:
                problems.append(f"{cid}: a response twice on one connection")
            elif follow.terminal_status != status:
                problems.append(f"{cid}: heard {follow.terminal_status}, stored {status}")
            elif sorted(follow.sequences) != expected:
                problems.append(f"{cid}: responses {follow.sequences}, stored {expected}")
        return problems

    def lines(self) -> list[str]:
        tally, plan = self.tally, self.plan
        out = [
            f"chaos run: {plan.duration_s:.0f} s at {plan.rate:.0f} commands/s over "
            f"{plan.vehicles} vehicles, seed {plan.seed}",
            "faults injected: " + ", ".join(self._fault_summary(kind) for kind in FAULTS),
            f"commands: sent {tally.sent_commands}, accepted {len(tally.accepted)}"
            f" ({sum(1 for n in tally.accepted.values() if n in STATE_CHANGING)} state-changing)",
            "answers by status: "
            + ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items())),
            "  503 by request: "
            + _listing(
                (route, n)
                for (route, status), n in sorted(tally.by_request.items())
                if status == 503
            ),
            f"requests without an answer: {len(tally.no_answer)}, of which"
            f" {len(self.unexpected_no_answer)} refused or dropped while the server was up and"
            f" {self.timed_out} sent but unanswered for {REQUEST_TIMEOUT_S:.0f} s",
            f"WebSocket streams that ended other than with 1000: {len(tally.ws_drops)}"
            f" ({len(self.unexpected_ws_ends)} not by a kill nor with 1013)",
            "accepted commands in PostgreSQL: "
            + _listing(sorted(self.terminal_by_status.items()))
            + f"; lost {sum(1 for cid in tally.accepted if cid not in self.stored)}"
            + f"; not terminal {sum(1 for _, s, _ in self.stored.values() if s not in TERMINAL)}",
            "  why not completed: " + _listing(self.failure_reasons.most_common(6)),
            f"  recovered at start-up: resumed {self.recovered['resumed']},"
            f" failed {self.recovered['failed']}",
            f"commands that ran more than once: {len(self.executions_over_one)};"
            f" with more than one final response: {len(self.finals_over_one)}",
            self._follower_summary(),
            "server error log events: " + _listing(self.server_errors.most_common()),
            f"last server stopped with exit code {self.server_exit_code}",
        ]
        if self.problems:
            out.append("FAILED:")
            out += [f"  {problem}" for problem in self.problems]
        else:
            out.append("all checks passed")
        return out

    def _fault_summary(self, kind: str) -> str:
        faults = [fault for fault in self.faults if fault.kind == kind]
        took = max((fault.took_s for fault in faults), default=0.0)
        accepting = [f.accepting_after_s for f in faults if f.accepting_after_s is not None]
        return (
            f"{kind} {len(faults)} (back within {took:.2f} s,"
            f" accepting commands {max(accepting, default=0.0):.2f} s after that)"
        )

    def _follower_summary(self) -> str:
        followed = self.tally.followed.values()
        refused: Counter[int] = sum((f.refused for f in followed), Counter())
        closes: Counter[int | None] = sum((f.close_codes for f in followed), Counter())
        return (
            f"WebSocket followers: {len(followed)},"
            f" reconnected {sum(1 for f in followed if f.reconnected)},"
            f" got the result exactly once {self._followers_ok()};"
            f" handshakes refused: {_listing(sorted(refused.items()))};"
            f" close codes: {_listing(sorted(closes.items(), key=lambda item: item[0] or 0))}"
        )

    def _followers_ok(self) -> int:
        bad = {line.split(":", 1)[0] for line in self._follow_problems()}
        return sum(1 for cid in self.tally.followed if cid not in bad)


def _listing(counts: Any) -> str:
    """`a 3, b 1` from (key, count) pairs; `none` for none."""
    return ", ".join(f"{_plain(key)} {n}" for key, n in counts) or "none"


def _plain(key: object) -> str:
    return str(int(key)) if isinstance(key, int) else str(key)


def server_env(cluster: PostgresCluster, redis: RedisServer) -> dict[str, str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SOVD_") and name not in ("DATABASE_URL", "REDIS_URL", "JWT_SECRET")
    }
    return {
        **inherited,
        "DATABASE_URL": cluster.dsn(DATABASE),
        "REDIS_URL": redis.url,
        "JWT_SECRET": SECRET,
        "SOVD_ADMIN_PASSWORD": PASSWORD,
        "SOVD_ACCESS_TTL_S": "86400",
        "SOVD_LOG_FORMAT": "json",
    }


async def run_chaos(plan: ChaosPlan, say: Progress = print) -> ChaosReport:
    """Sets up the services, runs load and faults, checks, tears down; `say` gets progress."""
    bindir = postgres_bindir()
    missing = missing_tools()
    if missing or bindir is None:
        raise ChaosSetupError("missing: " + ", ".join(missing))
    workdir = Path(tempfile.mkdtemp(prefix="sovd-chaos-"))
    if _running_as_root():
        owner = pwd.getpwnam("postgres")
        os.chown(workdir, owner.pw_uid, owner.pw_gid)
    cluster = PostgresCluster(bindir, workdir)
    redis = RedisServer(workdir)
    server: SovdServer | None = None
    traffic: Traffic | None = None
    try:
        await cluster.start()
        await redis.start()
        admin = await asyncpg.connect(cluster.dsn())
        await admin.execute(f"CREATE DATABASE {DATABASE}")
        await admin.close()
        env = server_env(cluster, redis)
        await run_tool(sys.executable, "-m", "cli", "db", "migrate", env=env)
        fleet_file = workdir / "fleet.toml"
        low_ms, high_ms = plan.latency_ms
        fleet_file.write_text(
            FLEET_TOML.format(seed=plan.seed, low_ms=low_ms, high_ms=high_ms, count=plan.vehicles)
        )
        server = SovdServer(free_port(), env, fleet_file)
        await server.start()
        say(
            f"services up: server {server.url}, PostgreSQL {cluster.port}, Redis {redis.port}"
            f" (in {workdir})"
        )
        traffic = Traffic(server.url, plan)
        await traffic.open()
        faults, down = await _load_with_faults(plan, traffic, server, cluster, redis, say)
        say("load stopped; waiting for commands and followers to finish")
        report = await _settle_and_check(plan, traffic, server, cluster, faults, down)
        return report
    finally:
        if traffic is not None:
            await traffic.close()
        if server is not None:
            await server.kill()
        await redis.stop()
        await cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def _load_with_faults(
    plan: ChaosPlan,
    traffic: Traffic,
    server: SovdServer,
    cluster: PostgresCluster,
    redis: RedisServer,
    say: Progress,
) -> tuple[list[Injected], list[tuple[float, float]]]:
    """Runs the load and, beside it, each fault at its moment, one after another."""
    loop = asyncio.get_running_loop()
    schedule = fault_schedule(plan)
    faults: list[Injected] = []
    down: list[tuple[float, float]] = []  # monotonic (killed, back) of each server kill
    begin = loop.time()
    load = asyncio.create_task(traffic.drive(plan.duration_s))
    try:
        for at_s, kind in schedule:
            await asyncio.sleep(max(0.0, begin + at_s - loop.time()))
            started = time.monotonic()
            if kind == "server_kill":
                await server.kill()
                await server.start()
                down.append((started, time.monotonic()))
            elif kind == "redis_restart":
                await redis.restart()
            else:
                await cluster.restart()
            ended = time.monotonic()
            fault = Injected(kind, started - begin, ended - started, ended)
            faults.append(fault)
            say(f"  {fault.at_s:7.2f} s  {kind:<17} back in {fault.took_s:.2f} s")
        await load
    finally:
        if not load.done():
            load.cancel()
    return faults, down


async def _settle_and_check(
    plan: ChaosPlan,
    traffic: Traffic,
    server: SovdServer,
    cluster: PostgresCluster,
    faults: list[Injected],
    down: list[tuple[float, float]],
) -> ChaosReport:
    tally = traffic.tally
    ids = list(tally.accepted)
    db = await asyncpg.connect(cluster.dsn(DATABASE))
    try:
        deadline = time.monotonic() + plan.settle_s
        while time.monotonic() < deadline:
            open_count = await db.fetchval(COUNT_UNFINISHED, ids)
            if open_count == 0:
                break
            await asyncio.sleep(0.5)
        await traffic.settle_followers(max(1.0, deadline - time.monotonic()))
        rows = await db.fetch(ACCEPTED_ROWS, ids)
        unfinished_rows = await db.fetchval(ALL_UNFINISHED)
        executions = await db.fetch(EXECUTIONS_OVER_ONE)
        finals = await db.fetch(FINALS_OVER_ONE)
        sequences = await db.fetch(SEQUENCES, list(tally.followed))
    finally:
        await db.close()
    stored = {
        str(row["command_id"]): (row["command_name"], row["status"], row["error_message"])
        for row in rows
    }
    exit_code = await server.stop()
    accepted_at = sorted(tally.accepted_at)
    next_starts = [fault.ended - fault.took_s for fault in faults[1:]] + [math.inf]
    for fault, next_start in zip(faults, next_starts, strict=True):
        following = bisect.bisect_left(accepted_at, fault.ended)
        if following < len(accepted_at) and accepted_at[following] < next_start:
            fault.accepting_after_s = accepted_at[following] - fault.ended
    report = ChaosReport(
        plan=plan,
        tally=tally,
        faults=faults,
        stored=stored,
        terminal_by_status=Counter(status for _, status, _ in stored.values()),
        failure_reasons=Counter(
            _reason(error) for _, status, error in stored.values() if status != "completed"
        ),
        unfinished_rows=unfinished_rows,
        executions_over_one={str(r["command_id"]): r["n"] for r in executions},
        finals_over_one={str(r["command_id"]): r["n"] for r in finals},
        stored_sequences={str(r["command_id"]): list(r["sequences"]) for r in sequences},
        server_errors=Counter(str(e.get("event")) for e in server.errors),
        recovered=server.recovered,
        server_exit_code=exit_code,
        unexpected_no_answer=[
            f"{route} {error}"
            for started, ended, route, error in tally.no_answer
            if error != "timeout" and not _while_down(started, ended, down)
        ],
        timed_out=sum(1 for *_, error in tally.no_answer if error == "timeout"),
        unexpected_ws_ends=[
            f"close code {code}" + (f", {error}" if error else "")
            for started, ended, code, error in tally.ws_drops
            if error is not None
            or not (
                code == WSCloseCode.TRY_AGAIN_LATER
                or (code == WSCloseCode.ABNORMAL_CLOSURE and _while_down(started, ended, down))
            )
        ],
    )
    report.check()
    return report


def _while_down(started: float, ended: float, down: list[tuple[float, float]]) -> bool:
    """Whether a request or stream from `started` to `ended` overlapped a server kill."""
    return any(ended >= killed and started <= back + NO_ANSWER_GRACE_S for killed, back in down)


def _reason(error: str | None) -> str:
    """An error message without its ids and numbers, so alike failures count together."""
    return re.sub(r"[0-9a-f-]{36}|\d+(\.\d+)?", "#", error or "(none)")[:80]


COUNT_UNFINISHED = """
SELECT count(*) FROM commands
WHERE command_id = ANY($1::uuid[]) AND status IN ('pending', 'in_progress')
"""
ACCEPTED_ROWS = """
SELECT command_id, command_name, status, error_message FROM commands
WHERE command_id = ANY($1::uuid[])
"""
ALL_UNFINISHED = "SELECT count(*) FROM commands WHERE status IN ('pending', 'in_progress')"
# A command's terminal status, its audit entry and its last response are written by one
# submission of the batch writer, in one statement: one entry per run that reached its end.
EXECUTIONS_OVER_ONE = """
SELECT command_id, count(*) AS n FROM audit_logs
WHERE action IN ('command_completed', 'command_failed')
GROUP BY command_id HAVING count(*) > 1
"""
FINALS_OVER_ONE = """
SELECT command_id, count(*) AS n FROM responses WHERE is_final
GROUP BY command_id HAVING count(*) > 1
"""
SEQUENCES = """
SELECT c.command_id, coalesce(array_agg(r.sequence_number ORDER BY r.sequence_number)
       FILTER (WHERE r.sequence_number IS NOT NULL), '{}') AS sequences
FROM commands c LEFT JOIN responses r USING (command_id)
WHERE c.command_id = ANY($1::uuid[])
GROUP BY c.command_id
"""


def parse_args(argv: Sequence[str] | None = None) -> ChaosPlan:
    defaults = ChaosPlan()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration", type=float, default=defaults.duration_s, help="seconds of load"
    )
    parser.add_argument("--rate", type=float, default=defaults.rate, help="commands per second")
    parser.add_argument("--vehicles", type=int, default=defaults.vehicles)
    parser.add_argument("--server-kills", type=int, default=defaults.server_kills)
    parser.add_argument("--redis-restarts", type=int, default=defaults.redis_restarts)
    parser.add_argument("--postgres-restarts", type=int, default=defaults.postgres_restarts)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="picks the fault moments")
    parser.add_argument("--follow-share", type=float, default=defaults.follow_share)
    parser.add_argument("--settle", type=float, default=defaults.settle_s)
    args = parser.parse_args(argv)
    return ChaosPlan(
        duration_s=args.duration,
        rate=args.rate,
        vehicles=args.vehicles,
        server_kills=args.server_kills,
        redis_restarts=args.redis_restarts,
        postgres_restarts=args.postgres_restarts,
        seed=args.seed,
        follow_share=args.follow_share,
        settle_s=args.settle,
    )


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_args(argv)
    try:
        report = asyncio.run(run_chaos(plan))
    except ChaosSetupError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
