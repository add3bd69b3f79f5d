"""Requests that arrive while PostgreSQL restarts answer 503 with Retry-After, never 500, and
a connection whose statement was interrupted is never used again.

A fast restart ends every session with FATAL 57P01 and refuses connections until the server is
back. The tests do that to the app's sessions alone (pg_terminate_backend, behind a proxy that
stops listening), so the server other tests use keeps running."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg
import attrs
import pytest
from aiohttp import WSCloseCode, WSMsgType

from db.events import InProcessBus
from db.postgres import GuardedPool, PostgresStore, create_pool
from db.redis_bus import RedisBus
from tests.conftest import ADMIN_DSN, fresh_database
from tests.support.api import Client, bearer, command_body, seed_users, token_for
from tests.support.proxy import CuttableProxy
from web.config import Config
from web.typedefs import actors_key, hub_key

pytestmark = pytest.mark.integration

MakeClient = Callable[..., Awaitable[Client]]

RESTARTS = 20
WORKERS = 6
WITHIN_S = 10.0
APP_SESSIONS = (
    "SELECT pid, client_port FROM pg_stat_activity WHERE client_port = ANY($1::int[])"
    " AND client_addr = '127.0.0.1'"
)
TERMINATE = "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid"


def acceptable(status: int) -> bool:
    return 200 <= status < 300 or status in (401, 429, 503)


class Traffic:
    """Authenticated commands and reads sent without pause by a few workers; it tallies the
    answers and lets the test wait for the next answer of some kind."""

    def __init__(self, client: Client, token: str) -> None:
        self.client = client
        self.headers = bearer(token)
        self.statuses: Counter[int] = Counter()
        self.unexpected: list[str] = []
        self._watchers: list[tuple[Callable[[int], bool], asyncio.Event]] = []
        self._running = True
        self._workers = [asyncio.create_task(self._work(index)) for index in range(WORKERS)]

    async def next_answer(self, wanted: Callable[[int], bool]) -> None:
        watcher = (wanted, asyncio.Event())
        self._watchers.append(watcher)
        try:
            await asyncio.wait_for(watcher[1].wait(), WITHIN_S)
        finally:
            self._watchers.remove(watcher)

    async def stop(self) -> None:
        self._running = False
        await asyncio.gather(*self._workers)

    async def _work(self, index: int) -> None:
        vehicle = self.client.app[actors_key].vehicles()[index]
        command = {
            "vehicle_id": str(vehicle.vehicle_id),
            "command_name": "ReadDTC",
            "command_params": {"ecuAddress": f"0x{vehicle.profile.ecus[0].address:02X}"},
        }
        requests = [
            ("POST", "/api/v1/commands"),
            ("GET", "/api/v1/commands?limit=5"),
            ("GET", f"/api/v1/vehicles/{vehicle.vehicle_id}"),
            ("GET", "/api/v1/auth/me"),
        ]
        turn = index
        while self._running:
            method, path = requests[turn % len(requests)]
            turn += 1
            body = command if method == "POST" else None
            async with self.client.request(method, path, json=body, headers=self.headers) as r:
                if not acceptable(r.status):
                    self.unexpected.append(f"{method} {path}: {r.status} {await r.text()}")
                elif r.status == 503 and not r.headers.get("Retry-After"):
                    self.unexpected.append(f"{method} {path}: 503 without Retry-After")
                self.statuses[r.status] += 1
                for wanted, seen in self._watchers:
                    if wanted(r.status):
                        seen.set()


@pytest.fixture
async def behind_proxy(
    make_client: MakeClient, pg_store: PostgresStore, pg_dsn: str, config: Config
) -> AsyncIterator[tuple[Client, CuttableProxy]]:
    """The app on a pool of its own, reaching PostgreSQL through a proxy."""
    await seed_users(pg_store, config)
    parts = urlsplit(pg_dsn)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    proxied = pg_dsn.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    store = PostgresStore(await create_pool(proxied, min_size=2, max_size=4))
    client = await make_client(store=store, bus=InProcessBus())
    try:
        yield client, proxy
    finally:
        await client.close()
        await store.close()
        await proxy.stop()


async def restart_postgres(proxy: CuttableProxy, admin: asyncpg.Pool) -> None:
    """What a fast shutdown does to the app's sessions: each ends with FATAL 57P01
    (terminating connection due to administrator command), and new connections are refused
    until `proxy.restore()`. Sessions still starting up, not yet in pg_stat_activity, are
    reset instead."""
    proxy.stop_listening()
    sessions = await admin.fetch(APP_SESSIONS, proxy.upstream_ports())
    await admin.execute(TERMINATE, [session["pid"] for session in sessions])
    await proxy.closed(session["client_port"] for session in sessions)
    await proxy.cut()


async def test_requests_during_postgres_restarts_answer_503_never_500(
    behind_proxy: tuple[Client, CuttableProxy], pg_pool: asyncpg.Pool
) -> None:
    client, proxy = behind_proxy
    traffic = Traffic(client, await token_for(client, "alice"))
    try:
        for _ in range(RESTARTS):
            await traffic.next_answer(lambda status: 200 <= status < 300)
            await restart_postgres(proxy, pg_pool)
            await traffic.next_answer(lambda status: status == 503)
            await proxy.restore()
        await traffic.next_answer(lambda status: 200 <= status < 300)
    finally:
        await traffic.stop()
    assert traffic.unexpected == [], traffic.statuses


async def test_a_connection_whose_statement_was_interrupted_is_not_reused(pg_dsn: str) -> None:
    db = GuardedPool(await create_pool(pg_dsn, min_size=1, max_size=1))
    try:
        before = await db.fetchval("SELECT pg_backend_pid()")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await db.execute("SELECT pg_sleep(1)")
        assert await db.fetchval("SELECT pg_backend_pid()") != before
    finally:
        await db.pool.close()


async def test_a_stream_that_cannot_read_postgres_closes_with_1013_and_resumes_after(
    make_client: MakeClient,
    pg_store: PostgresStore,
    pg_dsn: str,
    pg_pool: asyncpg.Pool,
    redis_url: str,
    config: Config,
) -> None:
    """PostgreSQL restarting while an open stream catches up (here: after a Redis outage)
    ends the stream with 1013, a close frame the client can act on, instead of an HTTP
    error written into the WebSocket; reconnecting then gets the whole result."""
    await seed_users(pg_store, config)
    pg_parts, redis_parts = urlsplit(pg_dsn), urlsplit(redis_url)
    pg_proxy = CuttableProxy(pg_parts.hostname or "127.0.0.1", pg_parts.port or 5432)
    redis_proxy = CuttableProxy(redis_parts.hostname or "127.0.0.1", redis_parts.port or 6379)
    await pg_proxy.start()
    await redis_proxy.start()
    store = PostgresStore(
        await create_pool(
            pg_dsn.replace(f"{pg_parts.hostname}:{pg_parts.port}", f"127.0.0.1:{pg_proxy.port}"),
            min_size=1,
            max_size=2,
        )
    )
    bus = RedisBus.from_url(redis_url.replace(f":{redis_parts.port}", f":{redis_proxy.port}"))
    slow = attrs.evolve(config.simulation, latency_ms=(1500, 1500))
    client = await make_client(store=store, bus=bus, simulation=slow)
    try:
        await asyncio.wait_for(client.app[hub_key].connected.wait(), 5)
        token = await token_for(client, "alice")
        vehicle = client.app[actors_key].vehicles()[0]
        posted = await client.post(
            "/api/v1/commands",
            json=command_body(vehicle),
            headers=bearer(token),
        )
        command_id = (await posted.json())["command_id"]
        path = f"/ws/responses/{command_id}?token={token}"
        async with client.ws_connect(path) as ws:
            first = await asyncio.wait_for(ws.receive(), 5)
            assert first.type == WSMsgType.TEXT
            await restart_postgres(pg_proxy, pg_pool)
            await redis_proxy.cut()  # the hub resubscribes and the stream re-reads storage
            closing = await asyncio.wait_for(ws.receive(), 10)
            while closing.type == WSMsgType.TEXT:
                closing = await asyncio.wait_for(ws.receive(), 10)
            assert closing.type == WSMsgType.CLOSE, closing
            assert ws.close_code == WSCloseCode.TRY_AGAIN_LATER
        await pg_proxy.restore()
        await redis_proxy.restore()
        async with client.ws_connect(path) as ws:
            messages = [m.json() async for m in ws if m.type == WSMsgType.TEXT]
            assert ws.close_code == WSCloseCode.OK
        assert [m["event"] for m in messages][-2:] == ["response", "status"]
        assert messages[-1]["status"] == "completed"
    finally:
        await client.close()
        await store.close()
        await bus.close()
        await pg_proxy.stop()
        await redis_proxy.stop()


async def test_a_database_dropped_under_the_server_answers_503_never_500(
    make_client: MakeClient, config: Config
) -> None:
    """The pool's new connections are refused with 3D000 (database does not exist): the
    store is unavailable, as while PostgreSQL restarts, not a server error."""
    async with fresh_database() as dsn:
        store = PostgresStore(await create_pool(dsn, min_size=1, max_size=2))
        client = await make_client(store=store, bus=InProcessBus())
        try:
            await seed_users(store, config)
            token = await token_for(client, "alice")
            vehicle = client.app[actors_key].vehicles()[0]
            admin = await asyncpg.connect(ADMIN_DSN)
            try:
                await admin.execute(f'DROP DATABASE "{urlsplit(dsn).path[1:]}" WITH (FORCE)')
            finally:
                await admin.close()
            for method, path, body in (
                ("POST", "/api/v1/commands", command_body(vehicle)),
                ("GET", "/api/v1/commands?limit=5", None),
                ("GET", "/api/v1/auth/me", None),
            ):
                async with client.request(method, path, json=body, headers=bearer(token)) as r:
                    assert r.status == 503, f"{method} {path}: {r.status} {await r.text()}"
                    assert r.headers.get("Retry-After")
        finally:
            await client.close()
            await store.close()
