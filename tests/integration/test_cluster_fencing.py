"""Fencing in the store (cluster mode, SPEC §7): a partition's rows are written only under
its current owner's token, in the store and through the batch writer, and a new owner finds
exactly its partition's unfinished commands."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import attrs
import pytest
from structlog.testing import capture_logs

from db.events import Event
from db.postgres import CURRENT_FENCES, SESSION_SETTINGS, PostgresStore, create_pool
from db.repositories import (
    DuplicateKey,
    Fences,
    StaleFence,
    StatusChange,
    Store,
    StoredState,
    WriteBatch,
)
from db.writer import BatchWriter
from sovd.partitions import partition_of
from sovd.records import Command, CommandStatus, User, Vehicle

PARTITIONS = 8
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def vehicle_in(partition: int) -> Vehicle:
    """A vehicle of `partition` (out of PARTITIONS): its id's low 32 bits choose it."""
    high = uuid.uuid4().int & ~0xFFFFFFFF
    vehicle_id = UUID(int=high | (PARTITIONS * 1000 + partition))
    assert partition_of(vehicle_id, PARTITIONS) == partition
    vin = f"WVWZZZ1JZ{partition}W{uuid.uuid4().int % 10**6:06d}"
    return Vehicle(vehicle_id, vin, "VW", "Golf", 2020, "connected", None)


@pytest.fixture
async def fenced(store: Store) -> Store:
    """The store with no partition claimed yet."""
    if isinstance(store, PostgresStore):
        await store.pool.execute("TRUNCATE cluster_fences")
    return store


@pytest.fixture
async def pg_fenced(pg_store: PostgresStore) -> PostgresStore:
    await pg_store.pool.execute("TRUNCATE cluster_fences")
    return pg_store


class Fleet:
    """A user and one vehicle in each of partitions 1 and 2."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.user = User(uuid.uuid4(), "owner", "h", "engineer", None, NOW)
        self.vehicles = {1: vehicle_in(1), 2: vehicle_in(2)}
        self.submitted = 0

    async def seed(self) -> Fleet:
        await self.store.users.add(self.user)
        await self.store.vehicles.upsert_many(list(self.vehicles.values()))
        return self

    def command(self, partition: int, status: CommandStatus = "pending") -> Command:
        self.submitted += 1
        return Command(
            uuid.uuid4(),
            self.user.user_id,
            self.vehicles[partition].vehicle_id,
            "ReadDTC",
            {},
            status,
            NOW + timedelta(seconds=self.submitted),
            completed_at=NOW + timedelta(hours=1) if status in ("completed", "failed") else None,
        )

    async def stored(self, partition: int, status: CommandStatus = "pending") -> Command:
        command = self.command(partition, status)
        await self.store.commands.add(command)
        return command

    async def status_of(self, command: Command) -> str | None:
        found = await self.store.commands.get(command.command_id)
        return None if found is None else found.status


def completion(command: Command) -> WriteBatch:
    return WriteBatch(
        status_changes=[StatusChange(command.command_id, "completed", completed_at=NOW)],
        vehicle_states=[StoredState(command.vehicle_id, {"odometer": 1}, NOW)],
    )


# The store ---------------------------------------------------------------------------------


async def test_a_claim_with_a_newer_token_succeeds_and_an_older_one_is_refused(
    fenced: Store,
) -> None:
    assert await fenced.partition_fence(1) == 0
    assert await fenced.claim_partition(1, 5)
    assert await fenced.partition_fence(1) == 5
    assert not await fenced.claim_partition(1, 3)
    # The same token twice would let two processes write as one owner.
    assert not await fenced.claim_partition(1, 5)
    assert await fenced.partition_fence(1) == 5
    assert await fenced.claim_partition(1, 7)
    assert await fenced.partition_fence(1) == 7
    assert await fenced.partition_fence(2) == 0


async def test_rows_under_the_current_fence_are_written(fenced: Store) -> None:
    fleet = await Fleet(fenced).seed()
    command = fleet.command(1)
    await fenced.claim_partition(1, 4)
    await fenced.write_batch(WriteBatch(new_commands=[command]), {1: 4})
    await fenced.write_batch(completion(command), {1: 4})
    assert await fleet.status_of(command) == "completed"
    assert await fenced.vehicle_states.get(command.vehicle_id) == {"odometer": 1}


@pytest.mark.parametrize(
    "fences",
    [{1: 3}, {1: 4, 2: 1}, {2: 9}],
    ids=["older-token", "one-partition-of-two-stale", "never-claimed"],
)
async def test_rows_under_a_stale_fence_are_refused_and_nothing_is_written(
    fenced: Store, fences: Fences
) -> None:
    fleet = await Fleet(fenced).seed()
    await fenced.claim_partition(1, 3)
    await fenced.claim_partition(1, 4)
    await fenced.claim_partition(2, 2)
    pending = await fleet.stored(1)
    new = fleet.command(2)
    batch = WriteBatch(new_commands=[new], status_changes=completion(pending).status_changes)
    with pytest.raises(StaleFence) as refused:
        await fenced.write_batch(batch, fences)
    stale = {p for p, token in fences.items() if token != {1: 4, 2: 2}[p]}
    assert refused.value.partitions == stale
    assert await fleet.status_of(new) is None
    assert await fleet.status_of(pending) == "pending"


async def test_an_empty_batch_under_a_stale_fence_is_refused_too(fenced: Store) -> None:
    """Both stores answer alike: what rides along with the batch (its events) must not go
    out under a stale token either."""
    await fenced.claim_partition(1, 4)
    await fenced.write_batch(WriteBatch(), {1: 4})
    with pytest.raises(StaleFence):
        await fenced.write_batch(WriteBatch(), {1: 3})


async def test_a_partitions_unfinished_commands_in_submission_order(fenced: Store) -> None:
    fleet = await Fleet(fenced).seed()
    first = await fleet.stored(1, "in_progress")
    await fleet.stored(2)
    await fleet.stored(1, "completed")
    second = await fleet.stored(1)
    await fleet.stored(2, "in_progress")
    await fleet.stored(1, "failed")
    third = await fleet.stored(1, "pending")
    # Stored out of submission order.
    earliest = attrs.evolve(fleet.command(1), submitted_at=NOW)
    await fenced.commands.add(earliest)

    unfinished = await fenced.commands.list_unfinished(1, PARTITIONS)

    assert [c.command_id for c in unfinished] == [
        c.command_id for c in (earliest, first, second, third)
    ]
    assert await fenced.commands.list_unfinished(5, PARTITIONS) == []
    assert len(await fenced.commands.list_unfinished()) == 6


# The batch writer --------------------------------------------------------------------------


class Published:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


def refusals(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "stale_owner_write_refused"]


async def test_a_batch_commits_current_and_unfenced_rows_and_refuses_stale_ones(
    fenced: Store,
) -> None:
    fleet = await Fleet(fenced).seed()
    await fenced.claim_partition(1, 2)
    await fenced.claim_partition(2, 5)  # another node took partition 2 from token 4
    current, stale, unfenced = await fleet.stored(1), await fleet.stored(2), await fleet.stored(1)
    also_stale = await fleet.stored(2)
    published = Published()
    sizes: list[int] = []
    writer = BatchWriter(fenced, published, on_batch=sizes.append)
    writer.start()
    with capture_logs() as logs:
        results = await asyncio.gather(
            writer.commit(completion(current), [("a", {})], fence=(1, 2)),
            writer.commit(completion(stale), [("b", {})], fence=(2, 4)),
            writer.commit(completion(unfenced), [("c", {})]),
            return_exceptions=True,
        )
        writer.enqueue(completion(also_stale), [("d", {})], fence=(2, 4))
        await writer.commit(WriteBatch())
    await writer.stop()

    assert results[0] is None
    assert isinstance(results[1], StaleFence)
    assert results[1].partitions == {2}
    assert results[2] is None
    assert sizes[0] == 2 * len(completion(current))  # one transaction for the rows kept
    assert [await fleet.status_of(c) for c in (current, stale, unfenced, also_stale)] == [
        "completed",
        "pending",
        "completed",
        "pending",
    ]
    assert await fenced.vehicle_states.get(stale.vehicle_id) is None
    assert [channel for channel, _ in published.events] == ["a", "c"]
    assert [(e["partitions"], e["submissions"]) for e in refusals(logs)] == [([2], 1), ([2], 1)]
    assert [e["log_level"] for e in refusals(logs)] == ["warning", "warning"]


async def test_rows_of_an_older_token_batched_with_newer_ones_are_refused(
    fenced: Store,
) -> None:
    fleet = await Fleet(fenced).seed()
    await fenced.claim_partition(1, 1)
    await fenced.claim_partition(1, 2)
    old, new = await fleet.stored(1), await fleet.stored(1)
    writer = BatchWriter(fenced, Published())
    writer.start()
    with capture_logs() as logs:
        results = await asyncio.gather(
            writer.commit(completion(old), fence=(1, 1)),
            writer.commit(completion(new), fence=(1, 2)),
            return_exceptions=True,
        )
    await writer.stop()
    assert isinstance(results[0], StaleFence)
    assert results[1] is None
    assert [await fleet.status_of(c) for c in (old, new)] == ["pending", "completed"]
    assert len(refusals(logs)) == 1


class NewOwnerClaimsAfterARefusal:
    """The real store; right after it refuses a batch for a bad row, another node claims
    partition 1 (its claim lands between the writer's batch and its row-by-row retry)."""

    def __init__(self, store: Store, token: int) -> None:
        self.store = store
        self.token = token
        self.commands = store.commands

    async def write_batch(self, batch: WriteBatch, fences: Fences | None = None) -> None:
        try:
            await self.store.write_batch(batch, fences)
        except DuplicateKey:
            await self.store.claim_partition(1, self.token)
            raise


async def test_a_row_by_row_retry_still_writes_only_under_the_current_fence(
    fenced: Store,
) -> None:
    fleet = await Fleet(fenced).seed()
    await fenced.claim_partition(1, 1)
    fenced_row, neighbour = await fleet.stored(1), await fleet.stored(2)
    duplicate = WriteBatch(new_commands=[fleet.command(2)])
    await fenced.write_batch(duplicate)
    store: Any = NewOwnerClaimsAfterARefusal(fenced, token=2)
    writer = BatchWriter(store, Published())
    writer.start()
    with capture_logs() as logs:
        results = await asyncio.gather(
            writer.commit(completion(fenced_row), fence=(1, 1)),
            writer.commit(duplicate),
            writer.commit(completion(neighbour)),
            return_exceptions=True,
        )
    await writer.stop()
    assert isinstance(results[0], StaleFence)
    assert isinstance(results[1], DuplicateKey)
    assert results[2] is None
    assert [await fleet.status_of(c) for c in (fenced_row, neighbour)] == [
        "pending",
        "completed",
    ]
    assert [e["partitions"] for e in refusals(logs)] == [[1]]


# A paused owner (PostgreSQL) ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def owner_inside_a_batch(
    dsn: str, idle_timeout: str, partition: int
) -> AsyncIterator[asyncpg.Connection]:
    """An owner's session as write_batch leaves it between its fence check and its commit:
    a transaction holding the partition's fence row FOR SHARE."""
    conn = await asyncpg.connect(
        dsn, server_settings={"idle_in_transaction_session_timeout": idle_timeout}
    )
    try:
        await conn.execute("BEGIN")
        assert len(await conn.fetch(CURRENT_FENCES, [partition])) == 1
        yield conn
    finally:
        await conn.close()


async def claim_waiting_on_a_lock(store: PostgresStore) -> None:
    """Returns once some session of this database waits on a lock to claim a partition."""
    query = """
        SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'
            AND query LIKE '%INSERT INTO cluster_fences%'
    """
    for _ in range(200):
        if await store.pool.fetchval(query.strip()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no claim is waiting")


@pytest.mark.integration
async def test_a_new_owners_claim_waits_for_a_batch_being_written_under_the_old_fence(
    pg_fenced: PostgresStore, pg_dsn: str
) -> None:
    """Why write_batch locks the fence (FOR SHARE): the old owner's batch, checked under
    its token, commits before the new owner's claim, so the new owner's recovery sees it."""
    fleet = await Fleet(pg_fenced).seed()
    command = await fleet.stored(1, "in_progress")
    await pg_fenced.claim_partition(1, 1)
    async with owner_inside_a_batch(pg_dsn, "0", partition=1) as old_owner:
        claim = asyncio.create_task(pg_fenced.claim_partition(1, 2))
        await claim_waiting_on_a_lock(pg_fenced)
        assert not claim.done()
        await old_owner.execute(
            "UPDATE commands SET status = 'completed', completed_at = $2 WHERE command_id = $1",
            command.command_id,
            NOW,
        )
        await old_owner.execute("COMMIT")
        assert await asyncio.wait_for(claim, 5)
    assert await pg_fenced.commands.list_unfinished(1, PARTITIONS) == []


@pytest.mark.integration
async def test_a_paused_old_owner_holds_up_a_new_owner_only_briefly(
    pg_fenced: PostgresStore, pg_dsn: str
) -> None:
    """An owner paused inside its batch transaction (stopped process, frozen VM) would
    block the new owner's claim for as long as the pause lasts (the test above, with no
    timeout); PostgreSQL ends the idle transaction instead (here after 300 ms), and the old
    owner, back, finds its token stale."""
    fleet = await Fleet(pg_fenced).seed()
    command = await fleet.stored(1, "in_progress")
    await pg_fenced.claim_partition(1, 1)
    async with owner_inside_a_batch(pg_dsn, "300ms", partition=1) as old_owner:
        ended = asyncio.Event()
        old_owner.add_termination_listener(lambda _conn: ended.set())
        # Paused here: the new owner's claim gets through all the same.
        assert await asyncio.wait_for(pg_fenced.claim_partition(1, 2), 5)
        await asyncio.wait_for(ended.wait(), 5)
    with pytest.raises(StaleFence):
        await pg_fenced.write_batch(completion(command), {1: 1})
    assert await fleet.status_of(command) == "in_progress"


@pytest.mark.integration
async def test_the_store_ends_transactions_left_idle(pg_dsn: str) -> None:
    """The session setting the test above relies on, as the app's pools have it: a bound on
    how long a paused owner can hold up a takeover."""
    assert SESSION_SETTINGS["idle_in_transaction_session_timeout"] == "10s"
    pool = await create_pool(pg_dsn, min_size=1, max_size=1)
    try:
        assert await pool.fetchval("SHOW idle_in_transaction_session_timeout") == "10s"
    finally:
        await pool.close()
