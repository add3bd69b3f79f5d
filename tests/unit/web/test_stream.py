"""How a command stream ends when the store fails under it: a close code, not a dropped
connection; and how a failed re-read after a quiet period does not end it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import pytest
from aiohttp import WSCloseCode, WSMsgType
from structlog.testing import capture_logs

from db.memory import MemoryStore
from db.repositories import StatusChange, StoreUnavailable, WriteBatch
from sovd.records import Command, Response, new_id, utc_now
from tests.support.api import Client, bearer, command_body, seed_users, token_for
from web.commands import stream
from web.config import Config
from web.typedefs import actors_key

MakeClient = Callable[..., Awaitable[Client]]


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (StoreUnavailable("down"), WSCloseCode.TRY_AGAIN_LATER),
        (RuntimeError("a bug"), WSCloseCode.INTERNAL_ERROR),
    ],
)
async def test_a_failing_store_closes_the_stream_with_a_code(
    make_client: MakeClient, config: Config, failure: Exception, code: int
) -> None:
    store = MemoryStore()
    await seed_users(store, config)
    client = await make_client(store=store)
    token = await token_for(client, "alice")
    vehicle = client.app[actors_key].vehicles()[0]
    submitted = await client.post(
        "/api/v1/commands",
        json=command_body(vehicle),
        headers=bearer(token),
    )
    command_id = (await submitted.json())["command_id"]

    async def fail(command_id: UUID) -> list[Response]:
        raise failure

    # Authorizing the stream reads the command; catching up then reads its replies.
    read = store.responses.list_for_command
    store.responses.list_for_command = fail  # type: ignore[method-assign]
    async with client.ws_connect(f"/ws/responses/{command_id}?token={token}") as ws:
        message: Any = await ws.receive(timeout=5)
        while message.type == WSMsgType.TEXT:  # the status read before the replies
            message = await ws.receive(timeout=5)
        assert message.type == WSMsgType.CLOSE
        assert ws.close_code == code
    store.responses.list_for_command = read  # type: ignore[method-assign]


async def test_a_failed_re_read_after_a_quiet_period_keeps_the_stream_open(
    make_client: MakeClient, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The re-read is a safety net for lost events: a store that cannot be read then leaves
    the stream listening, and the next quiet period reads again."""
    monkeypatch.setattr(stream, "QUIET_RECHECK_S", 0.05)
    store = MemoryStore()
    users = await seed_users(store, config)
    client = await make_client(store=store)
    token = await token_for(client, "alice")
    vehicle = client.app[actors_key].vehicles()[0]
    command = Command(
        new_id(), users["alice"], vehicle.vehicle_id, "ReadDTC", {}, "pending", utc_now()
    )
    await store.write_batch(WriteBatch(new_commands=[command]))

    read = store.commands.get
    failing = False
    failed = asyncio.Event()

    async def get(command_id: UUID) -> Command | None:
        if failing:
            failed.set()
            raise StoreUnavailable("down")
        return await read(command_id)

    store.commands.get = get  # type: ignore[method-assign]
    async with client.ws_connect(f"/ws/responses/{command.command_id}?token={token}") as ws:
        assert (await ws.receive_json(timeout=5))["status"] == "pending"
        with capture_logs() as logs:
            failing = True
            await asyncio.wait_for(failed.wait(), 5)
            failing = False
            # Committed by a process that died before publishing it: only a re-read finds it.
            done = StatusChange(command.command_id, "completed", None, utc_now())
            await store.write_batch(WriteBatch(status_changes=[done]))
            message = await ws.receive_json(timeout=5)
            assert (message["event"], message["status"]) == ("status", "completed")
            assert (await ws.receive(timeout=5)).type == WSMsgType.CLOSE
        assert ws.close_code == WSCloseCode.OK
    assert "command_stream_recheck_failed" in [e["event"] for e in logs]
