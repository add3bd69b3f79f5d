"""The actor system's sink: a command's rows reach the writer in order, and a command that
pauses has its `in_progress` written and published before it finishes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs
import pytest
from prometheus_client import CollectorRegistry

from db.events import Event
from db.memory import MemoryStore
from db.repositories import StoreUnavailable, WriteBatch
from db.writer import BatchWriter
from sovd.records import Command, User, Vehicle
from web.commands.pipeline import CommandPipeline, Tracked
from web.metrics import Metrics

NOW = datetime(2026, 11, 1, tzinfo=UTC)


async def stored_command(store: MemoryStore) -> Command:
    user = User(uuid.uuid4(), "sink", "h", "engineer", None, NOW)
    vehicle = Vehicle(uuid.uuid4(), "WVWZZZ1JZ3W386752", "VW", "Golf", 2020, "connected", None)
    command = Command(uuid.uuid4(), user.user_id, vehicle.vehicle_id, "ReadDTC", {}, "pending", NOW)
    await store.users.add(user)
    await store.vehicles.upsert_many([vehicle])
    await store.commands.add(command)
    return command


async def test_a_paused_command_is_in_progress_for_readers_before_it_finishes() -> None:
    store = MemoryStore()
    command = await stored_command(store)
    published: list[str] = []
    seen_in_progress = asyncio.Event()

    async def publish(events: Sequence[Event]) -> None:
        for _, message in events:
            published.append(message.get("status") or message["event"])
            if message.get("status") == "in_progress":
                seen_in_progress.set()

    writer = BatchWriter(store, publish)
    writer.start()
    pipeline = CommandPipeline(writer, Metrics(CollectorRegistry()))
    pipeline.track(command)
    try:
        await pipeline.command_started(command.command_id, command.vehicle_id, NOW)
        await asyncio.wait_for(seen_in_progress.wait(), 5)
        stored = await store.commands.get(command.command_id)
        assert stored is not None and stored.status == "in_progress"

        await pipeline.command_chunk(
            command.command_id, command.vehicle_id, 1, {"dtcs": []}, True, NOW
        )
        await pipeline.command_finished(
            command.command_id, command.vehicle_id, "completed", None, NOW
        )
        pipeline.flush()
    finally:
        await writer.stop()
    assert published == ["in_progress", "response", "completed"]
    stored = await store.commands.get(command.command_id)
    assert stored is not None and stored.status == "completed"
    assert [
        r.sequence_number for r in await store.responses.list_for_command(command.command_id)
    ] == [1]


async def test_a_read_whose_row_was_dropped_leaves_no_rows_events_or_counts() -> None:
    """A read runs while its row is being stored. If that row is dropped (its client heard
    503), what the read reports is neither written, published nor counted."""
    store = MemoryStore()
    command = await stored_command(store)
    unstored = attrs.evolve(command, command_id=uuid.uuid4())
    published: list[Event] = []

    async def publish(events: Sequence[Event]) -> None:
        published.extend(events)

    writer = BatchWriter(store, publish)
    metrics = Metrics(CollectorRegistry())
    pipeline = CommandPipeline(writer, metrics)
    accept = writer.submit(WriteBatch(new_commands=[unstored]), give_up_s=0.01)
    assert accept.done is not None
    with pytest.raises(StoreUnavailable):
        await accept.done
    pipeline.track(
        unstored,
        attrs.evolve(
            Tracked.of(unstored.command_id, unstored.vehicle_id, "ReadDTC"), accept=accept
        ),
    )
    pipeline.await_outcome(unstored.command_id)
    await pipeline.command_started(unstored.command_id, unstored.vehicle_id, NOW)
    await pipeline.command_chunk(unstored.command_id, unstored.vehicle_id, 1, {}, True, NOW)
    await pipeline.command_finished(
        unstored.command_id, unstored.vehicle_id, "completed", None, NOW
    )
    pipeline.flush()

    assert writer.queued_rows == 0
    assert pipeline.stats.snapshot()["totals"]["accepted"] == 0
    assert pipeline.stats.snapshot()["totals"]["completed"] == 0
    writer.start()
    await writer.stop()
    assert published == []
    assert await store.commands.get(unstored.command_id) is None
