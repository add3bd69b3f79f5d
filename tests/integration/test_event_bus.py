"""One contract, two buses: in-process and real Redis pub/sub."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import pytest

from db.events import BusUnavailable, EventBus
from db.redis_bus import RedisBus, _command
from tests.support.proxy import CuttableProxy


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


@pytest.mark.integration
async def test_a_refused_subscription_is_reported_not_retried(redis_url: str) -> None:
    """Credentials go to Redis first; its refusal surfaces as BusUnavailable."""
    bus = RedisBus.from_url(redis_url.replace("redis://", "redis://:not-the-password@", 1))
    try:
        with pytest.raises(BusUnavailable, match="refused"):
            async with bus.subscribe("response:*"):
                pass
    finally:
        await bus.close()


@pytest.mark.integration
async def test_the_first_publish_after_a_redis_restart_is_delivered(redis_url: str) -> None:
    """The publishing connection a restart closed is noticed before it is written to, so
    the events go out on a new one instead of being lost (nobody would hear of them)."""
    port = urlsplit(redis_url).port or 6379
    proxy = CuttableProxy("127.0.0.1", port)
    await proxy.start()
    bus = RedisBus.from_url(redis_url.replace(f":{port}", f":{proxy.port}"))
    listener = RedisBus.from_url(redis_url)
    try:
        await bus.publish_many([("response:restart", {"n": 1})])
        await proxy.cut()  # Redis goes away: every connection to it is reset
        await proxy.restore()
        async with listener.subscribe("response:restart") as events:
            await bus.publish_many([("response:restart", {"n": 2})])
            assert await asyncio.wait_for(anext(events), 5) == ("response:restart", {"n": 2})
    finally:
        await bus.close()
        await listener.close()
        await proxy.stop()


async def lost_cancellations(operation: Callable[[], Coroutine[Any, Any, None]]) -> int:
    """Runs `operation` 200 times and cancels each run after 0 to 11 turns of the event loop,
    so that some cancellations land as a read from Redis completes; counts the runs that
    took their cancellation yet finished normally."""
    took = lost = 0
    for attempt in range(200):
        run = asyncio.create_task(operation())
        for _ in range(attempt % 12):
            await asyncio.sleep(0)  # picks the moment of the cancellation
        if run.cancel():
            took += 1
            try:
                await run
                lost += 1
            except asyncio.CancelledError:
                pass
    assert took > 0
    return lost


@pytest.mark.integration
async def test_a_cancelled_publish_ends_cancelled(redis_bus: RedisBus) -> None:
    batch = [(f"cancel-{uuid.uuid4().hex}", {"n": 1})] * 200
    assert await lost_cancellations(lambda: redis_bus.publish_many(batch)) == 0


@pytest.mark.integration
async def test_a_subscription_cancelled_while_it_is_made_ends_cancelled(
    redis_bus: RedisBus,
) -> None:
    async def subscribe() -> None:
        async with redis_bus.subscribe(f"cancel-{uuid.uuid4().hex}:*"):
            pass

    assert await lost_cancellations(subscribe) == 0


def test_commands_are_encoded_as_resp_arrays() -> None:
    assert _command("PSUBSCRIBE", "response:*") == (
        b"*2\r\n$10\r\nPSUBSCRIBE\r\n$10\r\nresponse:*\r\n"
    )
