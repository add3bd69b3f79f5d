"""The server as a process, used over HTTP and WebSocket like a client would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from sovd.demo import demo_fleets
from sovd.fleet import VehicleIdentity, build_fleet
from tests.conftest import TABLES
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e
PASSWORD = "admin-password-e2e"
SECRET = "e2e-pipeline-secret-" + "z" * 40
VEHICLES: list[VehicleIdentity] = [v for fleet in demo_fleets(0) for v in build_fleet(fleet)]


def ecu(vehicle: VehicleIdentity) -> str:
    return f"0x{vehicle.profile.ecus[0].address:02X}"


@pytest.fixture(
    scope="module",
    params=["embedded", pytest.param("postgresql+redis", marks=pytest.mark.integration)],
)
def services(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that picks the backends (resolved outside the event loop)."""
    if request.param == "embedded":
        return {}
    return {
        "DATABASE_URL": request.getfixturevalue("pg_dsn"),
        "REDIS_URL": request.getfixturevalue("redis_url"),
    }


@pytest.fixture(scope="module")
async def server(services: dict[str, str]) -> AsyncIterator[ServerProcess]:
    env = {
        "SOVD_ADMIN_PASSWORD": PASSWORD,
        "SOVD_LATENCY_MS": "20,40",
        "SOVD_TIME_SCALE": "0.05",
        "JWT_SECRET": SECRET,
        **services,
    }
    if "DATABASE_URL" in services:
        conn = await asyncpg.connect(services["DATABASE_URL"])
        await conn.execute(f"TRUNCATE {TABLES} CASCADE")
        await conn.close()
    process = await ServerProcess(env=env).start()
    yield process
    assert await process.stop() == 0
    assert process.errors() == [], process.errors()


@pytest.fixture(scope="module")
async def session(server: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=server.url) as http:
        response = await http.post(
            "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
        )
        assert response.status == 200, await response.text()
        token = (await response.json())["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http


async def submit(
    http: aiohttp.ClientSession, vehicle: VehicleIdentity, name: str, **params: Any
) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/commands",
        json={
            "vehicle_id": str(vehicle.vehicle_id),
            "command_name": name,
            "command_params": {"ecuAddress": ecu(vehicle), **params},
        },
    )
    assert response.status == 202, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def stream(http: aiohttp.ClientSession, command: dict[str, Any]) -> tuple[list[Any], int]:
    """Every message of the command's WebSocket until the server closes it."""
    token = http.headers["Authorization"].removeprefix("Bearer ")
    messages = []
    async with http.ws_connect(command["stream_url"], params={"token": token}) as ws:
        while True:
            message = await asyncio.wait_for(ws.receive(), 20)
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            messages.append(message.json())
    assert ws.close_code is not None
    return messages, ws.close_code


def replies(messages: list[dict[str, Any]]) -> list[int]:
    return [m["sequence_number"] for m in messages if m["event"] == "response"]


async def test_a_late_subscriber_gets_the_full_result_at_once(
    session: aiohttp.ClientSession,
) -> None:
    command = await submit(session, VEHICLES[0], "ReadDTC")
    first, code = await stream(session, command)
    assert code == 1000
    late, code = await stream(session, command)
    assert code == 1000
    assert [m["event"] for m in late] == ["response", "status"]
    assert late[-1]["status"] == "completed"
    assert late[0] == next(m for m in first if m["event"] == "response")


async def test_two_subscribers_get_the_same_events_without_gap_or_duplicate(
    session: aiohttp.ClientSession,
) -> None:
    command = await submit(session, VEHICLES[1], "RoutineControl", routineId="0x0203")
    (one, code_one), (two, code_two) = await asyncio.gather(
        stream(session, command), stream(session, command)
    )
    assert code_one == code_two == 1000
    for messages in (one, two):
        sequence = replies(messages)
        assert sequence == list(range(1, len(sequence) + 1))
        assert len(sequence) > 2
        assert messages[-1]["event"] == "status" and messages[-1]["status"] == "completed"
        finals = [m["is_final"] for m in messages if m["event"] == "response"]
        assert finals == [False] * (len(finals) - 1) + [True]
    assert [m for m in one if m["event"] == "response"] == [
        m for m in two if m["event"] == "response"
    ]
    stored = await (await session.get(f"/api/v1/commands/{command['command_id']}/responses")).json()
    assert [r["sequence_number"] for r in stored] == replies(one)


async def test_one_vehicle_runs_in_order_while_another_is_not_held_up(
    session: aiohttp.ClientSession,
) -> None:
    busy, free = VEHICLES[2], VEHICLES[3]
    queued = [await submit(session, busy, "ReadDTC") for _ in range(6)]
    other = await submit(session, free, "ReadDTC")
    await asyncio.gather(stream(session, other), *(stream(session, c) for c in queued))
    commands = [
        await (await session.get(f"/api/v1/commands/{c['command_id']}")).json()
        for c in [*queued, other]
    ]
    assert all(c["status"] == "completed" for c in commands)
    finished = [c["completed_at"] for c in commands[:-1]]
    assert finished == sorted(finished)
    assert commands[-1]["completed_at"] < finished[-1]


async def test_bad_inputs_create_nothing(session: aiohttp.ClientSession) -> None:
    before = (await (await session.get("/api/v1/commands?limit=1")).json())["total"]
    for body in (
        {
            "vehicle_id": str(uuid.uuid4()),
            "command_name": "ReadDTC",
            "command_params": {"ecuAddress": "0x10"},
        },
        {"vehicle_id": str(VEHICLES[0].vehicle_id), "command_name": "Nope"},
        {
            "vehicle_id": str(VEHICLES[0].vehicle_id),
            "command_name": "ReadDTC",
            "command_params": {"ecuAddress": "0xZZ"},
        },
    ):
        response = await session.post("/api/v1/commands", json=body)
        assert response.status in (404, 422)
        assert response.content_type == "application/problem+json"
    after = (await (await session.get("/api/v1/commands?limit=1")).json())["total"]
    assert after == before


async def test_open_streams_are_closed_with_1001_when_the_server_stops() -> None:
    server = await ServerProcess(
        env={"SOVD_ADMIN_PASSWORD": PASSWORD, "JWT_SECRET": SECRET, "SOVD_LATENCY_MS": "1,2"}
    ).start()
    async with aiohttp.ClientSession(base_url=server.url) as http:
        login = await http.post(
            "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
        )
        token = (await login.json())["access_token"]
        async with http.ws_connect("/ws/fleet", params={"token": token}) as feed:
            stopping = asyncio.create_task(server.stop())
            message = await asyncio.wait_for(feed.receive(), 10)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert feed.close_code == 1001
            assert await asyncio.wait_for(stopping, 10) == 0
