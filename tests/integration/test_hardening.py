"""Hostile input: whatever a client sends, the answer is a 4xx that names the problem, and a
refused request leaves nothing behind. Each case once answered 500 or left rows."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import orjson
import pytest

from db.repositories import AuditFilter, CommandFilter
from tests.conftest import MakeClient
from tests.support.api import Backend, Client, bearer, seed_users, token_for
from web.config import Config
from web.typedefs import actors_key

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(make_client: MakeClient, backend: Backend, config: Config) -> Client:
    await seed_users(backend.store, config)
    return await make_client(store=backend.store, bus=backend.bus)


def first_vehicle(client: Client) -> tuple[str, str]:
    vehicle = client.app[actors_key].vehicles()[0]
    return str(vehicle.vehicle_id), f"0x{vehicle.profile.ecus[0].address:02X}"


async def problem_of(response: Any) -> dict[str, Any]:
    assert response.content_type == "application/problem+json", await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_a_nul_in_command_parameters_is_refused_and_stores_nothing(
    client: Client, backend: Backend
) -> None:
    token = await token_for(client, "alice")
    vehicle_id, ecu = first_vehicle(client)
    body = {
        "vehicle_id": vehicle_id,
        "command_name": "WriteDataByID",
        "command_params": {"ecuAddress": ecu, "dataId": "0xF198", "value": "WS\x0012"},
    }

    response = await client.post("/api/v1/commands", json=body, headers=bearer(token))

    assert response.status == 422
    problem = await problem_of(response)
    assert problem["errors"][0]["field"] == "command_params.value"
    assert (await backend.store.commands.list(CommandFilter())).total == 0


async def test_a_nul_in_the_login_name_is_refused(client: Client) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": "ali\x00ce", "password": "alice-password-1"}
    )

    assert response.status == 422
    assert (await problem_of(response))["errors"][0]["field"] == "username"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/audit-logs?action=%00", "action"),
        ("/api/v1/vehicles?search=ab%00", "search"),
        ("/api/v1/vehicles?fleet=%00x", "fleet"),
        ("/api/v1/commands?status=%00", "status"),
        ("/api/v1/fleets/demo%00", "(path)"),
    ],
)
async def test_a_nul_in_the_request_target_is_a_400_naming_where(
    client: Client, path: str, field: str
) -> None:
    token = await token_for(client, "root")
    method = "DELETE" if path.startswith("/api/v1/fleets/") else "GET"

    response = await client.request(method, path, headers=bearer(token))

    assert response.status == 400
    assert (await problem_of(response))["errors"][0]["field"] == field


@pytest.mark.parametrize(
    "query",
    [
        "start_date=0001-01-01T00:00:00%2B14:00",
        "end_date=9999-12-31T23:59:59-14:00",
    ],
)
async def test_dates_past_the_edge_of_the_range_are_a_422(client: Client, query: str) -> None:
    token = await token_for(client, "alice")

    response = await client.get(f"/api/v1/commands?{query}", headers=bearer(token))

    assert response.status == 422
    assert "between years 1 and 9999" in (await problem_of(response))["errors"][0]["message"]


async def raw_request(client: Client, request: bytes) -> tuple[int, bytes]:
    """Sends bytes as they are (a client library would refuse a non-UTF-8 header)."""
    assert client.server.host is not None and client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await reader.readexactly(length)
    writer.close()
    return int(head.split(b" ", 2)[1]), body


def http(method: str, path: str, body: dict[str, Any] | None, *headers: bytes) -> bytes:
    payload = orjson.dumps(body) if body is not None else b""
    lines = [
        f"{method} {path} HTTP/1.1".encode(),
        b"Host: test",
        b"Content-Type: application/json",
        f"Content-Length: {len(payload)}".encode(),
        b"Connection: close",
        *headers,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


async def test_a_user_agent_that_is_not_utf8_is_recorded_safely(
    client: Client, backend: Backend
) -> None:
    agent = b"User-Agent: curl\xff\xfe/8"
    wrong = {"username": "alice", "password": "not-the-password"}
    status, _ = await raw_request(client, http("POST", "/api/v1/auth/login", wrong, agent))
    assert status == 401
    right = {"username": "alice", "password": "alice-password-1"}
    status, body = await raw_request(client, http("POST", "/api/v1/auth/login", right, agent))
    assert status == 200
    token = orjson.loads(body)["access_token"]
    vehicle_id, ecu = first_vehicle(client)
    command = {
        "vehicle_id": vehicle_id,
        "command_name": "ReadDTC",
        "command_params": {"ecuAddress": ecu},
    }
    auth = f"Authorization: Bearer {token}".encode()
    status, _ = await raw_request(client, http("POST", "/api/v1/commands", command, agent, auth))
    assert status == 202
    status, _ = await raw_request(client, http("POST", "/api/v1/auth/logout", None, agent, auth))
    assert status == 200

    entries = (await backend.store.audit.list(AuditFilter(limit=100))).items
    actions = {entry.action: entry for entry in entries}
    for action in ("user_login_failed", "user_login", "command_submitted", "user_logout"):
        assert actions[action].user_agent == "curl\ufffd\ufffd/8", action


async def test_refused_commands_leave_no_rows_behind(
    make_client: MakeClient, backend: Backend, config: Config
) -> None:
    await seed_users(backend.store, config)
    slow = attrs.evolve(config.simulation, latency_ms=(3000, 3000), mailbox_size=4)
    client = await make_client(store=backend.store, bus=backend.bus, simulation=slow)
    token = await token_for(client, "alice")
    vehicle_id, ecu = first_vehicle(client)
    body = {
        "vehicle_id": vehicle_id,
        "command_name": "ReadDTC",
        "command_params": {"ecuAddress": ecu},
    }

    answers = await asyncio.gather(
        *(client.post("/api/v1/commands", json=body, headers=bearer(token)) for _ in range(60))
    )

    statuses = [answer.status for answer in answers]
    accepted = statuses.count(202)
    assert accepted + statuses.count(429) == len(statuses)
    assert 1 <= accepted <= 6
    assert (await backend.store.commands.list(CommandFilter())).total == accepted
    submitted = await backend.store.audit.list(AuditFilter(action="command_submitted"))
    assert submitted.total == accepted
