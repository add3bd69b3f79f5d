"""A command stream whose events never come: after a quiet period it re-reads storage, sends
the stored replies and terminal status and closes with 1000; with events flowing beside its
re-reads, nothing reaches the client twice. On the embedded default, on PostgreSQL, and on
PostgreSQL with Redis, where the events come from another process through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

import attrs
import pytest
from aiohttp import ClientWebSocketResponse, WSCloseCode, WSMsgType

from db.events import EventBus
from db.redis_bus import RedisBus
from db.repositories import StatusChange, Store, WriteBatch
from sovd.records import Command, CommandStatus, Response, new_id, utc_now
from tests.support.api import Backend, Client, bearer, command_body, seed_users, token_for
from web.commands import stream
from web.commands.pipeline import response_channel, response_message, status_message
from web.config import Config
from web.typedefs import actors_key, hub_key

MakeClient = Callable[..., Awaitable[Client]]

QUIET_S = 0.2
# How long a test waits for a frame: far beyond QUIET_S, far below a hang.
WAIT_S = 5.0


@pytest.fixture(autouse=True)
def quick_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "QUIET_RECHECK_S", QUIET_S)


@pytest.fixture
async def users(backend: Backend, config: Config) -> dict[str, UUID]:
    return await seed_users(backend.store, config)


@pytest.fixture
async def client(make_client: MakeClient, backend: Backend, users: dict[str, UUID]) -> Client:
    client = await make_client(store=backend.store, bus=backend.bus)
    await asyncio.wait_for(client.app[hub_key].connected.wait(), WAIT_S)
    return client


@pytest.fixture
async def elsewhere(request: pytest.FixtureRequest, backend: Backend) -> AsyncIterator[EventBus]:
    """The bus as another process publishes on it. A Redis bus skips what its own process
    published (that process's listeners had it already), so the other process gets its own."""
    if not isinstance(backend.bus, RedisBus):
        yield backend.bus
        return
    bus = RedisBus.from_url(request.getfixturevalue("redis_url"))
    yield bus
    await bus.close()


class OtherNode:
    """Runs a command the way a cluster node does: commits its rows, then publishes its
    events, unless it dies in between."""

    def __init__(self, store: Store, bus: EventBus, command: Command) -> None:
        self.store = store
        self.bus = bus
        self.command = command
        self.responses: list[Response] = []

    def reply(self, sequence_number: int, is_final: bool = False) -> Response:
        payload = {"progress": sequence_number, "final": is_final}
        response = Response(
            new_id(), self.command.command_id, payload, sequence_number, is_final, utc_now()
        )
        self.responses.append(response)
        return response

    def status(self, status: CommandStatus) -> StatusChange:
        terminal = status in ("completed", "failed", "timed_out")
        return StatusChange(self.command.command_id, status, None, utc_now() if terminal else None)

    async def commit(self, *rows: Response | StatusChange) -> None:
        await self.store.write_batch(
            WriteBatch(
                status_changes=[r for r in rows if isinstance(r, StatusChange)],
                responses=[r for r in rows if isinstance(r, Response)],
            )
        )

    async def publish(self, *rows: Response | StatusChange) -> None:
        command, channel = self.command, response_channel(self.command.command_id)
        await self.bus.publish_many(
            [
                (
                    channel,
                    response_message(row, command.vehicle_id)
                    if isinstance(row, Response)
                    else status_message(
                        command.command_id,
                        command.vehicle_id,
                        row.status,
                        row.completed_at,
                        command_name=command.command_name,
                    ),
                )
                for row in rows
            ]
        )

    async def commit_and_publish(self, *rows: Response | StatusChange) -> None:
        await self.commit(*rows)
        await self.publish(*rows)


@pytest.fixture
async def other_node(
    client: Client, backend: Backend, elsewhere: EventBus, users: dict[str, UUID]
) -> OtherNode:
    """A command of alice's, stored `pending` by another node that will run it."""
    vehicle = client.app[actors_key].vehicles()[0]
    command = Command(
        new_id(),
        users["alice"],
        vehicle.vehicle_id,
        "ReadDTC",
        {"ecuAddress": f"0x{vehicle.profile.ecus[0].address:02X}"},
        "pending",
        utc_now(),
    )
    await backend.store.write_batch(WriteBatch(new_commands=[command]))
    return OtherNode(backend.store, elsewhere, command)


def summary(message: dict[str, Any]) -> tuple[str, Any]:
    if message["event"] == "response":
        return ("response", message["sequence_number"])
    return (message["event"], message["status"])


async def receive(ws: ClientWebSocketResponse) -> tuple[str, Any]:
    message = await ws.receive(timeout=WAIT_S)
    assert message.type == WSMsgType.TEXT, message
    return summary(message.json())


async def until_closed(ws: ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Every message up to the close frame (each within WAIT_S)."""
    messages = []
    while (message := await ws.receive(timeout=WAIT_S)).type == WSMsgType.TEXT:
        messages.append(message.json())
    assert message.type == WSMsgType.CLOSE, message
    return messages


async def test_replies_stored_without_their_events_reach_the_client_after_a_quiet_period(
    client: Client, other_node: OtherNode
) -> None:
    token = await token_for(client, "alice")
    path = f"/ws/responses/{other_node.command.command_id}?token={token}"
    async with client.ws_connect(path) as ws:
        assert await receive(ws) == ("status", "pending")
        # A live event: the stream has caught up and now listens.
        await other_node.commit_and_publish(other_node.status("in_progress"))
        assert await receive(ws) == ("status", "in_progress")
        # The node commits the result and dies before publishing it.
        await other_node.commit(
            other_node.reply(1), other_node.reply(2, is_final=True), other_node.status("completed")
        )
        messages = await until_closed(ws)
    assert ws.close_code == WSCloseCode.OK
    assert [summary(m) for m in messages] == [
        ("response", 1),
        ("response", 2),
        ("status", "completed"),
    ]
    assert [m["response_payload"] for m in messages[:2]] == [
        r.response_payload for r in other_node.responses
    ]
    assert messages[-1]["completed_at"] is not None


async def test_an_event_arriving_after_the_re_read_sent_its_reply_is_not_sent_again(
    client: Client, other_node: OtherNode
) -> None:
    token = await token_for(client, "alice")
    await other_node.commit(other_node.status("in_progress"))
    path = f"/ws/responses/{other_node.command.command_id}?token={token}"
    async with client.ws_connect(path) as ws:
        assert await receive(ws) == ("status", "in_progress")
        first = other_node.reply(1)
        await other_node.commit(first)  # its event is late
        assert await receive(ws) == ("response", 1)  # found by the re-read
        await other_node.publish(first)
        await other_node.commit_and_publish(
            other_node.reply(2, is_final=True), other_node.status("completed")
        )
        messages = await until_closed(ws)
    assert ws.close_code == WSCloseCode.OK
    assert [summary(m) for m in messages] == [("response", 2), ("status", "completed")]


async def test_a_running_command_with_re_reads_between_its_events_streams_each_event_once(
    make_client: MakeClient,
    backend: Backend,
    config: Config,
    users: dict[str, UUID],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The self-test streams five chunks 100 ms apart; the stream re-reads storage every
    few milliseconds in between, racing the events of what it reads."""
    monkeypatch.setattr(stream, "QUIET_RECHECK_S", 0.003)
    slower = attrs.evolve(config.simulation, time_scale=0.1)
    client = await make_client(store=backend.store, bus=backend.bus, simulation=slower)
    await asyncio.wait_for(client.app[hub_key].connected.wait(), WAIT_S)
    token = await token_for(client, "alice")
    vehicle = client.app[actors_key].vehicles()[0]
    posted = await client.post(
        "/api/v1/commands",
        json=command_body(vehicle, "RoutineControl", routineId="0x0203"),
        headers=bearer(token),
    )
    assert posted.status == 202, await posted.text()
    command_id = (await posted.json())["command_id"]
    async with client.ws_connect(f"/ws/responses/{command_id}?token={token}") as ws:
        messages = await until_closed(ws)
    assert ws.close_code == WSCloseCode.OK

    statuses = [m["status"] for m in messages if m["event"] != "response"]
    assert statuses[-1] == "completed"
    ranks = ["pending", "in_progress", "completed"]
    assert statuses == sorted(set(statuses), key=ranks.index)
    assert "in_progress" in statuses  # the stream opened before the self-test ended
    streamed = [(m["sequence_number"], m["response_payload"]) for m in messages if "is_final" in m]
    stored = await (
        await client.get(f"/api/v1/commands/{command_id}/responses", headers=bearer(token))
    ).json()
    assert streamed == [(r["sequence_number"], r["response_payload"]) for r in stored]
    assert [s for s, _ in streamed] == [1, 2, 3, 4, 5]
