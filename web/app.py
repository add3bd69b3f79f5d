"""The application factory: resources in cleanup_ctx, started top to bottom, closed in reverse."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from db.events import EventBus, InProcessBus
from db.memory import MemoryStore
from db.migrate import load_migrations
from db.postgres import PostgresStore, create_pool, redact_dsn
from db.redis_bus import RedisBus, redact_url
from db.repositories import Store
from web.auth import setup_auth
from web.commands.stream import setup_stream_routes
from web.commands.views import setup_command_routes
from web.config import Config
from web.health import setup_health_routes
from web.metrics import Metrics
from web.middlewares import add_request_id_header, edge_middleware
from web.openapi import setup_openapi_routes
from web.simulation import setup_simulation
from web.typedefs import (
    Lifecycle,
    bus_key,
    config_key,
    lifecycle_key,
    metrics_key,
    registry_key,
    store_key,
)
from web.vehicles import setup_vehicle_routes

log = structlog.get_logger(__name__)


LEDGER_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"
SCHEMA_VERSION = "SELECT coalesce(max(version), 0) FROM schema_migrations"


class SchemaOutdated(Exception):
    pass


async def open_store(config: Config) -> Store:
    url = config.database.url
    if url is None:
        log.info("store_selected", kind="memory", note="embedded default; data is lost on exit")
        return MemoryStore()
    pool = await create_pool(
        url, min_size=config.database.pool_min_size, max_size=config.database.pool_max_size
    )
    store = PostgresStore(pool)
    await store.ping()
    await _check_schema(store)
    log.info("store_selected", kind="postgresql", dsn=redact_dsn(url))
    return store


async def _check_schema(store: PostgresStore) -> None:
    wanted = max(m.version for m in load_migrations())
    have = 0
    if await store.pool.fetchval(LEDGER_EXISTS):
        have = await store.pool.fetchval(SCHEMA_VERSION)
    if have < wanted:
        await store.close()
        raise SchemaOutdated(
            f"database schema is at version {have}, this build needs {wanted}: "
            "run `sovd-sim db migrate`"
        )


def open_bus(config: Config) -> EventBus:
    url = config.redis.url
    if url is None:
        log.info("bus_selected", kind="in-process", note="embedded default; single process only")
        return InProcessBus()
    log.info("bus_selected", kind="redis", url=redact_url(url))
    return RedisBus.from_url(url)


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    injected = app.get(store_key)
    store = injected or await open_store(app[config_key])
    app[store_key] = store
    yield
    if injected is None:
        await store.close()


async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
    injected = app.get(bus_key)
    bus = injected or open_bus(app[config_key])
    app[bus_key] = bus
    yield
    if injected is None:
        await bus.close()


def create_app(
    config: Config, *, store: Store | None = None, bus: EventBus | None = None
) -> web.Application:
    """Builds the app; `store` and `bus` are the seam tests use to bring their own."""
    app = web.Application(
        middlewares=[edge_middleware],
        client_max_size=1024 * 1024,
    )
    registry = CollectorRegistry()
    app[config_key] = config
    app[registry_key] = registry
    app[metrics_key] = Metrics(registry)
    app[lifecycle_key] = Lifecycle()
    if store is not None:
        app[store_key] = store
    if bus is not None:
        app[bus_key] = bus
    app.on_response_prepare.append(add_request_id_header)
    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(bus_ctx)
    setup_health_routes(app)
    setup_auth(app)
    setup_simulation(app)
    setup_command_routes(app)
    setup_vehicle_routes(app)
    setup_stream_routes(app)
    setup_openapi_routes(app)
    return app
