from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

from actors.sink import ChunkReported, Finished, RecordingSink, Started

AT = datetime(2025, 1, 1, tzinfo=UTC)


async def test_recording_sink_keeps_events_in_order() -> None:
    sink = RecordingSink()
    command_id, vehicle_id = uuid4(), uuid4()

    await sink.command_started(command_id, vehicle_id, AT)
    await sink.command_chunk(command_id, vehicle_id, 1, {"a": 1}, True, AT)
    await sink.command_finished(command_id, vehicle_id, "completed", None, AT)

    assert sink.events == [
        Started(command_id, vehicle_id, AT),
        ChunkReported(command_id, vehicle_id, 1, {"a": 1}, True, AT),
        Finished(command_id, vehicle_id, "completed", None, AT),
    ]
    assert sink.for_command(uuid4()) == []


async def test_wait_finished_before_and_after_the_fact() -> None:
    sink = RecordingSink()
    command_id, vehicle_id = uuid4(), uuid4()

    waiter = asyncio.ensure_future(sink.wait_finished(command_id))
    await asyncio.sleep(0)
    assert not waiter.done()
    await sink.command_finished(
        command_id, vehicle_id, "failed", "NRC 0x22 conditionsNotCorrect", AT
    )

    assert (await waiter).error_message == "NRC 0x22 conditionsNotCorrect"
    assert (await sink.wait_finished(command_id)).status == "failed"
