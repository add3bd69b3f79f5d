"""How a command stream ends when the store fails under it: a close code, not a dropped
connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import pytest
from aiohttp import WSCloseCode, WSMsgType

from db.memory import MemoryStore
from db.repositories import StoreUnavailable
from sovd.records import Response
from tests.support.api import Client, bearer, seed_users, token_for
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
        json={
            "vehicle_id": str(vehicle.vehicle_id),
            "command_name": "ReadDTC",
            "command_params": {"ecuAddress": f"0x{vehicle.profile.ecus[0].address:02X}"},
        },
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
