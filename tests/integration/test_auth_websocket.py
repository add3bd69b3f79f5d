"""WebSocket authentication: token in the query or the subprotocol, Origin allow-list, 1008."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import attrs
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from db.events import InProcessBus
from db.repositories import Store
from web.app import create_app
from web.auth.accounts import create_user
from web.auth.guards import ensure_visible
from web.auth.passwords import PasswordHasher
from web.auth.tokens import AuthenticatedUser
from web.auth.websocket import accept_websocket
from web.config import Config

Client = TestClient[web.Request, web.Application]
PASSWORD = "ws-password-123"


@pytest.fixture
def config(config: Config) -> Config:
    server = attrs.evolve(config.server, cors_origins=("https://dashboard.example",))
    return attrs.evolve(config, server=server)


@pytest.fixture
async def users(store: Store, config: Config) -> dict[str, UUID]:
    hasher = PasswordHasher.from_config(config.auth)
    ids = {}
    for name in ("alice", "bob"):
        user = await create_user(store, hasher, username=name, password=PASSWORD, role="engineer")
        ids[name] = user.user_id
    return ids


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[Client]],
    config: Config,
    store: Store,
    users: dict[str, UUID],
) -> Client:
    """A test-only stream route owned by alice, as the responses stream will be."""

    async def stream(request: web.Request) -> web.WebSocketResponse:
        async def may_see(user: AuthenticatedUser) -> None:
            ensure_visible(user, users["alice"], "command")

        ws, user = await accept_websocket(request, authorize=may_see)
        if user is None:
            return ws
        await ws.send_json({"hello": user.username})
        await ws.close()
        return ws

    app = create_app(config, store=store, bus=InProcessBus())
    app.router.add_get("/ws/test-only", stream)
    return await aiohttp_client(app)


async def token_of(client: Client, name: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/login", json={"username": name, "password": PASSWORD}
    )
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def first_message(client: Client, path: str, **options: Any) -> tuple[Any, Any]:
    ws = await client.ws_connect(path, **options)
    message = await ws.receive()
    await ws.close()
    return message, ws


async def test_a_token_in_the_query_opens_the_stream(client: Client) -> None:
    token = (await token_of(client, "alice"))["access_token"]

    message, _ = await first_message(client, f"/ws/test-only?token={token}")

    assert message.type == WSMsgType.TEXT
    assert message.json() == {"hello": "alice"}


async def test_a_token_as_subprotocol_opens_the_stream_and_only_bearer_is_echoed(
    client: Client,
) -> None:
    token = (await token_of(client, "alice"))["access_token"]

    message, ws = await first_message(client, "/ws/test-only", protocols=("bearer", token))

    assert message.json() == {"hello": "alice"}
    assert ws.protocol == "bearer"


async def assert_closed_1008(client: Client, path: str, reason: str, **options: Any) -> None:
    message, ws = await first_message(client, path, **options)
    assert message.type == WSMsgType.CLOSE
    assert message.data == 1008
    assert message.extra == reason
    assert ws.close_code == 1008


async def test_no_token_closes_1008(client: Client) -> None:
    await assert_closed_1008(client, "/ws/test-only", "missing access token")


async def test_a_bad_token_closes_1008(client: Client) -> None:
    await assert_closed_1008(client, "/ws/test-only?token=abc.def.ghi", "invalid access token")


async def test_a_refresh_token_closes_1008(client: Client) -> None:
    token = (await token_of(client, "alice"))["refresh_token"]

    await assert_closed_1008(client, f"/ws/test-only?token={token}", "invalid access token")


async def test_a_logged_out_token_closes_1008(client: Client) -> None:
    token = (await token_of(client, "alice"))["access_token"]
    await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})

    await assert_closed_1008(
        client, "/ws/test-only", "invalid access token", protocols=("bearer", token)
    )


async def test_an_object_the_user_may_not_see_closes_1008(client: Client) -> None:
    token = (await token_of(client, "bob"))["access_token"]

    await assert_closed_1008(client, f"/ws/test-only?token={token}", "No command with this id.")


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://dashboard.example", True),
        ("https://evil.example", False),
        ("null", False),
        (None, True),
    ],
)
async def test_the_origin_is_checked_against_the_allow_list(
    client: Client, origin: str | None, allowed: bool
) -> None:
    token = (await token_of(client, "alice"))["access_token"]
    headers = {} if origin is None else {"Origin": origin}
    path = f"/ws/test-only?token={token}"

    if allowed:
        message, _ = await first_message(client, path, headers=headers)
        assert message.json() == {"hello": "alice"}
    else:
        await assert_closed_1008(client, path, "origin not allowed", headers=headers)


async def test_the_own_origin_is_allowed(client: Client) -> None:
    token = (await token_of(client, "alice"))["access_token"]
    own = f"http://{client.host}:{client.port}"

    message, _ = await first_message(
        client, f"/ws/test-only?token={token}", headers={"Origin": own}
    )

    assert message.json() == {"hello": "alice"}
