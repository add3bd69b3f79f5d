"""Following a command another node runs: stopping ends every follower."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from db.events import InProcessBus
from db.memory import MemoryStore
from sovd.records import Command
from web.commands.outcomes import EventOutcomes
from web.commands.pipeline import response_channel
from web.hub import EventHub


async def test_stop_ends_a_follower_whose_event_arrives_with_the_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command never ends here, so a follower that lost its cancellation would keep
    stop() waiting for good."""
    store = MemoryStore()
    hub = EventHub(InProcessBus())
    outcomes = EventOutcomes(hub, store)
    looked_up = asyncio.Event()
    lookup = store.commands.get

    async def get(command_id: uuid.UUID) -> Command | None:
        looked_up.set()
        return await lookup(command_id)

    monkeypatch.setattr(store.commands, "get", get)
    command_id = uuid.uuid4()
    outcome = outcomes.watch(command_id)
    channel = response_channel(command_id)
    hub.deliver([(channel, {"event": "error"})])
    await looked_up.wait()  # the follower checked the store and waits for events again
    hub.deliver([(channel, {"event": "status", "status": "in_progress"})])
    try:
        await asyncio.wait_for(outcomes.stop(), 1)
    finally:
        await outcomes.stop()
    assert not outcome.done()
    assert hub.listener_count == 0
