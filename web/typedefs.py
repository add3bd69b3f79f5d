"""Typed application keys: `app[store_key]` is checked by mypy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from attrs import define
from prometheus_client import CollectorRegistry

from actors.system import ActorSystem
from db.events import EventBus
from db.repositories import Store
from db.writer import BatchWriter
from web.config import Config
from web.hub import EventHub
from web.metrics import Metrics

if TYPE_CHECKING:
    from web.commands.pipeline import CommandPipeline
    from web.commands.service import CommandService


@define
class Lifecycle:
    draining: bool = False


config_key = web.AppKey("config", Config)
store_key = web.AppKey("store", Store)
bus_key = web.AppKey("bus", EventBus)
lifecycle_key = web.AppKey("lifecycle", Lifecycle)
metrics_key = web.AppKey("metrics", Metrics)
registry_key = web.AppKey("prometheus_registry", CollectorRegistry)


# The simulation: set by web.simulation's cleanup context.
actors_key = web.AppKey("actors", ActorSystem)
writer_key = web.AppKey("writer", BatchWriter)
hub_key = web.AppKey("hub", EventHub)
pipeline_key: web.AppKey[CommandPipeline] = web.AppKey("pipeline")
command_service_key: web.AppKey[CommandService] = web.AppKey("command_service")
