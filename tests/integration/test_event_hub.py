"""The process-wide subscription: fan-out, slow clients, and surviving a Redis outage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from db.events import EventBus
from db.redis_bus import RedisBus
from tests.support.proxy import CuttableProxy
from web.hub import RESYNC, EventHub


@pytest.fixture
async def hub(bus: EventBus) -> AsyncIterator[EventHub]:
    hub = EventHub(bus, client_queue_size=4)
    hub.start()
    await asyncio.wait_for(hub.connected.wait(), 5)
    yield hub
    await hub.stop()


async def test_events_reach_every_listener_of_their_channel(hub: EventHub, bus: EventBus) -> None:
    first, second = hub.listen("response:1"), hub.listen("response:1")
    other = hub.listen("response:2")
    await bus.publish_many([("response:1", {"n": 1}), ("vehicle:9", {"n": 9})])
    assert await asyncio.wait_for(first.next(), 5) == {"n": 1}
    assert await asyncio.wait_for(second.next(), 5) == {"n": 1}
    assert other.pending == 0
    hub.forget(first)
    hub.forget(second)
    hub.forget(other)
    assert hub.listener_count == 0


async def test_vehicle_and_fleet_listeners_see_every_command_of_theirs(
    hub: EventHub, bus: EventBus
) -> None:
    car, van = uuid.uuid4(), uuid.uuid4()
    car_feed, fleet_feed = hub.listen_vehicle(car), hub.listen_everything()
    await bus.publish_many(
        [
            ("response:a", {"vehicle_id": str(car), "n": 1}),
            ("response:b", {"vehicle_id": str(van), "n": 2}),
            ("response:c", {"vehicle_id": str(car), "n": 3}),
        ]
    )
    assert [await asyncio.wait_for(car_feed.next(), 5) for _ in range(2)] == [
        {"vehicle_id": str(car), "n": 1},
        {"vehicle_id": str(car), "n": 3},
    ]
    fleet = [await asyncio.wait_for(fleet_feed.next(), 5) for _ in range(3)]
    assert [m["n"] for m in fleet] == [1, 2, 3]
    hub.forget(car_feed)
    hub.forget(fleet_feed)
    assert hub.listener_count == 0


async def test_a_slow_listener_is_dropped_without_holding_up_others(
    hub: EventHub, bus: EventBus
) -> None:
    slow, quick = hub.listen("response:1"), hub.listen("response:1")
    received = []
    for n in range(10):
        await bus.publish_many([("response:1", {"n": n})])
        received.append(await asyncio.wait_for(quick.next(), 5))
    assert received == [{"n": n} for n in range(10)]
    await asyncio.wait_for(slow.overflowed.wait(), 5)
    assert [await slow.next() for _ in range(4)] == [{"n": n} for n in range(4)]
    assert await slow.next() is None


@pytest.mark.integration
async def test_hub_resubscribes_after_redis_outage_and_asks_for_resync(redis_url: str) -> None:
    parts = urlsplit(redis_url)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    await proxy.start()
    proxied = RedisBus.from_url(redis_url.replace(f":{parts.port}", f":{proxy.port}"))
    direct = RedisBus.from_url(redis_url)
    hub = EventHub(proxied, backoff_s=(0.05,))
    hub.start()
    try:
        await asyncio.wait_for(hub.connected.wait(), 5)
        listener = hub.listen("response:outage")
        await proxy.cut()
        assert await asyncio.wait_for(listener.next(), 5) == RESYNC
        await proxy.restore()
        while hub.reconnects == 0:
            message = await asyncio.wait_for(listener.next(), 10)
            assert message == RESYNC
        await direct.publish_many([("response:outage", {"after": True})])
        message = await asyncio.wait_for(listener.next(), 5)
        while message == RESYNC:
            message = await asyncio.wait_for(listener.next(), 5)
        assert message == {"after": True}
    finally:
        await hub.stop()
        await proxied.close()
        await direct.close()
        if proxy._server is not None:
            await proxy.cut()


@pytest.mark.integration
async def test_every_stop_ends_the_hub_while_events_keep_arriving(redis_bus: RedisBus) -> None:
    """A stop's cancellation that lands while a read of the subscription completes must
    still end the hub task. Under a flood every read completes at once, and a stop right
    after the hub handed out an event meets such a read; the cycle repeats for good measure.
    The channels are this test's own: Redis pub/sub ignores the database number."""
    channel = f"flood-{uuid.uuid4().hex}"
    batch = [(f"{channel}:x", {"event": "status"})] * 50
    flooding = True
    hubs: list[EventHub] = []

    async def flood() -> None:
        while flooding:
            await redis_bus.publish_many(batch)

    flooder = asyncio.create_task(flood())
    try:
        for cycle in range(40):
            hub = EventHub(redis_bus, patterns=(f"{channel}:*",))
            hubs.append(hub)
            reading = hub.listen(f"{channel}:x")
            hub.start()
            await asyncio.wait_for(reading.next(), 5)  # the hub is reading the flood
            await hub.stop(timeout_s=1.0)
            assert not hub.running, f"stop {cycle + 1} left the hub running"
    finally:
        flooding = False
        await flooder
        for hub in hubs:
            await hub.stop()  # a quiet subscription ends on cancellation, fixed or not
