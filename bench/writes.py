"""Write-path benchmark: the rows of a command's lifecycle, written to PostgreSQL the way the
batch writer writes them, without HTTP, actors or Redis.

Each command is one accepted batch (the command and its `command_submitted` audit entry),
then one lifecycle batch (in_progress, the response, completed and its audit entry). Prints
commands/s and the CPU PostgreSQL spends per command (all its processes, from /proc), so a
schema or statement change can be judged on its own.

    .venv/bin/python bench/writes.py [--commands 40000] [--batch 200]
    .venv/bin/python bench/writes.py --compare-plans [--batches 1,3,20,100]

`--compare-plans` fills the tables with 20,000 commands, then writes through two
single-connection stores in alternating rounds, one with the store's session settings and
one with PostgreSQL's default `plan_cache_mode` (`auto`), and charges each the CPU of its
own server process: alternating cancels the drift in this machine's speed, which moves
sequential runs by up to a factor of two.

BENCH_DATABASE_URL (default postgresql://root@127.0.0.1:5432/test) is used to create a
scratch database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from procstat import cpu_seconds, is_postgres, of_process, used  # noqa: E402

from db.migrate import migrate  # noqa: E402
from db.postgres import PostgresStore, create_pool  # noqa: E402
from db.repositories import StatusChange, WriteBatch  # noqa: E402
from sovd.records import AuditEntry, Command, Response, User, Vehicle, new_id  # noqa: E402
from web.commands.pipeline import command_audit  # noqa: E402

ADMIN_DSN = os.environ.get("BENCH_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
PAYLOAD = {
    "dtcs": [
        {"code": "P0301", "status": "confirmed", "statusByte": "0x08", "description": "misfire"}
    ],
    "uds": "59 02 FF 03 01 00 08",
}


def postgres_cpu_s() -> float:
    return used({}, cpu_seconds(), is_postgres)


def audit(action: str, command: Command, at: datetime) -> AuditEntry:
    return command_audit(
        action,
        command_id=command.command_id,
        vehicle_id=command.vehicle_id,
        user_id=command.user_id,
        at=at,
        details={"command_name": command.command_name},
        ip_address="127.0.0.1",
        user_agent="bench",
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=200, help="commands per transaction")
    parser.add_argument(
        "--compare-plans",
        action="store_true",
        help="the store's generic plans against PostgreSQL's default, in alternating rounds",
    )
    parser.add_argument("--batches", default="1,3,20,100", help="with --compare-plans")
    args = parser.parse_args()

    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute('DROP DATABASE IF EXISTS "sovd_bench_writes" WITH (FORCE)')
    await admin.execute('CREATE DATABASE "sovd_bench_writes"')
    await admin.close()
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/sovd_bench_writes"
    await migrate(dsn)
    store = PostgresStore(await create_pool(dsn))
    now = datetime.now(UTC)
    user = User(new_id(), "bench", "x", "engineer", None, now)
    await store.users.add(user)
    vehicles = [
        Vehicle(new_id(), f"WVWZZZ1KZ0W{n:06d}", "VW", "Golf", 2020, "connected", None)
        for n in range(10)
    ]
    await store.vehicles.upsert_many(vehicles)

    async def one_round(target: PostgresStore, count: int) -> None:
        at = datetime.now(UTC)
        commands = [
            Command(
                new_id(),
                user.user_id,
                vehicles[n % len(vehicles)].vehicle_id,
                "ReadDTC",
                {"ecuAddress": "0x01"},
                "pending",
                at,
            )
            for n in range(count)
        ]
        await target.write_batch(
            WriteBatch(
                new_commands=commands, audit=[audit("command_submitted", c, at) for c in commands]
            )
        )
        await target.write_batch(
            WriteBatch(
                status_changes=[
                    change
                    for c in commands
                    for change in (
                        StatusChange(c.command_id, "in_progress"),
                        StatusChange(c.command_id, "completed", None, at),
                    )
                ],
                responses=[
                    Response(new_id(), c.command_id, PAYLOAD, 1, True, at) for c in commands
                ],
                audit=[audit("command_completed", c, at) for c in commands],
            )
        )

    if args.compare_plans:
        # A running server's tables hold rows and statistics; on empty ones the planner's
        # choice differs.
        for _ in range(100):
            await one_round(store, 200)
        await store.pool.execute("ANALYZE")
        await store.close()
        await compare_plans(dsn, [int(b) for b in args.batches.split(",")], one_round)
        return
    for _ in range(5):  # warm up
        await one_round(store, args.batch)
    cpu_before, started = postgres_cpu_s(), time.perf_counter()
    for _ in range(args.commands // args.batch):
        await one_round(store, args.batch)
    elapsed, cpu = time.perf_counter() - started, postgres_cpu_s() - cpu_before
    print(
        f"{args.commands} commands, {args.batch} per transaction: "
        f"{args.commands / elapsed:,.0f} commands/s, "
        f"PostgreSQL CPU {cpu / args.commands * 1e6:.0f} us per command"
    )
    await store.close()


async def compare_plans(
    dsn: str,
    batches: list[int],
    one_round: Callable[[PostgresStore, int], Awaitable[None]],
    rounds: int = 40,
) -> None:
    stores = {
        "generic plans (the store's setting)": PostgresStore(
            await create_pool(dsn, min_size=1, max_size=1)
        ),
        "plan_cache_mode auto (PostgreSQL's default)": PostgresStore(
            await create_pool(dsn, min_size=1, max_size=1, settings={"plan_cache_mode": "auto"})
        ),
    }
    backends = {}
    for label, store in stores.items():
        async with store.pool.acquire() as conn:
            backends[label] = conn.get_server_pid()
    for batch in batches:
        per_round = max(1, 60 // batch)
        cpu = dict.fromkeys(stores, 0.0)
        for _ in range(rounds):
            for label, store in stores.items():
                before = cpu_seconds()
                for _ in range(per_round):
                    await one_round(store, batch)
                cpu[label] += used(before, cpu_seconds(), of_process(backends[label]))
        commands = rounds * per_round * batch
        print(
            f"{batch} per transaction, PostgreSQL CPU per command: "
            + ", ".join(f"{label} {cpu[label] / commands * 1e6:.0f} us" for label in stores),
            flush=True,
        )
    for store in stores.values():
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
