"""Fleet benchmark (SPEC §6): 100,000 vehicles from `examples/fleet-100k.toml`.

Prints the spawn time in memory (parse the file, build every identity, actor and record;
target < 1 s), the spawn time into PostgreSQL (COPY, one transaction; target < 10 s) and
of a re-spawn of the same file, the resident memory per idle vehicle (target <= 1 KB), and
the latency of `GET /api/v1/vehicles?limit=100` under concurrent load against a
`sovd-sim serve --fleet` process, on both stores.

    .venv/bin/python bench/fleet.py [--file examples/fleet-100k.toml] [--concurrency 32]

PostgreSQL: BENCH_DATABASE_URL (default postgresql://root@127.0.0.1:5432/test) is used to
create a scratch database; without it the PostgreSQL lines are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors import ActorSystem, RecordingSink  # noqa: E402
from db.memory import MemoryStore  # noqa: E402
from db.migrate import migrate  # noqa: E402
from db.postgres import PostgresStore, create_pool  # noqa: E402
from db.repositories import Store  # noqa: E402
from web.vehicles.fleets import FleetService, read_fleet_file  # noqa: E402

ADMIN_DSN = os.environ.get("BENCH_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
PASSWORD = "bench-admin-password"
SECRET = "bench-secret-" + "f" * 40
SPAWN_MEMORY_TARGET_S = 1.0
SPAWN_POSTGRES_TARGET_S = 10.0
RSS_TARGET_BYTES = 1024


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def spawn_once(file: str, store: Store) -> tuple[float, FleetService]:
    started = time.perf_counter()
    config = read_fleet_file(file)
    service = FleetService(store, ActorSystem(RecordingSink()))
    await service.spawn(config, "file")
    return time.perf_counter() - started, service


async def spawn_in_memory(file: str) -> float:
    times = []
    for _ in range(3):  # best of three: noise only ever slows a run down
        gc.collect()
        elapsed, _ = await spawn_once(file, MemoryStore())
        times.append(elapsed)
    return min(times)


async def fresh_database(name: str) -> str:
    admin = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    await migrate(dsn)
    return dsn


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def spawn_into_postgres(file: str, dsn: str) -> tuple[float, float]:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        first, _ = await spawn_once(file, PostgresStore(pool))
        again, _ = await spawn_once(file, PostgresStore(pool))
    finally:
        await pool.close()
    return first, again


def measure_rss(file: str) -> None:
    """Runs in a child process, so nothing else lives in its heap; prints JSON."""

    async def spawn() -> tuple[int, int, int]:
        store = MemoryStore()
        system = ActorSystem(RecordingSink())
        service = FleetService(store, system)
        config = read_fleet_file(file)
        gc.collect()
        before = rss_bytes()
        await service.spawn(config, "file")
        del config
        gc.collect()
        return before, rss_bytes(), len(system)

    before, after, vehicles = asyncio.run(spawn())
    print(json.dumps({"before": before, "after": after, "vehicles": vehicles}))


async def rss_per_vehicle(file: str) -> tuple[float, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--rss-child", "--file", file, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    result = json.loads(out)
    return (result["after"] - result["before"]) / result["vehicles"], result["vehicles"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(session: aiohttp.ClientSession, url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with session.get(url + "/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the server did not become ready")


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def load(
    url: str, token: str, query: str, concurrency: int, duration_s: float, vehicles: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    failures = 0
    rng = random.Random(1)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        stop = time.perf_counter() + duration_s

        async def worker() -> None:
            nonlocal failures
            while time.perf_counter() < stop:
                path = f"{url}/api/v1/vehicles?{query}"
                if "offset" not in query:
                    path += f"&offset={rng.randrange(0, vehicles)}"
                started = time.perf_counter()
                async with session.get(path) as r:
                    await r.read()
                    if r.status != 200:
                        failures += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "failures": failures,
        "rate": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


async def serve_and_load(
    file: str, env: dict[str, str], concurrency: int, duration_s: float, vehicles: int
) -> tuple[float, list[tuple[str, dict[str, Any]]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "serve",
        "--port",
        str(port),
        "--fleet",
        file,
        "--latency-ms",
        "0,0",
        env={**os.environ, **env, "SOVD_ADMIN_PASSWORD": PASSWORD, "SOVD_LOG_LEVEL": "warning"},
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    results = []
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, url)
            ready_s = time.perf_counter() - started
            login = {"username": "admin", "password": PASSWORD}
            async with session.post(url + "/api/v1/auth/login", json=login) as response:
                token = (await response.json())["access_token"]
        for query in ("limit=100", "status=connected&limit=1000&offset=0"):
            await load(url, token, query, concurrency, 1.0, vehicles)  # warm-up
            results.append(
                (query, await load(url, token, query, concurrency, duration_s, vehicles))
            )
    finally:
        server.terminate()
        await server.wait()
    return ready_s, results


def report_load(store: str, ready_s: float, results: list[tuple[str, dict[str, Any]]]) -> None:
    print(f"serve --fleet, {store}: ready {ready_s:.1f} s after start")
    for query, r in results:
        print(
            f"  GET /api/v1/vehicles?{query}: p50 {r['p50_ms']:.1f} ms, "
            f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms, {r['rate']:,.0f} requests/s, "
            f"{r['requests']:,} requests, {r['failures']} failed"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default=str(ROOT / "examples" / "fleet-100k.toml"))
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    vehicles = read_fleet_file(args.file).vehicle_count

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.file}")
    spawn_s = await spawn_in_memory(args.file)
    print(
        f"spawn {vehicles:,} vehicles in memory (parse, identities, actors, records; best of 3):"
        f" {spawn_s:.3f} s (target < {SPAWN_MEMORY_TARGET_S:g} s) "
        f"{verdict(spawn_s < SPAWN_MEMORY_TARGET_S)}"
    )
    per_vehicle, counted = await rss_per_vehicle(args.file)
    print(
        f"RSS per idle vehicle ({counted:,} vehicles: actor, identity, store record):"
        f" {per_vehicle:,.0f} bytes (target <= {RSS_TARGET_BYTES}) "
        f"{verdict(per_vehicle <= RSS_TARGET_BYTES)}"
    )
    try:
        dsn = await fresh_database("sovd_bench_fleet")
    except (OSError, asyncpg.PostgresError) as exc:
        dsn = None
        print(f"PostgreSQL: skipped ({exc})")
    if dsn is not None:
        first, again = await spawn_into_postgres(args.file, dsn)
        print(
            f"spawn {vehicles:,} vehicles into PostgreSQL (COPY, one transaction): "
            f"{first:.2f} s (target < {SPAWN_POSTGRES_TARGET_S:g} s) "
            f"{verdict(first < SPAWN_POSTGRES_TARGET_S)}; the same file again: {again:.2f} s"
        )
    print(f"load: {args.concurrency} concurrent clients for {args.duration:g} s per query")
    ready_s, results = await serve_and_load(
        args.file, {}, args.concurrency, args.duration, vehicles
    )
    report_load("memory", ready_s, results)
    if dsn is not None:
        dsn = await fresh_database("sovd_bench_fleet")
        env = {"DATABASE_URL": dsn, "JWT_SECRET": SECRET}
        ready_s, results = await serve_and_load(
            args.file, env, args.concurrency, args.duration, vehicles
        )
        report_load("PostgreSQL", ready_s, results)
        await drop_database("sovd_bench_fleet")


if __name__ == "__main__":
    if "--rss-child" in sys.argv:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        measure_rss(sys.argv[sys.argv.index("--file") + 1])
    else:
        asyncio.run(main())
