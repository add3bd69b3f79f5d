"""The application factory: the whole start-up sequence, read top to bottom.

Resources live in cleanup contexts, opened in the order listed and closed in reverse."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from db.events import EventBus, InProcessBus
from db.memory import MemoryStore
from db.migrate import check_schema
from db.postgres import PostgresStore, create_pool, redact_dsn
from db.redis_bus import RedisBus, redact_url
from db.repositories import Store
from web.auth.guards import auth_middleware
from web.auth.startup import auth_ctx, check_auth_config
from web.auth.websocket import redact_tokens_in_access_log
from web.cluster.context import cluster_ctx
from web.commands.stats import CommandStats
from web.commands.stream import close_websockets
from web.config import Config
from web.metrics import Metrics
from web.middlewares import add_request_id_header, edge_middleware
from web.openapi import openapi_ctx
from web.routes import setup_routes
from web.simulation import simulation_ctx
from web.sovd_api.subscription_registry import SubscriptionRegistry
from web.sovd_api.subscriptions import end_subscription_streams
from web.typedefs import (
    Lifecycle,
    bus_key,
    command_stats_key,
    config_key,
    lifecycle_key,
    metrics_key,
    open_websockets_key,
    registry_key,
    starting_executions_key,
    stopping_executions_key,
    store_key,
    subscriptions_key,
)

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 1024 * 1024


async def open_store(config: Config) -> Store:
    url = config.database.url
    if url is None:
        log.info("store_selected", kind="memory", note="embedded default; data is lost on exit")
        return MemoryStore()
    pool = await create_pool(
        url, min_size=config.database.pool_min_size, max_size=config.database.pool_max_size
    )
    store = PostgresStore(pool)
    try:
        await store.ping()
        await check_schema(pool)
    except BaseException:
        await store.close()
        raise
    log.info("store_selected", kind="postgresql", dsn=redact_dsn(url))
    return store


def open_bus(config: Config) -> EventBus:
    url = config.redis.url
    if url is None:
        log.info("bus_selected", kind="in-process", note="embedded default; single process only")
        return InProcessBus()
    log.info("bus_selected", kind="redis", url=redact_url(url))
    return RedisBus.from_url(url)


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    """The store given to create_app, or the one the configuration names."""
    injected = app.get(store_key)
    store = injected or await open_store(app[config_key])
    app[store_key] = store
    yield
    if injected is None:
        await store.close()


async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
    """The event bus given to create_app, or the one the configuration names."""
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
    check_auth_config(config)
    redact_tokens_in_access_log()
    app = web.Application(
        # Outermost first: request id, CORS, errors and metrics; then authentication.
        middlewares=[edge_middleware, auth_middleware],
        client_max_size=MAX_BODY_BYTES,
    )
    registry = CollectorRegistry()
    app[config_key] = config
    app[registry_key] = registry
    app[metrics_key] = Metrics(registry)
    app[command_stats_key] = CommandStats()
    app[lifecycle_key] = Lifecycle()
    app[open_websockets_key] = set()
    app[starting_executions_key] = set()
    app[stopping_executions_key] = set()
    app[subscriptions_key] = SubscriptionRegistry()
    if store is not None:
        app[store_key] = store
    if bus is not None:
        app[bus_key] = bus

    app.cleanup_ctx.extend(
        [
            store_ctx,  # the record: memory or PostgreSQL
            bus_ctx,  # events: in-process or Redis
            auth_ctx,  # needs the store (the admin account on a first start)
            simulation_ctx,  # writer, actors, hub, fleets, then unfinished commands resumed
            cluster_ctx,  # cluster mode only: partition streams and this node's share
            openapi_ctx,  # needs the command registry the simulation runs
        ]
    )
    # Before the cleanup contexts close: open streams end with 1001, not by timeout.
    app.on_shutdown.append(close_websockets)
    app.on_shutdown.append(end_subscription_streams)
    app.on_response_prepare.append(add_request_id_header)
    setup_routes(app)
    return app
