"""Benchmark of the actor runtime alone (no HTTP, no storage).

Prints memory per idle vehicle and spawn time for 100,000 vehicles, and in-memory command
throughput with zero latency. Run: `.venv/bin/python bench/actor_system.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
import time
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors import ActorSystem, FixedLatency
from actors.sink import TerminalStatus
from sovd.demo import VW_GOLF
from sovd.fleet import FleetSpec
from sovd.persisted import Snapshot

MEMORY_TARGET_BYTES = 1024
SPAWN_TARGET_S = 1.0
THROUGHPUT_TARGET = 50_000

WORKLOAD = (
    ("ReadDataByID", {"ecuAddress": "0x01", "dataId": "0xF190"}),
    ("ReadDataByID", {"ecuAddress": "0x17", "dataId": "0xF4A6"}),
    ("ReadDTC", {"ecuAddress": "0x01"}),
    ("ReadDataByID", {"ecuAddress": "0x01", "dataId": "0xF40C"}),
)


class CountingSink:
    def __init__(self) -> None:
        self.chunks = 0
        self.finished = 0

    async def command_started(self, command_id: UUID, vehicle_id: UUID, at: datetime) -> None:
        pass

    async def command_chunk(
        self,
        command_id: UUID,
        vehicle_id: UUID,
        sequence_number: int,
        payload: dict[str, Any],
        is_final: bool,
        at: datetime,
    ) -> None:
        self.chunks += 1

    async def command_finished(
        self,
        command_id: UUID,
        vehicle_id: UUID,
        status: TerminalStatus,
        error_message: str | None,
        at: datetime,
        state: Snapshot | None = None,
    ) -> None:
        self.finished += 1


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def measure_spawn(vehicles: int) -> float:
    system = ActorSystem(CountingSink())
    gc.collect()
    started = time.perf_counter()
    system.add_fleet(FleetSpec("bench", VW_GOLF, vehicles, seed=1))
    return time.perf_counter() - started


def measure_memory(vehicles: int) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    system = ActorSystem(CountingSink())
    system.add_fleet(FleetSpec("bench", VW_GOLF, vehicles, seed=1))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(system) == vehicles
    return (after - before) / vehicles


async def measure_throughput(commands: int, vehicles: int) -> tuple[float, float, int]:
    """Commands per second from the first `submit` until every command is finished, by
    the wall clock and per second of this process's CPU time (steadier on a shared box)."""
    sink = CountingSink()
    system = ActorSystem(sink, latency=FixedLatency(0.0), time_scale=0.0, passivate_after_s=None)
    fleet = system.add_fleet(FleetSpec("bench", VW_GOLF, vehicles))
    ids = [identity.vehicle_id for identity in fleet]
    parsed = [(name, system.registry.parse_params(name, raw)) for name, raw in WORKLOAD]

    for vehicle_id in ids:  # warm-up: materialize every vehicle once
        system.submit(vehicle_id, uuid4(), *parsed[0])
    await system.drain()

    per_vehicle = commands // vehicles
    command_ids = [uuid4() for _ in range(per_vehicle * vehicles)]
    sink.finished = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    n = 0
    for round_ in range(per_vehicle):
        name, params = parsed[round_ % len(parsed)]
        for vehicle_id in ids:
            system.submit(vehicle_id, command_ids[n], name, params)
            n += 1
    await system.drain()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    await system.stop(1.0)
    return n / elapsed, n / cpu, sink.finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vehicles", type=int, default=100_000)
    parser.add_argument("--commands", type=int, default=200_000)
    parser.add_argument("--busy-vehicles", type=int, default=10_000)
    args = parser.parse_args()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )

    # Best of three, as timeit does: the machine's noise only ever slows a run down.
    runs = [asyncio.run(measure_throughput(args.commands, args.busy_vehicles)) for _ in range(3)]
    rate, cpu_rate, finished = max(runs)
    spawn_s = min(measure_spawn(args.vehicles) for _ in range(3))
    per_vehicle = measure_memory(args.vehicles)

    print(f"python {sys.version.split()[0]} on {sys.platform}")
    print(
        f"memory per idle vehicle ({args.vehicles:,} vehicles): {per_vehicle:,.0f} bytes "
        f"(target <= {MEMORY_TARGET_BYTES}) {verdict(per_vehicle <= MEMORY_TARGET_BYTES)}"
    )
    print(
        f"spawn {args.vehicles:,} vehicles (best of 3): {spawn_s:.3f} s "
        f"(target < {SPAWN_TARGET_S:g} s) {verdict(spawn_s < SPAWN_TARGET_S)}"
    )
    print(
        f"throughput, latency 0, {finished:,} commands over {args.busy_vehicles:,} vehicles "
        f"(best of 3): {rate:,.0f} commands/s (target >= {THROUGHPUT_TARGET:,}) "
        f"{verdict(rate >= THROUGHPUT_TARGET)}; per CPU-second: {cpu_rate:,.0f}"
    )


if __name__ == "__main__":
    main()
