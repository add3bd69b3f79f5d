"""WebSocket fan-out (SPEC §6: 10,000 concurrent subscribers per process, p99 delivery after
commit <= 50 ms at 1,000 completed commands/s).

One `sovd-sim serve` on PostgreSQL and Redis with a 1,000-vehicle fleet at latency 0. This
script opens the subscribers from a second process: most follow one vehicle
(`/ws/vehicles/{id}?status=completed`), a few follow the whole fleet
(`/ws/fleet?status=completed`), all idle at first, so the server's resident memory per idle
subscriber is measured; then `sovd-sim loadtest` offers commands at a fixed rate, and every
`completed` event a subscriber receives is timed against its `completed_at` (the moment the
vehicle answered; the commit follows within a batch). It prints the delivery percentiles,
events per second delivered, and the server's CPU.

The figures are the steady state's: a warm-up run at the same rate comes first (`--warmup`,
2 s; its percentiles are printed apart), since the first command to each vehicle also reads
its state from PostgreSQL. The subscribers' process is the measuring instrument, so its own
garbage collector is off while it measures: with 10,000 connections open, one of its
collections paused it for about 60 ms, and every event arriving meanwhile counted as late.
Its event-loop lag is printed, to show what it still adds.

    .venv/bin/python bench/ws_fanout.py [--subscribers 10000] [--fleet-feeds 10] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import orjson
from pipeline import (
    PASSWORD,
    REDIS_URL,
    SECRET,
    cli_module,
    free_port,
    fresh_database,
    gc_line,
    gc_pauses,
    machine_speed_s,
    run,
    wait_ready,
)
from procstat import cpu_seconds, of_process, used

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtest.report import percentile

FLEET = """
[[fleets]]
name = "fanout"
count = {count}
profile = "vw-golf"
vin_prefix = "WVWFANXU"
latency = {{ distribution = "uniform", min_ms = 0, max_ms = 0 }}
"""
OPEN_AT_ONCE = 200


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


LAG_PROBE_S = 0.005


class Subscribers:
    def __init__(self) -> None:
        self.delays: list[float] = []
        self.fleet_delays: list[float] = []
        self.received = 0
        self.closed = 0
        self.measuring = False

    async def follow(self, session: aiohttp.ClientSession, url: str, opened: asyncio.Event) -> None:
        try:
            async with session.ws_connect(url, heartbeat=None, max_msg_size=0) as ws:
                opened.set()
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    event = orjson.loads(message.data)
                    self.received += 1
                    if self.measuring and event.get("completed_at"):
                        done = datetime.fromisoformat(event["completed_at"]).timestamp()
                        self.delays.append(time.time() - done)
                        if "/ws/fleet" in url:
                            self.fleet_delays.append(time.time() - done)
        finally:
            opened.set()
            self.closed += 1

    def restart(self) -> None:
        """Forgets what was measured so far."""
        self.delays, self.fleet_delays = [], []


async def loop_lag(lags: list[float]) -> None:
    """How late this process wakes up for a short sleep: the delay it adds to what it times."""
    while True:
        started = time.monotonic()
        await asyncio.sleep(LAG_PROBE_S)
        lags.append(time.monotonic() - started - LAG_PROBE_S)


def spread(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms, "
        f"max {percentile(values, 100):.1f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    dsn = await fresh_database("sovd_bench_fanout")
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
            "SOVD_MAX_CONNECTIONS": str(args.subscribers + 2000),
        }
        await run("db", "migrate", env=env)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", cli_module(None), "serve", "--port", str(port),
            "--fleet", str(fleet), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await asyncio.to_thread(wait_ready, url)
            await measure(args, url, env, server.pid)
        finally:
            server.terminate()
            await server.wait()


async def measure(args: argparse.Namespace, url: str, env: dict[str, str], pid: int) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(
            f"{url}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
        ) as answer:
            token = (await answer.json())["access_token"]
        async with session.get(
            f"{url}/api/v1/vehicles?fleet=fanout&limit={args.vehicles}",
            headers={"Authorization": f"Bearer {token}"},
        ) as answer:
            vehicles = [v["vehicle_id"] for v in await answer.json()]
        ws_base = url.replace("http://", "ws://")
        targets = [f"{ws_base}/ws/fleet?status=completed&token={token}"] * args.fleet_feeds
        targets += [
            f"{ws_base}/ws/vehicles/{vehicles[n % len(vehicles)]}?status=completed&token={token}"
            for n in range(args.subscribers - args.fleet_feeds)
        ]
        print(f"machine speed: {machine_speed_s():.3f} s (lower is faster)")
        rss_before = rss_bytes(pid)
        subscribers = Subscribers()
        tasks = []
        started = time.monotonic()
        for first in range(0, len(targets), OPEN_AT_ONCE):
            opened = [asyncio.Event() for _ in targets[first : first + OPEN_AT_ONCE]]
            for target, event in zip(targets[first : first + OPEN_AT_ONCE], opened, strict=True):
                tasks.append(asyncio.create_task(subscribers.follow(session, target, event)))
            await asyncio.gather(*(event.wait() for event in opened))
        await asyncio.sleep(2)  # let the server settle before reading its memory
        open_now = len(tasks) - subscribers.closed
        rss_after = rss_bytes(pid)
        print(
            f"{open_now} subscribers open in {time.monotonic() - started:.1f} s "
            f"({args.fleet_feeds} fleet feeds); server RSS {rss_before / 2**20:.0f} MiB -> "
            f"{rss_after / 2**20:.0f} MiB, {(rss_after - rss_before) / max(1, open_now):.0f} "
            "bytes per idle subscriber"
        )
        load = (
            "loadtest", "--url", url, "--rate", str(args.rate), "--vehicles",
            str(args.vehicles), "--quiet",
        )  # fmt: skip
        gc.collect()
        gc.freeze()
        gc.disable()
        lags: list[float] = []
        lag_probe = asyncio.create_task(loop_lag(lags))
        subscribers.measuring = True
        if args.warmup > 0:
            await run(*load, "--duration", str(args.warmup), env=env)
            print(f"warm-up: {args.warmup:g} s at {args.rate}/s, delivery after completion "
                  f"{spread(subscribers.delays)}")  # fmt: skip
            subscribers.restart()
            lags.clear()
        received_before = subscribers.received
        before, gc_before = cpu_seconds(), gc_pauses(url)
        own_before = time.process_time()
        load_started = time.monotonic()
        out = await run(*load, "--duration", str(args.duration), env=env)
        elapsed = time.monotonic() - load_started
        after, gc_after = cpu_seconds(), gc_pauses(url)
        own_cpu = time.process_time() - own_before
        lag_probe.cancel()
        gc.enable()
        delays = subscribers.delays
        delivered = subscribers.received - received_before
        completed = next((line for line in out.splitlines() if "completed commands/s" in line), "?")
        print(f"load: {args.rate}/s offered for {args.duration:g} s; {completed.strip()}")
        print(
            f"delivered {delivered} events ({delivered / elapsed:.0f}/s) to subscribers; "
            f"delivery after completion {spread(delays)}"
        )
        print(f"of which fleet feeds: {spread(subscribers.fleet_delays)}")
        print(f"subscribers' event-loop lag: {spread(lags)}")
        server_cpu = used(before, after, of_process(pid))
        every = used(before, after, lambda key: True)
        print(f"server CPU {server_cpu:.1f} s over {elapsed:.1f} s ({server_cpu / elapsed:.0%})")
        # The subscribers' own process reads every event in Python on the same cores: when
        # the machine is busy, their latencies include waiting for a core.
        print(
            f"subscribers' process CPU {own_cpu:.1f} s ({own_cpu / elapsed:.0%}); all processes "
            f"{every:.1f} s of {elapsed * (os.cpu_count() or 1):.1f} s available "
            f"({every / (elapsed * (os.cpu_count() or 1)):.0%})"
        )
        print(gc_line(gc_before, gc_after))
        print(f"subscribers still open at the end: {len(tasks) - subscribers.closed}")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--fleet-feeds", type=int, default=10)
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=1000, help="commands/s offered")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load first")
    asyncio.run(main(parser.parse_args()))
