"""Cluster mode at start-up: joins the cluster after the simulation runs, leaves it first."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from db.cluster import ClusterRedis
from web.cluster.node import ClusterNode
from web.commands.outcomes import EventOutcomes
from web.typedefs import (
    actors_key,
    bus_key,
    cluster_key,
    command_service_key,
    config_key,
    fleet_service_key,
    hub_key,
    metrics_key,
    pipeline_key,
    store_key,
)


async def cluster_ctx(app: web.Application) -> AsyncIterator[None]:
    """Nothing unless cluster mode is on: then commands go through partition streams, this
    node takes its share of the partitions, and hands it back at shutdown."""
    config = app[config_key]
    if not config.cluster.enabled or config.redis.url is None:
        yield
        return
    redis = ClusterRedis.from_url(config.redis.url)
    node = ClusterNode(
        config.cluster,
        redis,
        app[store_key],
        app[actors_key],
        app[pipeline_key],
        drain_timeout_s=config.server.shutdown_timeout_s,
        metrics=app[metrics_key],
        sync_fleets=app[fleet_service_key].sync_recorded,
        bus=app[bus_key],
    )
    outcomes = EventOutcomes(app[hub_key], app[store_key])
    app[command_service_key].route_through(node, outcomes)
    app[cluster_key] = node
    try:
        await node.start()
        yield
        await node.stop()
    finally:
        await outcomes.stop()
        await redis.close()
