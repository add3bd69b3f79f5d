"""One contract, two buses: in-process and real Redis pub/sub."""

from __future__ import annotations

import asyncio

from db.events import EventBus


async def test_pattern_subscriber_gets_matching_events_in_order(bus: EventBus) -> None:
    async with bus.subscribe("response:*") as events:
        await bus.publish_many(
            [
                ("response:a", {"sequence_number": 1}),
                ("vehicle:x", {"ignored": True}),
                ("response:b", {"sequence_number": 1}),
                ("response:a", {"sequence_number": 2, "is_final": True}),
            ]
        )
        received = [await asyncio.wait_for(anext(events), 5) for _ in range(3)]
    assert received == [
        ("response:a", {"sequence_number": 1}),
        ("response:b", {"sequence_number": 1}),
        ("response:a", {"sequence_number": 2, "is_final": True}),
    ]


async def test_two_subscribers_each_get_every_event(bus: EventBus) -> None:
    async with bus.subscribe("response:*") as first, bus.subscribe("response:c") as second:
        await bus.publish_many([("response:c", {"n": 1})])
        assert await asyncio.wait_for(anext(first), 5) == ("response:c", {"n": 1})
        assert await asyncio.wait_for(anext(second), 5) == ("response:c", {"n": 1})


async def test_ping_answers(bus: EventBus) -> None:
    await bus.ping()
