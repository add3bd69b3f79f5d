"""Group commit on both stores: many submissions share transactions, a bad row fails alone,
events follow commits, and an outage delays rows without losing them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import attrs
import pytest

from db.events import Event
from db.postgres import PostgresStore, create_pool
from db.repositories import StatusChange, Store, StoreUnavailable, WriteBatch
from db.writer import BatchWriter
from sovd.records import Command, Response, User, Vehicle
from tests.support.proxy import CuttableProxy

NOW = datetime(2026, 11, 1, tzinfo=UTC)


async def seed(store: Store) -> tuple[User, Vehicle]:
    user = User(uuid.uuid4(), "writer", "h", "engineer", None, NOW)
    vehicle = Vehicle(uuid.uuid4(), "WVWZZZ1JZ3W386752", "VW", "Golf", 2020, "connected", None)
    await store.users.add(user)
    await store.vehicles.upsert_many([vehicle])
    return user, vehicle


def new_command(user: User, vehicle: Vehicle) -> Command:
    return Command(uuid.uuid4(), user.user_id, vehicle.vehicle_id, "ReadDTC", {}, "pending", NOW)


def completion(command: Command) -> WriteBatch:
    return WriteBatch(
        status_changes=[
            StatusChange(command.command_id, "in_progress"),
            StatusChange(command.command_id, "completed", completed_at=NOW),
        ],
        responses=[Response(uuid.uuid4(), command.command_id, {"dtcs": []}, 1, True, NOW)],
    )


class Recorder:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.published: list[Event] = []
        self.status_at_publish: list[str] = []

    async def publish(self, events: Sequence[Event]) -> None:
        for channel, _message in events:
            command = await self.store.commands.get(uuid.UUID(channel.split(":", 1)[1]))
            assert command is not None
            self.status_at_publish.append(command.status)
        self.published.extend(events)


async def store_behind_proxy(pg_dsn: str) -> tuple[CuttableProxy, PostgresStore]:
    """A PostgreSQL store on one connection through a proxy the test can cut."""
    parts = urlsplit(pg_dsn)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    proxied = pg_dsn.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    return proxy, PostgresStore(await create_pool(proxied, min_size=1, max_size=1))


async def test_many_submissions_share_few_transactions(store: Store) -> None:
    user, vehicle = await seed(store)
    recorder = Recorder(store)
    batch_sizes: list[int] = []
    writer = BatchWriter(store, recorder.publish, on_batch=batch_sizes.append)
    writer.start()
    commands = [new_command(user, vehicle) for _ in range(200)]
    await asyncio.gather(*(writer.commit(WriteBatch(new_commands=[c])) for c in commands))
    await asyncio.gather(
        *(
            writer.commit(completion(c), [(f"response:{c.command_id}", {"event": "status"})])
            for c in commands
        )
    )
    await writer.stop()

    assert sum(batch_sizes) == 200 * 4
    assert len(batch_sizes) < 40, batch_sizes
    for command in commands:
        stored = await store.commands.get(command.command_id)
        assert stored is not None and stored.status == "completed"
        assert len(await store.responses.list_for_command(command.command_id)) == 1
    assert len(recorder.published) == 200
    assert set(recorder.status_at_publish) == {"completed"}


class HeldBus:
    """A bus whose publications wait until the test lets each one go."""

    def __init__(self) -> None:
        self.started: list[list[Event]] = []
        self.finished: list[list[Event]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = asyncio.Queue[None]()
        self.publication_started = asyncio.Event()

    async def publish(self, events: Sequence[Event]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.started.append(list(events))
        self.publication_started.set()
        await self.release.get()
        self.finished.append(list(events))
        self.in_flight -= 1


async def test_the_next_batch_commits_while_events_go_out_in_commit_order(store: Store) -> None:
    user, vehicle = await seed(store)
    bus = HeldBus()
    writer = BatchWriter(store, bus.publish)
    writer.start()
    first, second, third = (new_command(user, vehicle) for _ in range(3))

    def event(command: Command) -> Event:
        return (f"response:{command.command_id}", {"event": "status"})

    await writer.commit(WriteBatch(new_commands=[first]), [event(first)])
    await bus.publication_started.wait()
    # the first batch's events are held on the bus; the next batch still commits, and
    # its events wait for the first ones
    await asyncio.wait_for(writer.commit(WriteBatch(new_commands=[second]), [event(second)]), 5)
    assert await store.commands.get(second.command_id) is not None
    third_committed = writer.commit(WriteBatch(new_commands=[third]), [event(third)])
    assert bus.started == [[event(first)]]

    stopped = asyncio.create_task(writer.stop())
    for _ in range(3):
        bus.release.put_nowait(None)
    await stopped
    assert third_committed.done()
    assert [events for batch in bus.finished for events in batch] == [
        event(first),
        event(second),
        event(third),
    ]
    assert bus.most_in_flight == 1


async def test_a_refused_row_fails_alone(store: Store) -> None:
    user, vehicle = await seed(store)
    writer = BatchWriter(store, Recorder(store).publish)
    writer.start()
    good = [new_command(user, vehicle) for _ in range(5)]
    duplicate = good[0]
    results = await asyncio.gather(
        *(writer.commit(WriteBatch(new_commands=[c])) for c in good),
        writer.commit(WriteBatch(new_commands=[duplicate])),
        return_exceptions=True,
    )
    await writer.stop()
    assert results[:5] == [None] * 5
    assert isinstance(results[5], Exception)
    for command in good:
        assert await store.commands.get(command.command_id) is not None


async def test_a_submission_that_gives_up_in_the_queue_is_never_written(store: Store) -> None:
    user, vehicle = await seed(store)
    writer = BatchWriter(store, Recorder(store).publish)
    command = new_command(user, vehicle)
    late: list[str] = []
    done = writer.commit(
        WriteBatch(new_commands=[command]),
        give_up_s=0.01,
        on_late_commit=lambda: late.append("late"),
    )
    with pytest.raises(StoreUnavailable):
        await done
    assert writer.queued_rows == 0
    writer.start()
    await writer.stop()
    assert await store.commands.get(command.command_id) is None
    assert late == []


def status_event(command: Command, status: str) -> Event:
    return (f"response:{command.command_id}", {"event": "status", "status": status})


async def test_rows_taken_with_the_rows_they_require_share_their_transaction(
    store: Store,
) -> None:
    """A command's results queued behind its accepted row are written with it, in one
    transaction, and its events go out in submission order."""
    user, vehicle = await seed(store)
    recorder = Recorder(store)
    batch_sizes: list[int] = []
    writer = BatchWriter(store, recorder.publish, on_batch=batch_sizes.append)
    command = new_command(user, vehicle)
    accept = writer.submit(
        WriteBatch(new_commands=[command]), [status_event(command, "pending")], give_up_s=5
    )
    results = writer.commit(
        completion(command), [status_event(command, "completed")], requires=accept
    )
    writer.start()
    assert accept.done is not None
    await asyncio.gather(accept.done, results)
    await writer.stop()

    assert batch_sizes == [4]
    stored = await store.commands.get(command.command_id)
    assert stored is not None and stored.status == "completed"
    assert [m["status"] for _, m in recorder.published] == ["pending", "completed"]
    assert accept.fate == "stored"


async def test_rows_whose_required_rows_were_dropped_are_dropped_too(store: Store) -> None:
    """The accepted row gave up in the queue: the results behind it are neither written nor
    announced, and rows that require nothing still are."""
    user, vehicle = await seed(store)
    recorder = Recorder(store)
    writer = BatchWriter(store, recorder.publish)
    command, other = new_command(user, vehicle), new_command(user, vehicle)
    accept = writer.submit(WriteBatch(new_commands=[command]), give_up_s=0.01)
    assert accept.done is not None
    with pytest.raises(StoreUnavailable):
        await accept.done
    results = writer.commit(
        completion(command), [status_event(command, "completed")], requires=accept
    )
    writer.enqueue(completion(command), [status_event(command, "completed")], requires=accept)
    unrelated = writer.commit(WriteBatch(new_commands=[other]), [status_event(other, "pending")])
    writer.start()
    with pytest.raises(StoreUnavailable, match="depend"):
        await results
    await unrelated
    await writer.stop()

    assert accept.fate == "dropped"
    assert await store.commands.get(command.command_id) is None
    assert await store.responses.list_for_command(command.command_id) == []
    assert [m["status"] for _, m in recorder.published] == ["pending"]


async def test_rows_whose_required_rows_are_refused_in_the_same_batch_are_dropped(
    store: Store,
) -> None:
    """A batch refused for one bad row is retried submission by submission: a submission
    that requires the bad one is dropped without being tried, its neighbours commit."""
    user, vehicle = await seed(store)
    recorder = Recorder(store)
    writer = BatchWriter(store, recorder.publish)
    good = new_command(user, vehicle)
    await store.commands.add(good)
    bad = attrs.evolve(new_command(user, vehicle), command_id=good.command_id)  # duplicate id
    neighbour = new_command(user, vehicle)
    accept = writer.submit(WriteBatch(new_commands=[bad]))
    dependent = writer.commit(
        WriteBatch(responses=[Response(uuid.uuid4(), bad.command_id, {"x": 1}, 1, True, NOW)]),
        [status_event(bad, "completed")],
        requires=accept,
    )
    fine = writer.commit(WriteBatch(new_commands=[neighbour]), [status_event(neighbour, "pending")])
    writer.start()
    results = await asyncio.gather(accept.done or fine, dependent, fine, return_exceptions=True)
    await writer.stop()

    assert not isinstance(results[0], StoreUnavailable) and isinstance(results[0], Exception)
    assert isinstance(results[1], StoreUnavailable), results
    assert results[2] is None
    assert await store.responses.list_for_command(good.command_id) == []
    assert await store.commands.get(neighbour.command_id) is not None
    assert [m["status"] for _, m in recorder.published] == ["pending"]


@pytest.mark.integration
async def test_an_outage_answers_the_impatient_and_reports_their_late_commit(
    pg_store: PostgresStore, pg_dsn: str
) -> None:
    """A caller that asked not to wait through an outage hears StoreUnavailable at once; rows
    that were already being written still commit afterwards, and the caller learns it."""
    user, vehicle = await seed(pg_store)
    proxy, store = await store_behind_proxy(pg_dsn)
    writer = BatchWriter(store, Recorder(pg_store).publish, retry_delays_s=(0.02,))
    writer.start()
    late = asyncio.Event()
    try:
        await proxy.cut()
        command = new_command(user, vehicle)
        done = writer.commit(
            WriteBatch(new_commands=[command]), give_up_s=60, on_late_commit=late.set
        )
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(done, 10)
        assert writer.outage.is_set()
        with pytest.raises(StoreUnavailable):
            await writer.commit(WriteBatch(new_commands=[new_command(user, vehicle)]), give_up_s=60)
        await proxy.restore()
        await asyncio.wait_for(late.wait(), 10)
        assert await pg_store.commands.get(command.command_id) is not None
    finally:
        await writer.stop()
        await store.close()
        await proxy.stop()


@pytest.mark.integration
async def test_outage_delays_rows_without_losing_them(pg_store: PostgresStore, pg_dsn: str) -> None:
    user, vehicle = await seed(pg_store)
    proxy, store = await store_behind_proxy(pg_dsn)
    writer = BatchWriter(store, Recorder(pg_store).publish, retry_delays_s=(0.02,))
    writer.start()
    try:
        await proxy.cut()
        command = new_command(user, vehicle)
        done = writer.commit(WriteBatch(new_commands=[command]))
        await asyncio.wait_for(writer.outage.wait(), 10)
        assert not done.done()
        await proxy.restore()
        await asyncio.wait_for(done, 10)
        assert await pg_store.commands.get(command.command_id) is not None
    finally:
        await writer.stop()
        await store.close()
        await proxy.stop()


async def test_store_connections_plan_each_statement_once(pg_dsn: str) -> None:
    """The batch statement is planned once per connection, not at every execution
    (`db.postgres.SESSION_SETTINGS`); a benchmark may ask for PostgreSQL's default."""
    store = PostgresStore(await create_pool(pg_dsn, min_size=1, max_size=1))
    default = await create_pool(
        pg_dsn, min_size=1, max_size=1, settings={"plan_cache_mode": "auto"}
    )
    try:
        assert await store.pool.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        assert await default.fetchval("SHOW plan_cache_mode") == "auto"
    finally:
        await store.close()
        await default.close()
