"""SOVD reads against the command pipeline, in one run (issue target: the reads at least
match the pipeline's completed commands/s).

One `sovd-sim serve` on PostgreSQL and Redis with a 1,000-vehicle fleet at latency 0. Each
SOVD read is a command through the same pipeline (stored, audited, published) and the answer
waits until it is stored, so a read costs what a command costs plus the wait. The script
drives, closed-loop from a second process with a fixed number of keep-alive connections:
`GET .../faults` (ReadDTC) and `GET .../data/vin` (ReadDataByID) over all vehicles, then
`sovd-sim loadtest` (POST /api/v1/commands, completion seen on the fleet feed) at a rate
above saturation, and prints requests/s with p50/p99 beside the pipeline's completed/s.

    .venv/bin/python bench/sovd_reads.py [--duration 8] [--connections 64] [--vehicles 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from pipeline import (
    PASSWORD,
    REDIS_URL,
    SECRET,
    cli_module,
    free_port,
    fresh_database,
    load,
    machine_speed_s,
    run,
    wait_ready,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtest.client import LeanPool
from loadtest.report import percentile

FLEET = """
[[fleets]]
name = "bench"
count = {count}
profile = "vw-golf"
vin_prefix = "WVWBENCH"
latency = {{ distribution = "uniform", min_ms = 0, max_ms = 0 }}
"""


def login(url: str) -> str:
    request = urllib.request.Request(
        url + "/api/v1/auth/login",
        data=json.dumps({"username": "admin", "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["access_token"])


def vehicle_ids(url: str, token: str, count: int) -> list[str]:
    request = urllib.request.Request(
        f"{url}/api/v1/vehicles?fleet=bench&limit={count}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return [v["vehicle_id"] for v in json.loads(response.read())]


async def closed_loop(
    url: str, token: str, paths: list[str], duration_s: float, connections: int
) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-200 answers): every connection sends its next request
    as soon as the last one is answered."""
    pool = LeanPool(url, connections)
    await pool.open()
    host = f"{pool.host}:{pool.port}"
    requests = [
        f"GET {p} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        for p in paths
    ]
    latencies: list[float] = []
    failures = 0
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + duration_s
    done = asyncio.Event()
    in_flight = 0
    sent = 0

    def answer(status: int, body: bytes, queued_at: float) -> None:
        nonlocal failures, in_flight
        in_flight -= 1
        latencies.append(loop.time() - queued_at)
        if status != 200:
            failures += 1
        if loop.time() < stop_at:
            send()
        elif in_flight == 0:
            done.set()

    def send() -> None:
        nonlocal in_flight, sent
        in_flight += 1
        pool.request(requests[sent % len(requests)], loop.time(), answer)
        sent += 1

    started = loop.time()
    for _ in range(connections):
        send()
    await done.wait()
    elapsed = loop.time() - started
    await pool.close()
    return len(latencies) / elapsed, percentile(latencies, 50), percentile(latencies, 99), failures


async def pipeline_completed(url: str, env: dict[str, str], rate: int, duration_s: float) -> str:
    out = await load(url, env, rate, duration_s, vehicles=1000)
    found = re.search(r"completed commands/s: (\d+)", out)
    return found[1] if found else f"? ({out[-200:]})"


async def main(args: argparse.Namespace) -> None:
    dsn = await fresh_database("sovd_bench_sovd")
    with tempfile.TemporaryDirectory() as scratch:
        fleet = Path(scratch) / "fleet.toml"
        fleet.write_text(FLEET.format(count=args.vehicles))
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "REDIS_URL": REDIS_URL,
            "JWT_SECRET": SECRET,
            "SOVD_ADMIN_PASSWORD": PASSWORD,
            "SOVD_LOADTEST_PASSWORD": PASSWORD,
            "SOVD_LOG_LEVEL": "warning",
            "SOVD_MAILBOX_SIZE": "1024",
        }
        await run("db", "migrate", env=env)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            cli_module(None),
            "serve",
            "--port",
            str(port),
            "--fleet",
            str(fleet),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.to_thread(wait_ready, url)
            token = login(url)
            vehicles = vehicle_ids(url, token, args.vehicles)
            engine = "engine-control-module"
            base = [f"/vehicles/{v}/sovd/v1/components/{engine}" for v in vehicles]
            print(f"machine speed: {machine_speed_s():.3f} s (lower is faster)")
            for label, suffix in (("GET .../faults", "/faults"), ("GET .../data/vin", "/data/vin")):
                rate, p50, p99, failed = await closed_loop(
                    url, token, [b + suffix for b in base], args.duration, args.connections
                )
                print(
                    f"{label:18} {rate:7.0f} requests/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
                    f"  non-200 {failed}"
                )
            completed = await pipeline_completed(url, env, args.pipeline_rate, args.duration)
            print(
                f"{'POST /api/v1/commands':18} {completed:>7} completed/s at "
                f"{args.pipeline_rate}/s offered"
            )
        finally:
            server.terminate()
            await server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--vehicles", type=int, default=1000, help="fleet size")
    parser.add_argument(
        "--pipeline-rate", type=int, default=4000, help="commands/s offered to the pipeline"
    )
    started = time.monotonic()
    asyncio.run(main(parser.parse_args()))
    print(f"took {time.monotonic() - started:.0f} s")
