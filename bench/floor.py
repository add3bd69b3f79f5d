"""The floor under `bench/pipeline.py`: what the stack alone costs on this machine.

A stand-in server with none of sovd-sim's features answers the same open-loop load that
`sovd-sim loadtest` sends, so the CPU a request costs here is a lower bound for any server
built on aiohttp, asyncpg and Redis in one Python process on this machine:

- `bare`: parse the JSON body, answer 202 with a small JSON body;
- `accept`: also write one row per request to PostgreSQL by group commit (one `unnest`
  INSERT per batch, a request answers after its batch commits) and publish one event per
  request to Redis, pipelined per batch: the least durable work a command needs before its
  202, without auth, validation, execution, audit or subscribers.

    .venv/bin/python bench/floor.py [--rates 2000,4000] [--duration 8] [--modes bare,accept]

Needs PostgreSQL (BENCH_DATABASE_URL) and Redis (BENCH_REDIS_URL) for `accept`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import orjson
import redis.asyncio as redis
from aiohttp import web
from pipeline import ADMIN_DSN, REDIS_URL, free_port, fresh_database, wait_ready
from procstat import cpu_seconds, is_postgres, is_redis, of_process, used

from loadtest.client import LeanPool, post_request
from loadtest.report import percentile

INSERT = """INSERT INTO floor_commands (command_id, vehicle_id, command_name, params, at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::float8[])"""
TABLE = """CREATE TABLE floor_commands (
    command_id uuid PRIMARY KEY, vehicle_id uuid NOT NULL, command_name text NOT NULL,
    params jsonb NOT NULL, at float8 NOT NULL)"""


class GroupCommit:
    """Rows wait while one batch is written; the next batch takes all that queued."""

    def __init__(self, pool: asyncpg.Pool, bus: redis.Redis) -> None:
        self._pool = pool
        self._bus = bus
        self._queue: list[tuple[tuple[object, ...], asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    def add(self, row: tuple[object, ...]) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((row, done))
        self._wakeup.set()
        return done

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            columns = [list(c) for c in zip(*(row for row, _ in batch), strict=True)]
            await self._pool.execute(INSERT, *columns)
            for _, done in batch:
                done.set_result(None)
            pipe = self._bus.pipeline(transaction=False)
            for row, _ in batch:
                pipe.publish(f"floor:{row[0]}", orjson.dumps({"command_id": str(row[0])}))
            await pipe.execute()


async def serve(port: int, mode: str, dsn: str) -> None:
    app = web.Application()
    writer: GroupCommit | None = None
    if mode == "accept":
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
        writer = GroupCommit(pool, redis.Redis.from_url(REDIS_URL))

    async def submit(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        command_id = uuid.uuid4()
        if writer is not None:
            await writer.add(
                (
                    command_id,
                    uuid.UUID(body["vehicle_id"]),
                    body["command_name"],
                    orjson.dumps(body["command_params"]).decode(),
                    time.time(),
                )
            )
        return web.Response(
            status=202,
            body=orjson.dumps({"command_id": str(command_id), "status": "pending"}),
            content_type="application/json",
        )

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_post("/api/v1/commands", submit)
    app.router.add_get("/readyz", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def load(
    url: str, rate: float, duration_s: float, connections: int
) -> tuple[list[float], float]:
    """Open-loop POSTs on a 1 ms schedule: the latencies, counted from each request's due
    time, and the seconds from the first request to the last answer."""
    pool = LeanPool(url, connections)
    await pool.open()
    body = orjson.dumps(
        {
            "vehicle_id": str(uuid.uuid4()),
            "command_name": "ReadDTC",
            "command_params": {"ecuAddress": "0x01"},
        }
    )
    request = post_request(f"{pool.host}:{pool.port}", "/api/v1/commands", "t" * 200, body)
    latencies: list[float] = []
    total = int(rate * duration_s)
    all_answered = asyncio.Event()

    last_answer = 0.0

    def answered(status: int, _: bytes, started: float) -> None:
        nonlocal last_answer
        if status != 202:
            raise SystemExit(f"the floor server answered {status}")
        last_answer = time.perf_counter()
        latencies.append(last_answer - started)
        if len(latencies) == total:
            all_answered.set()

    begin, sent, tick = time.perf_counter(), 0, 0
    while sent < total:
        # Request k is due at k / rate: at this tick, every k <= rate * elapsed.
        due = min(total, int(rate * tick / 1000) + 1)
        while sent < due:
            pool.request(request, begin + sent / rate, answered)
            sent += 1
        tick += 1
        delay = begin + tick / 1000 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.wait_for(all_answered.wait(), 60)
    await pool.close()
    return latencies, last_answer - begin


async def bench(
    mode: str, rates: list[float], duration_s: float, connections: int
) -> dict[float, float]:
    """Serves the stand-in in `mode` and loads it at each rate; answered requests/s by rate."""
    answered: dict[float, float] = {}
    dsn = ADMIN_DSN
    if mode == "accept":
        dsn = await fresh_database("sovd_bench_floor")
        conn = await asyncpg.connect(dsn)
        await conn.execute(TABLE)
        await conn.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "serve", "--port", str(port), "--mode", mode, "--dsn", dsn
    )
    try:
        await asyncio.to_thread(wait_ready, url)
        print(f"\n== {mode} ==", flush=True)
        for rate in rates:
            before, cpu_started = cpu_seconds(), time.process_time()
            latencies, elapsed = await load(url, rate, duration_s, connections)
            after, load_cpu = cpu_seconds(), time.process_time() - cpu_started
            n = len(latencies)
            # Past saturation, answers take longer than the sending: throughput is what
            # was answered over the whole time it took.
            answered[rate] = n / elapsed
            cpu = {
                "server": used(before, after, of_process(server.pid)),
                "PostgreSQL": used(before, after, is_postgres),
                "Redis": used(before, after, is_redis),
                "load generator": load_cpu,
            }
            print(
                f"offered {rate:.0f}/s: answered {answered[rate]:.0f}/s, POST ms p50 "
                f"{percentile(latencies, 50):.1f} p99 {percentile(latencies, 99):.1f}"
                "; CPU per request: "
                + ", ".join(f"{name} {s / n * 1e6:.0f} us" for name, s in cpu.items()),
                flush=True,
            )
    finally:
        server.terminate()
        await server.wait()
    return answered


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        parser = argparse.ArgumentParser()
        parser.add_argument("serve")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--mode", choices=("bare", "accept"), required=True)
        parser.add_argument("--dsn", required=True)
        args = parser.parse_args()
        asyncio.run(serve(args.port, args.mode, args.dsn))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="2000,4000")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--modes", default="bare,accept")
    parser.add_argument("--connections", type=int, default=256)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs", flush=True)
    for mode in args.modes.split(","):
        asyncio.run(bench(mode, rates, args.duration, args.connections))


if __name__ == "__main__":
    main()
