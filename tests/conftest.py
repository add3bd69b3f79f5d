"""Shared fixtures. Services: PostgreSQL and Redis on this machine (or TEST_DATABASE_URL /
TEST_REDIS_URL). Without CI a missing service skips its tests; with CI set it fails them."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import attrs
import pytest
import redis.asyncio as redis
from aiohttp import web
from aiohttp.test_utils import TestClient

from db.events import EventBus, InProcessBus
from db.memory import MemoryStore
from db.migrate import migrate
from db.postgres import PostgresStore, create_pool
from db.redis_bus import RedisBus
from db.repositories import Store
from tests.support.api import Backend
from tests.support.openapi import checking_middleware
from web.app import create_app
from web.config import Config, load_config
from web.typedefs import openapi_document_key

# pytester runs the plugin's tests (tests/plugin/); pytest takes `pytest_plugins` from the
# top-level conftest only.
pytest_plugins = ["pytester"]

ADMIN_DSN = os.environ.get("TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = bool(os.environ.get("CI"))
TABLES = "users, sessions, vehicles, fleets, commands, responses, audit_logs"


def service_missing(what: str) -> None:
    message = f"{what} is unreachable"
    if IN_CI:
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(f"{message}; set CI=1 to make this a failure")


def _with_database(dsn: str, database: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + database


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new, migrated database, dropped on the way out."""
    try:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        service_missing(f"PostgreSQL at {ADMIN_DSN} ({exc})")
    name = f"sovd_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = _with_database(ADMIN_DSN, name)
    try:
        await migrate(dsn)
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def pg_dsn() -> AsyncIterator[str]:
    """A fresh, migrated database for this test session, dropped at the end."""
    async with fresh_database() as dsn:
        yield dsn


@pytest.fixture
async def own_pg_dsn() -> AsyncIterator[str]:
    """A database for this test alone, for a server process that fills it as it likes."""
    async with fresh_database() as dsn:
        yield dsn


@pytest.fixture(scope="session")
async def pg_pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(pg_dsn, min_size=1, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture
async def pg_store(pg_pool: asyncpg.Pool) -> PostgresStore:
    await pg_pool.execute(f"TRUNCATE {TABLES} CASCADE")
    return PostgresStore(pg_pool)


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture(params=["memory", pytest.param("postgresql", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> Store:
    """Runs a test once per store implementation."""
    name = "memory_store" if request.param == "memory" else "pg_store"
    result: Store = request.getfixturevalue(name)
    return result


@pytest.fixture(scope="session")
async def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, redis.ConnectionError, redis.TimeoutError) as exc:
        service_missing(f"Redis at {REDIS_URL} ({exc})")
    finally:
        await client.aclose()
    return REDIS_URL


@pytest.fixture
async def redis_bus(redis_url: str) -> AsyncIterator[RedisBus]:
    bus = RedisBus.from_url(redis_url)
    yield bus
    await bus.close()


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.integration)])
def bus(request: pytest.FixtureRequest) -> EventBus:
    """Runs a test once per event bus implementation."""
    if request.param == "in-process":
        return InProcessBus()
    result: EventBus = request.getfixturevalue("redis_bus")
    return result


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("postgresql", marks=pytest.mark.integration),
        pytest.param("postgresql+redis", marks=pytest.mark.integration),
    ]
)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Runs an API test on the embedded default, on PostgreSQL with the in-process bus, and
    on PostgreSQL with Redis (the production mode)."""
    if request.param == "embedded":
        return Backend(MemoryStore(), InProcessBus())
    store: Store = request.getfixturevalue("pg_store")
    if request.param == "postgresql":
        return Backend(store, InProcessBus())
    bus: EventBus = request.getfixturevalue("redis_bus")
    return Backend(store, bus)


TEST_SECRET = "test-secret-" + "x" * 40


@pytest.fixture
def config() -> Config:
    """The test configuration: tiny latency, a fixed secret, cheap password hashing (argon2
    at production cost takes 64 MiB and ~0.1 s per hash; tests need neither)."""
    base = load_config(environ={})
    return attrs.evolve(
        base,
        auth=attrs.evolve(
            base.auth,
            jwt_secret=TEST_SECRET,
            password_time_cost=1,
            password_memory_kib=8,
            password_parallelism=1,
        ),
        simulation=attrs.evolve(base.simulation, latency_ms=(1, 3), time_scale=0.01),
    )


MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
    config: Config,
) -> MakeClient:
    """Builds the app with the real factory and the given store/bus, and a client for it.
    Every answer the client receives is held to the app's OpenAPI document: an undocumented
    status, content type or body fails the test (tests/support/openapi.py)."""

    async def make(
        store: Store | None = None, bus: EventBus | None = None, **overrides: Any
    ) -> TestClient[web.Request, web.Application]:
        app = create_app(
            attrs.evolve(config, **overrides),
            store=store or MemoryStore(),
            bus=bus or InProcessBus(),
        )
        return await aiohttp_client(
            app, middlewares=(checking_middleware(lambda: app[openapi_document_key]),)
        )

    return make
