"""A connection's plans do not outlive the table sizes they were made for.

The store forces generic plans, made once per connection. One made while `commands` was
empty joins it by a sequential scan; if the connection kept it, every later status update
would read the whole table, however large it grew."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from db import postgres
from db.postgres import PostgresStore, create_pool
from db.repositories import StatusChange, WriteBatch
from tests.conftest import fresh_database
from tests.integration.test_batch_writer import new_command, seed

pytestmark = pytest.mark.integration

GROWN_TO = 20_000
FILL = """
INSERT INTO commands (command_id, user_id, vehicle_id, command_name, command_params, status,
                      submitted_at)
SELECT gen_random_uuid(), $1, $2, 'ReadDTC', '{}', 'pending', now()
FROM generate_series(1, $3)
"""


async def status_update_plan(pool: asyncpg.Pool) -> str:
    """The plan the pool's connection runs a batch of status updates alone with now."""
    async with pool.acquire() as conn:
        prepared = await conn.fetchrow(
            "SELECT name, cardinality(parameter_types) AS parameters"
            " FROM pg_prepared_statements"
            " WHERE starts_with(statement, 'WITH status_changes AS')"
        )
        assert prepared is not None, "the status update was never prepared"
        nulls = ", ".join(["NULL"] * prepared["parameters"])
        rows = await conn.fetch(f'EXPLAIN EXECUTE "{prepared["name"]}" ({nulls})')
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize("lifetime_s", [0.0, 3600.0], ids=["plans expire", "plans kept"])
async def test_status_updates_are_replanned_once_the_table_has_grown(
    monkeypatch: pytest.MonkeyPatch, lifetime_s: float
) -> None:
    monkeypatch.setattr(postgres, "FIRST_PLAN_LIFETIME_S", lifetime_s)
    async with fresh_database() as dsn:
        pool = await create_pool(dsn, min_size=1, max_size=1)
        try:
            store = PostgresStore(pool)
            user, vehicle = await seed(store)
            command = new_command(user, vehicle)
            await store.write_batch(WriteBatch(new_commands=[command]))
            await store.write_batch(
                WriteBatch(status_changes=[StatusChange(command.command_id, "in_progress")])
            )
            assert "Seq Scan on commands" in await status_update_plan(pool)

            await pool.execute(FILL, user.user_id, vehicle.vehicle_id, GROWN_TO)
            await store.write_batch(
                WriteBatch(status_changes=[StatusChange(uuid.uuid4(), "in_progress")])
            )
            plan = await status_update_plan(pool)
        finally:
            await pool.close()
    if lifetime_s == 0.0:
        assert "Index Scan using commands_pkey" in plan, plan
        assert "Seq Scan on commands" not in plan, plan
    else:
        # The control: a plan nothing drops is the one made on the empty table.
        assert "Seq Scan on commands" in plan, plan
