"""End-to-end pipeline benchmark (SPEC §6): one `sovd-sim serve` process on PostgreSQL and
Redis, simulated latency 0, open-loop load from a second process (`sovd-sim loadtest`).

Prints completed commands/s, POST-to-completed percentiles and the CPU each command costs
the server, PostgreSQL and Redis, with group commit and then, for comparison, with one
transaction per writer submission (`SOVD_WRITE_BATCH_MAX_ROWS=1`): a command then costs two
transactions, its accepted row and its gathered lifecycle rows.

Throughput on a shared 2-core machine moves by up to a third between identical runs; CPU
per command moves much less, so compare that across changes, and repeat runs. Best, compare
two versions in one run: `--against REF` serves that commit too (from a temporary git
worktree, on a database of its own) and alternates its runs with this tree's, then prints
medians for both. Each rate's runs follow a warm-up at that rate (`--warmup`, 2 s), so the
figures are the steady state's. `--floor-rate RATE` also loads `bench/floor.py`'s
featureless server after each rate and prints completed/s as a share of what it answered,
and what the target shares ask of the server's CPU per command.

    .venv/bin/python bench/pipeline.py [--rates 1000,2000,4000] [--duration 10] [--repeat 3]
    .venv/bin/python bench/pipeline.py --against HEAD~3 --modes "group commit" --repeat 3

Needs PostgreSQL (BENCH_DATABASE_URL, default postgresql://root@127.0.0.1:5432/test, used
to create a scratch database) and Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from procstat import Snapshot, cpu_seconds, is_postgres, is_redis, of_process, used

ADMIN_DSN = os.environ.get("BENCH_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "bench-admin-password"
SECRET = "bench-secret-" + "b" * 40
MODES = {"group commit": "2000", "one transaction per submission": "1"}
TARGET_SHARES = (0.35, 0.5)  # SPEC §6: completed/s as a share of the featureless server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def fresh_database(name: str) -> str:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


def cli_module(directory: str | None) -> str:
    """What `python -m` runs as `sovd-sim` in a tree: `cli`, or `web.cli` in commits from
    before the command line had a package of its own (`--against` an older commit)."""
    if directory is None or (Path(directory) / "cli" / "__main__.py").exists():
        return "cli"
    return "web.cli"


async def run(*args: str, env: dict[str, str], cwd: str | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        cli_module(cwd),
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"sovd-sim {' '.join(args)} failed:\n{out.decode()}")
    return out.decode()


@dataclass(frozen=True)
class CpuPerCommand:
    """Microseconds of CPU one command cost each process during a run."""

    server: float
    postgres: float
    redis: float

    @classmethod
    def between(
        cls, before: Snapshot, after: Snapshot, commands: int, server_pid: int
    ) -> CpuPerCommand:
        return cls(
            *(
                used(before, after, match) / commands * 1e6
                for match in (of_process(server_pid), is_postgres, is_redis)
            )
        )

    def line(self) -> str:
        return (
            f"CPU per command: server {self.server:.0f} us, PostgreSQL {self.postgres:.0f} us, "
            f"Redis {self.redis:.0f} us"
        )


def gc_pauses(url: str) -> dict[str, tuple[float, float]]:
    """(collections, seconds paused) so far, by generation, from the server's metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, list[float]] = {}
    for match in re.finditer(
        r'^sovd_gc_pause_seconds_(count|sum)\{generation="(\d)"\} (\S+)$', text, re.M
    ):
        kind, generation, value = match.groups()
        found.setdefault(generation, [0.0, 0.0])[0 if kind == "count" else 1] = float(value)
    return {generation: (count, total) for generation, (count, total) in found.items()}


def gc_line(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> str:
    parts = []
    for generation in sorted(after):
        count = after[generation][0] - before.get(generation, (0.0, 0.0))[0]
        paused = after[generation][1] - before.get(generation, (0.0, 0.0))[1]
        parts.append(f"generation {generation} {count:.0f} ({paused * 1e3:.0f} ms)")
    if not parts:
        return "server GC collections during the run: not reported by this version"
    return "server GC collections during the run: " + ", ".join(parts)


def wait_ready(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server did not become ready")
        time.sleep(0.2)


@dataclass(frozen=True)
class Plan:
    rates: list[float]
    duration: float
    vehicles: int
    connections: int
    repeat: int
    floor_rate: float | None = None
    # Seconds of load at each rate before its measured runs, not reported: the first
    # commands open connections, prepare statements and load vehicle states.
    warmup: float = 2.0

    @property
    def load_options(self) -> dict[str, int]:
        return {"vehicles": self.vehicles, "connections": self.connections}


Figures = tuple[float, float, float, float]


def figures(out: str, cpu: CpuPerCommand) -> Figures:
    """(completed/s, POST-to-completed p99 ms, server CPU us per command, CPU us per command
    of everything else on the machine: PostgreSQL, Redis and the load generator) of one run."""
    completed = re.search(r"completed commands/s: (\d+)", out)
    p99 = re.search(r"POST-to-completed ms:.* p99 ([\d.]+|nan)", out)
    load = re.search(r"load generator CPU: .*\((\d+) us per command\)", out)
    if completed is None or p99 is None or load is None:
        raise SystemExit(f"unexpected load test output:\n{out}")
    rest = cpu.postgres + cpu.redis + float(load[1])
    return float(completed[1]), float(p99[1]), cpu.server, rest


def budget_line(floor: float, server_us: float, rest_us: float) -> str:
    """What SPEC §6's share of the floor asks of the process, in CPU per command: one
    process completes at most one core's worth of commands, and the machine's cores are
    shared with PostgreSQL, Redis and the load generator. Read it at a saturating rate: below
    saturation the rest of the machine costs more per command than it would at the target."""
    cores = os.cpu_count() or 1
    parts = []
    for share in TARGET_SHARES:
        rate = share * floor
        parts.append(
            f"share {share} is {rate:,.0f}/s: at most {1e6 / rate:.0f} us of server CPU per "
            f"command, {cores * 1e6 / rate - rest_us:.0f} us if the rest of the machine "
            "costs what it did at this rate"
        )
    return (
        f"   the target asks: {'; '.join(parts)} (now: server {server_us:.0f} us, "
        f"PostgreSQL, Redis and the load generator {rest_us:.0f} us)"
    )


def machine_speed_s() -> float:
    """CPU seconds a fixed pure-Python loop takes now: the machine's speed drifts, and runs
    are only comparable when this is close."""
    started = time.process_time()
    total = 0
    for i in range(2_000_000):
        total += i * i % 7
    return time.process_time() - started


@dataclass(frozen=True)
class Version:
    """Code the server runs: this tree, or a checkout of another commit (`--against`)."""

    label: str
    directory: str | None = None  # None: this tree


async def start_server(
    version: Version, max_rows: str
) -> tuple[asyncio.subprocess.Process, str, dict[str, str]]:
    """Migrates a fresh database with the version's code and serves it; (process, url, env)."""
    suffix = "" if version.directory is None else "_against"
    dsn = await fresh_database("sovd_bench_pipeline" + suffix)
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": SECRET,
        "SOVD_ADMIN_PASSWORD": PASSWORD,
        "SOVD_LOG_LEVEL": "warning",
        "SOVD_WRITE_BATCH_MAX_ROWS": max_rows,
        "SOVD_MAILBOX_SIZE": "1024",
        "SOVD_LOADTEST_PASSWORD": PASSWORD,
    }
    await run("db", "migrate", env=env, cwd=version.directory)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        cli_module(version.directory),
        "serve",
        "--port",
        str(port),
        "--latency-ms",
        "0,0",
        env=env,
        cwd=version.directory,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.to_thread(wait_ready, url)
    return server, url, env


async def load(
    url: str,
    env: dict[str, str],
    rate: float,
    duration: float,
    *,
    vehicles: int,
    connections: int = 256,
) -> str:
    """One open-loop run of `sovd-sim loadtest`; its report."""
    return await run(
        "loadtest",
        "--url",
        url,
        "--rate",
        str(rate),
        "--duration",
        str(duration),
        "--vehicles",
        str(vehicles),
        "--connections",
        str(connections),
        "--quiet",
        env=env,
    )


async def bench_mode(mode: str, max_rows: str, plan: Plan, versions: list[Version]) -> None:
    """Every rate, `repeat` times; with two versions, their runs alternate, so both see the
    machine at the same speed. The load generator is always this tree's."""
    servers = []
    try:
        for version in versions:
            servers.append(await start_server(version, max_rows))
        print(f"\n== {mode} (write batch max rows {max_rows}) ==", flush=True)
        for rate in plan.rates:
            runs: dict[str, list[Figures]] = {v.label: [] for v in versions}
            if plan.warmup > 0:
                for _, url, env in servers:
                    await load(url, env, rate, plan.warmup, **plan.load_options)
            for attempt in range(plan.repeat):
                for version, (server, url, env) in zip(versions, servers, strict=True):
                    before, gc_before = cpu_seconds(), gc_pauses(url)
                    out = await load(url, env, rate, plan.duration, **plan.load_options)
                    after, gc_after = cpu_seconds(), gc_pauses(url)
                    cpu = CpuPerCommand.between(
                        before, after, int(rate * plan.duration), server.pid
                    )
                    label = f" (run {attempt + 1} of {plan.repeat})" if plan.repeat > 1 else ""
                    if len(versions) > 1:
                        label += f" [{version.label}]"
                    print(f"-- offered {rate:.0f} commands/s for {plan.duration:.0f} s{label}")
                    print(out.rstrip())
                    print(cpu.line())
                    print(gc_line(gc_before, gc_after), flush=True)
                    runs[version.label].append(figures(out, cpu))
            floor = await floor_answered(plan) if plan.floor_rate else None
            if plan.repeat > 1 or len(versions) > 1 or floor:
                for version in versions:
                    done, p99, server_us, rest_us = (
                        statistics.median(column)
                        for column in zip(*runs[version.label], strict=True)
                    )
                    share = f", share of the floor {done / floor:.3f}" if floor else ""
                    print(
                        f"== offered {rate:.0f}/s, {version.label}, median of {plan.repeat}: "
                        f"completed {done:.0f}/s, POST-to-completed p99 {p99:.1f} ms, "
                        f"server CPU {server_us:.0f} us/command{share}",
                        flush=True,
                    )
                    if floor:
                        print(budget_line(floor, server_us, rest_us), flush=True)
    finally:
        for server, _, _ in servers:
            server.terminate()
            await server.wait()


async def floor_answered(plan: Plan) -> float:
    """Requests/s the featureless stand-in of `bench/floor.py` answers at `floor_rate`,
    measured now, so that a share of it compares runs on a machine whose speed drifts."""
    from floor import bench as floor_bench  # floor imports this module

    assert plan.floor_rate is not None
    answered = await floor_bench("bare", [plan.floor_rate], plan.duration, plan.connections)
    return answered[plan.floor_rate]


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[str]:
    """A temporary detached worktree of `ref`, removed afterwards."""
    directory = tempfile.mkdtemp(prefix="sovd-bench-")
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        ["git", "-C", str(root), "worktree", "add", "--detach", "--force", directory, ref],
        check=True,
        capture_output=True,
    )
    try:
        yield directory
    finally:
        subprocess.run(
            ["git", "-C", str(root), "worktree", "remove", "--force", directory],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(directory, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,2000,4000")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--vehicles", type=int, default=10)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per rate; more than one adds medians"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=256,
        help="keep-alive connections of the load generator; each carries one request at a "
        "time, so they bound the requests in flight",
    )
    parser.add_argument(
        "--against",
        metavar="GIT_REF",
        help="also serve the code of this commit (a temporary worktree) and alternate its "
        "runs with this tree's",
    )
    parser.add_argument(
        "--floor-rate",
        type=float,
        metavar="RATE",
        help="after each rate, load the featureless stand-in of bench/floor.py at RATE "
        "(above its saturation, such as 24000) and print each version's completed/s as a "
        "share of what it answered",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="load at each rate before its measured runs, not reported (connections, "
        "prepared statements and vehicle states are made in the first second)",
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; server and load "
        "generator are separate processes on this machine",
        flush=True,
    )
    print(f"machine speed: a fixed loop takes {machine_speed_s():.3f} s of CPU", flush=True)
    plan = Plan(
        rates,
        args.duration,
        args.vehicles,
        args.connections,
        max(1, args.repeat),
        args.floor_rate,
        args.warmup,
    )
    modes = args.modes.split(",")
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        parser.error(f"unknown mode {unknown[0]!r}; modes are {', '.join(MODES)}")
    if args.against is None:
        for mode in modes:
            await bench_mode(mode, MODES[mode], plan, [Version("this tree")])
        return
    with checkout(args.against) as directory:
        versions = [Version(args.against, directory), Version("this tree")]
        for mode in modes:
            await bench_mode(mode, MODES[mode], plan, versions)


if __name__ == "__main__":
    asyncio.run(main())
