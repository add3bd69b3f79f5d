"""Readiness follows the real services: 503 while one is gone, 200 once it is back,
without restarting the app. A proxy stands between the app and each service so the test can
take it away without stopping the servers other tests use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from db.postgres import PostgresStore, create_pool
from db.redis_bus import RedisBus
from tests.support.proxy import CuttableProxy
from web.app import create_app
from web.config import Config

pytestmark = pytest.mark.integration

Client = TestClient[web.Request, web.Application]


async def start_proxy(url: str) -> CuttableProxy:
    parts = urlsplit(url)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 0)
    await proxy.start()
    return proxy


def through(url: str, proxy: CuttableProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    return parts._replace(netloc=netloc).geturl()


@pytest.fixture
async def proxied(
    pg_dsn: str,
    redis_url: str,
    config: Config,
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> AsyncIterator[tuple[Client, CuttableProxy, CuttableProxy]]:
    pg_proxy, redis_proxy = await start_proxy(pg_dsn), await start_proxy(redis_url)
    store = PostgresStore(await create_pool(through(pg_dsn, pg_proxy), min_size=1, max_size=2))
    bus = RedisBus.from_url(through(redis_url, redis_proxy))
    client = await aiohttp_client(create_app(config, store=store, bus=bus))
    yield client, pg_proxy, redis_proxy
    await client.close()
    await store.close()
    await bus.close()
    for proxy in (pg_proxy, redis_proxy):
        if proxy._server is not None:
            await proxy.cut()


async def wait_for_status(client: Client, status: int, within_s: float = 10.0) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        response = await client.get("/readyz")
        body: dict[str, object] = await response.json()
        if response.status == status:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/readyz stayed {response.status}: {body}")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(("down", "up"), [("store", "bus"), ("bus", "store")])
async def test_readiness_follows_each_service(
    proxied: tuple[Client, CuttableProxy, CuttableProxy], down: str, up: str
) -> None:
    client, pg_proxy, redis_proxy = proxied
    proxy = pg_proxy if down == "store" else redis_proxy
    await wait_for_status(client, 200)
    await proxy.cut()
    body = await wait_for_status(client, 503)
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks[down]["status"] != "ok"
    assert checks[up]["status"] == "ok"
    await proxy.restore()
    await wait_for_status(client, 200)
