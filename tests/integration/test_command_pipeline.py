"""The command pipeline on real PostgreSQL and Redis (and on the embedded default):
POST -> actor -> group commit -> Redis event -> REST and WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import attrs
import orjson
import pytest
import redis.asyncio as redis
from aiohttp import WSMsgType
from structlog.testing import capture_logs

from db.events import EventBus, InProcessBus
from db.memory import MemoryStore
from db.postgres import PostgresStore
from db.redis_bus import RedisBus
from db.repositories import Store
from sovd.fleet import VehicleIdentity
from tests.support.api import Client, bearer, seed_users, token_for
from web.config import Config
from web.typedefs import actors_key, hub_key

MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture(
    params=["embedded", pytest.param("postgresql+redis", marks=pytest.mark.integration)]
)
def backends(request: pytest.FixtureRequest) -> tuple[Store, EventBus]:
    if request.param == "embedded":
        return MemoryStore(), InProcessBus()
    store: PostgresStore = request.getfixturevalue("pg_store")
    bus: RedisBus = request.getfixturevalue("redis_bus")
    return store, bus


@pytest.fixture
async def client(
    make_client: MakeClient, backends: tuple[Store, EventBus], config: Config
) -> Client:
    store, bus = backends
    await seed_users(store, config)
    return await make_client(store=store, bus=bus)


def vehicles(client: Client) -> list[VehicleIdentity]:
    return client.app[actors_key].vehicles()


def ecu_of(vehicle: VehicleIdentity) -> str:
    return f"0x{vehicle.profile.ecus[0].address:02X}"


async def post_command(
    client: Client, token: str, vehicle: VehicleIdentity, name: str, **params: Any
) -> Any:
    body = {
        "vehicle_id": str(vehicle.vehicle_id),
        "command_name": name,
        "command_params": {"ecuAddress": ecu_of(vehicle), **params},
    }
    return await client.post("/api/v1/commands", json=body, headers=bearer(token))


async def finished(client: Client, token: str, command_id: str) -> dict[str, Any]:
    """Follows the command's stream to its terminal event and returns the command."""
    async with client.ws_connect(f"/ws/responses/{command_id}?token={token}") as ws:
        while True:
            message = await asyncio.wait_for(ws.receive(), 10)
            if message.type != WSMsgType.TEXT:
                break
        assert ws.close_code == 1000
    response = await client.get(f"/api/v1/commands/{command_id}", headers=bearer(token))
    body: dict[str, Any] = await response.json()
    return body


async def test_post_answers_202_at_once_and_the_command_completes(client: Client) -> None:
    token = await token_for(client, "alice")
    vehicle = vehicles(client)[0]
    with capture_logs() as logs:
        response = await post_command(client, token, vehicle, "ReadDTC")
        assert response.status == 202
        accepted = await response.json()
        assert accepted["status"] == "pending"
        assert accepted["vehicle_id"] == str(vehicle.vehicle_id)
        assert response.headers["Location"] == f"/api/v1/commands/{accepted['command_id']}"
        assert accepted["stream_url"].endswith(f"/ws/responses/{accepted['command_id']}")
        assert accepted["stream_url"].startswith("ws://")

        command = await finished(client, token, accepted["command_id"])
    assert command["status"] == "completed"
    assert command["completed_at"] is not None
    responses = await (
        await client.get(
            f"/api/v1/commands/{accepted['command_id']}/responses", headers=bearer(token)
        )
    ).json()
    assert [r["sequence_number"] for r in responses] == [1]
    assert responses[0]["is_final"] is True
    assert "dtcs" in responses[0]["response_payload"]
    assert responses[0]["response_payload"]["udsResponse"].startswith("59")
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []


async def test_read_clear_read_give_distinct_payloads_and_clear_really_clears(
    client: Client,
) -> None:
    token = await token_for(client, "alice")
    vehicle = vehicles(client)[0]  # holds P0420 at start with seed 0
    payloads = []
    for name, params in (
        ("ReadDTC", {}),
        ("ClearDTC", {}),
        ("ReadDTC", {}),
        ("ReadDataByID", {"dataId": "0xF190"}),
    ):
        response = await post_command(client, token, vehicle, name, **params)
        assert response.status == 202, await response.text()
        command_id = (await response.json())["command_id"]
        assert (await finished(client, token, command_id))["status"] == "completed"
        rows = await (
            await client.get(f"/api/v1/commands/{command_id}/responses", headers=bearer(token))
        ).json()
        payloads.append(rows[-1]["response_payload"])
    before, cleared, after, vin = payloads
    assert before["dtcs"], "the first demo vehicle starts with stored DTCs"
    assert "clearedCount" in cleared
    assert after["dtcs"] == []
    assert cleared["clearedCount"] == len(before["dtcs"])
    assert vin["value"] == vehicle.vin
    assert len({str(p) for p in payloads}) == 4


async def test_negative_reply_fails_the_command_with_the_nrc(client: Client) -> None:
    token = await token_for(client, "alice")
    response = await post_command(
        client, token, vehicles(client)[0], "ReadDataByID", dataId="0x1234"
    )
    command = await finished(client, token, (await response.json())["command_id"])
    assert command["status"] == "failed"
    assert "0x31" in command["error_message"]


@pytest.mark.integration
async def test_events_reach_a_plain_redis_subscriber(
    make_client: MakeClient,
    pg_store: PostgresStore,
    redis_bus: RedisBus,
    redis_url: str,
    config: Config,
) -> None:
    """As `SUBSCRIBE response:*` in redis-cli would see them, in order, after the commit."""
    await seed_users(pg_store, config)
    client = await make_client(store=pg_store, bus=redis_bus)
    token = await token_for(client, "alice")
    listener = redis.Redis.from_url(redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe("response:*")
    try:
        response = await post_command(client, token, vehicles(client)[2], "ReadDTC")
        command_id = (await response.json())["command_id"]
        events: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + 10
        while not events or events[-1].get("status") != "completed":
            assert asyncio.get_running_loop().time() < deadline, f"stuck after {events}"
            message = await pubsub.get_message(timeout=1)
            if message is None:  # a subscription confirmation, or nothing yet
                continue
            assert message["channel"].decode() == f"response:{command_id}"
            events.append(orjson.loads(message["data"]))
        stored = await pg_store.commands.get(UUID(command_id))
        assert stored is not None and stored.status == "completed"
    finally:
        await pubsub.aclose()
        await listener.aclose()
    assert [(e["event"], e.get("status")) for e in events] == [
        ("status", "pending"),
        ("status", "in_progress"),
        ("response", None),
        ("status", "completed"),
    ]
    assert {e["vehicle_id"] for e in events} == {str(vehicles(client)[2].vehicle_id)}
    assert events[2]["sequence_number"] == 1 and events[2]["is_final"] is True
    assert events[3]["completed_at"] is not None


async def test_a_stream_joined_while_the_command_runs_starts_with_in_progress(
    make_client: MakeClient, backends: tuple[Store, EventBus], config: Config
) -> None:
    store, bus = backends
    await seed_users(store, config)
    slow = attrs.evolve(config.simulation, latency_ms=(1500, 1500))
    client = await make_client(store=store, bus=bus, simulation=slow)
    token = await token_for(client, "alice")
    accepted = await (await post_command(client, token, vehicles(client)[0], "ReadDTC")).json()
    command_id = accepted["command_id"]
    deadline = asyncio.get_running_loop().time() + 10
    while True:  # until the vehicle has begun answering
        command = await client.get(f"/api/v1/commands/{command_id}", headers=bearer(token))
        if (await command.json())["status"] == "in_progress":
            break
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)

    events = []
    async with client.ws_connect(f"/ws/responses/{command_id}?token={token}") as ws:
        async for message in ws:
            events.append(orjson.loads(message.data))

    assert [(e["event"], e.get("status")) for e in events] == [
        ("status", "in_progress"),
        ("response", None),
        ("status", "completed"),
    ]


async def test_a_vehicle_feed_gets_each_event_once(client: Client) -> None:
    """Locally published events reach this process's listeners directly; their echo from
    Redis is skipped, so nothing arrives twice."""
    token = await token_for(client, "alice")
    vehicle = vehicles(client)[3]
    async with client.ws_connect(f"/ws/vehicles/{vehicle.vehicle_id}?token={token}") as feed:
        accepted = await (await post_command(client, token, vehicle, "ReadDTC")).json()
        events: list[dict[str, Any]] = []
        while not events or events[-1].get("status") != "completed":
            message = await asyncio.wait_for(feed.receive(), 10)
            events.append(orjson.loads(message.data))
        await post_command(client, token, vehicle, "ReadDTC")  # a later event ends the wait
        later = orjson.loads((await asyncio.wait_for(feed.receive(), 10)).data)

    assert [(e["event"], e.get("status")) for e in events] == [
        ("status", "pending"),
        ("status", "in_progress"),
        ("response", None),
        ("status", "completed"),
    ]
    assert {e["command_id"] for e in events} == {accepted["command_id"]}
    assert all("o" not in e for e in events)
    assert later["command_id"] != accepted["command_id"]


async def test_a_batched_fleet_feed_sends_every_event_in_arrays_in_order(client: Client) -> None:
    token = await token_for(client, "root")
    refused = await client.get(f"/ws/fleet?batch=maybe&token={token}")
    assert refused.status == 422
    await asyncio.wait_for(client.app[hub_key].connected.wait(), 5)
    async with client.ws_connect(f"/ws/fleet?batch=true&token={token}") as feed:
        accepted = [
            await (await post_command(client, token, vehicle, "ReadDTC")).json()
            for vehicle in vehicles(client)[:5]
        ]
        wanted = {command["command_id"] for command in accepted}
        events: list[dict[str, Any]] = []
        # Redis is shared: the feed may also carry other servers' commands.
        while sum(e.get("status") == "completed" for e in events) < len(wanted):
            message = await asyncio.wait_for(feed.receive(), 10)
            assert message.type == WSMsgType.TEXT
            batch = orjson.loads(message.data)
            assert isinstance(batch, list) and batch
            events.extend(e for e in batch if e.get("command_id") in wanted)

    for command_id in wanted:
        own = [e.get("status") or e["event"] for e in events if e["command_id"] == command_id]
        assert own == ["pending", "in_progress", "response", "completed"]
