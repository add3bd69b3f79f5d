"""Every typed application and request key, so `app[store_key]` is checked by mypy.

Services and the modules they import never import this one; handlers and middlewares do."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from aiohttp import web
from attrs import define
from prometheus_client import CollectorRegistry

from actors.actor import HaltRequest
from actors.system import ActorSystem
from db.events import EventBus
from db.repositories import Store
from db.writer import BatchWriter
from web.auth.service import AuthService
from web.auth.tokens import AuthenticatedUser
from web.cluster.node import ClusterNode
from web.commands.pipeline import CommandPipeline
from web.commands.service import CommandService
from web.commands.stats import CommandStats
from web.config import Config
from web.hub import EventHub
from web.metrics import Metrics
from web.sovd_api.subscription_registry import SubscriptionRegistry
from web.vehicles.fleets import FleetService


@define
class Lifecycle:
    draining: bool = False


# Given to create_app, or made from the configuration.
config_key = web.AppKey("config", Config)
metrics_key = web.AppKey("metrics", Metrics)
command_stats_key = web.AppKey("command_stats", CommandStats)
registry_key = web.AppKey("prometheus_registry", CollectorRegistry)
lifecycle_key = web.AppKey("lifecycle", Lifecycle)
subscriptions_key = web.AppKey("cyclic_subscriptions", SubscriptionRegistry)

# Opened by the cleanup contexts, in the order create_app lists them.
store_key = web.AppKey("store", Store)
bus_key = web.AppKey("bus", EventBus)
auth_service_key = web.AppKey("auth_service", AuthService)
writer_key = web.AppKey("writer", BatchWriter)
pipeline_key = web.AppKey("pipeline", CommandPipeline)
actors_key = web.AppKey("actors", ActorSystem)
hub_key = web.AppKey("hub", EventHub)
command_service_key = web.AppKey("command_service", CommandService)
fleet_service_key = web.AppKey("fleet_service", FleetService)
openapi_document_key: web.AppKey[dict[str, Any]] = web.AppKey("openapi_document")
cluster_key = web.AppKey("cluster", ClusterNode)
open_websockets_key: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("open_websockets")
# (vehicle, component, operation) of asynchronous SOVD executions being started right now.
starting_executions_key: web.AppKey[set[tuple[UUID, str, str]]] = web.AppKey("starting_executions")
# Execution timeouts stopping their command (held so they are not collected mid-way).
stopping_executions_key: web.AppKey[set[asyncio.Task[HaltRequest]]] = web.AppKey(
    "stopping_executions"
)

# Per request.
request_id_key = web.RequestKey("request_id", str)
current_user_key = web.RequestKey("current_user", AuthenticatedUser)
# The commands a SOVD request ran, named in its answer's X-Command-ID header.
command_ids_key: web.RequestKey[list[str]] = web.RequestKey("command_ids")
