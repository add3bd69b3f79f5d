"""Slow, silent, oversized and departing clients against a server process: each is cut off or
answered with problem+json and a request id, logged as one JSON line, never counted as a 500."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

LIMITS = {"SOVD_IDLE_TIMEOUT_S": "1", "SOVD_BODY_TIMEOUT_S": "1", "SOVD_MAX_CONNECTIONS": "6"}


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[ServerProcess]:
    process = await ServerProcess(env=LIMITS | {"SOVD_ADMIN_PASSWORD": "admin-pw-123"}).start()
    yield process
    await process.stop()


async def connect(server: ServerProcess) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sent before it closed the connection."""
    return await asyncio.wait_for(reader.read(), seconds)


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: "],
    ids=["nothing", "half the headers"],
)
async def test_a_client_that_stops_sending_is_cut_off(server: ServerProcess, sent: bytes) -> None:
    reader, writer = await connect(server)
    writer.write(sent)
    assert await closed_within(reader, 5) == b""
    writer.close()


async def test_half_a_body_gets_408_and_the_connection_closes(server: ServerProcess) -> None:
    reader, writer = await connect(server)
    writer.write(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"username": '
    )
    answer = await closed_within(reader, 5)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"application/problem+json" in answer
    writer.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
        b"G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["header too long", "NUL in a header", "bad method"],
)
async def test_requests_refused_before_the_app_are_problems_with_a_request_id(
    server: ServerProcess, request_bytes: bytes
) -> None:
    reader, writer = await connect(server)
    writer.write(request_bytes)
    answer = await closed_within(reader, 5)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"400"
    assert b"Content-Type: application/problem+json" in head
    request_id = re.search(rb"X-Request-ID: (\w+)", head)
    assert request_id is not None
    problem = json.loads(body)
    assert problem["status"] == 400 and problem["request_id"] == request_id[1].decode()
    event = await server.wait_for_event("request_rejected")
    assert event["status"] == 400


async def test_past_the_connection_bound_new_connections_get_503(server: ServerProcess) -> None:
    held = [await connect(server) for _ in range(6)]
    try:
        reader, writer = await connect(server)
        answer = await closed_within(reader, 5)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 503")
        assert b"Retry-After: 1" in answer
    finally:
        for _, held_writer in held:
            held_writer.close()
    # Once they are gone, the server answers again.
    async with aiohttp.ClientSession() as session:
        for _ in range(50):
            async with session.get(f"{server.url}/healthz") as response:
                if response.status == 200:
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the server did not take connections again")


async def test_a_client_leaving_mid_body_is_no_server_error(server: ServerProcess) -> None:
    _, writer = await connect(server)
    writer.write(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"user'
    )
    await writer.drain()
    writer.close()
    await server.wait_for_event("client_disconnected")
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/metrics") as metrics:
        text = await metrics.text()
    assert 'status="500"' not in text
    assert not [line for line in server.lines if line.startswith("Traceback")]
    assert server.errors() == []
